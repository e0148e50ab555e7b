//! The gateway's timestamps: `5/8/2023,11:32:49AM`, local time in a configured zone, no
//! offset. Pure.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::notification::DateOrder;

/// `at` as the gateway writes it: month/day/year (or day/month/year), a comma, a 12-hour
/// clock with seconds and AM/PM, no spaces, in `zone`.
pub fn gateway_time(at: DateTime<Utc>, zone: Tz, order: DateOrder) -> String {
    let local = at.with_timezone(&zone);
    let date = match order {
        DateOrder::Mdy => local.format("%-m/%-d/%Y"),
        DateOrder::Dmy => local.format("%-d/%-m/%Y"),
    };
    format!("{date},{}", local.format("%-I:%M:%S%p"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::NormalizeSettings;
    use crate::notification::time::parse_timestamp;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn writes_the_samples_format() {
        assert_eq!(
            gateway_time(at("2023-05-08T11:32:49Z"), chrono_tz::UTC, DateOrder::Mdy),
            "5/8/2023,11:32:49AM"
        );
        assert_eq!(
            gateway_time(at("2023-05-08T00:05:09Z"), chrono_tz::UTC, DateOrder::Mdy),
            "5/8/2023,12:05:09AM"
        );
        assert_eq!(
            gateway_time(at("2023-12-31T13:00:00Z"), chrono_tz::UTC, DateOrder::Mdy),
            "12/31/2023,1:00:00PM"
        );
        assert_eq!(
            gateway_time(at("2023-05-08T11:32:49Z"), chrono_tz::UTC, DateOrder::Dmy),
            "8/5/2023,11:32:49AM"
        );
    }

    #[test]
    fn local_time_is_in_the_zone() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            gateway_time(at("2023-05-08T11:32:49Z"), kolkata, DateOrder::Mdy),
            "5/8/2023,5:02:49PM"
        );
        let new_york: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            gateway_time(at("2024-01-01T03:00:00Z"), new_york, DateOrder::Mdy),
            "12/31/2023,10:00:00PM"
        );
    }

    #[test]
    fn calltrail_reads_back_what_the_simulator_writes() {
        for zone in [
            "UTC",
            "Asia/Kolkata",
            "America/New_York",
            "Australia/Adelaide",
        ] {
            let zone: Tz = zone.parse().unwrap();
            for order in [DateOrder::Mdy, DateOrder::Dmy] {
                let settings = NormalizeSettings {
                    timezone: zone,
                    date_order: order,
                };
                for instant in [
                    "2023-05-08T11:32:49Z",
                    "2024-03-10T07:30:00Z",
                    "2024-11-03T05:59:59Z",
                ] {
                    let written = gateway_time(at(instant), zone, order);
                    let read =
                        parse_timestamp(&serde_json::Value::String(written.clone()), &settings);
                    assert_eq!(read.ok(), Some(at(instant)), "{written} in {zone}");
                }
            }
        }
    }
}
