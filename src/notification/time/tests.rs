use super::*;
use proptest::prelude::*;
use serde_json::json;

fn settings(zone: chrono_tz::Tz, date_order: DateOrder) -> NormalizeSettings {
    NormalizeSettings {
        timezone: zone,
        date_order,
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

#[test]
fn gateway_format_in_every_spacing() {
    let cases = [
        "5/8/2023,11:32:49AM",
        "5/8/2023, 11:32:49 AM",
        "5/8/2023 ,11:32:49AM",
        "5/8/2023 11:32:49 am",
        "5/8/2023 11:32:49am",
        " 05/08/2023,11:32:49 Am ",
        "5/8/2023,11:32:49",
        "5/8/2023,11:32:49 AM",
    ];
    for text in cases {
        assert_eq!(
            parse_timestamp(&json!(text), &NormalizeSettings::default()),
            Ok(utc("2023-05-08T11:32:49Z")),
            "{text:?}"
        );
    }
}

#[test]
fn gateway_clock_hours() {
    let cases = [
        ("5/8/2023,12:00:00AM", Some("2023-05-08T00:00:00Z")),
        ("5/8/2023,12:00:00PM", Some("2023-05-08T12:00:00Z")),
        ("5/8/2023,1:05:09PM", Some("2023-05-08T13:05:09Z")),
        ("5/8/2023,11:59:59PM", Some("2023-05-08T23:59:59Z")),
        ("5/8/2023,13:05:00", Some("2023-05-08T13:05:00Z")),
        ("5/8/2023,0:00:00", Some("2023-05-08T00:00:00Z")),
        ("5/8/2023,13:05", Some("2023-05-08T13:05:00Z")),
        ("5/8/2023,0:05:00AM", None),
        ("5/8/2023,13:05:00PM", None),
        ("5/8/2023,24:00:00", None),
        ("5/8/2023,11:60:00AM", None),
        ("5/8/2023,11:32:61", None),
        ("2/30/2023,11:32:49AM", None),
        ("13/8/2023,11:32:49AM", None),
        ("5/8/23,11:32:49AM", None),
        ("5/8/2023", None),
        ("5/8/2023,11:32:49XM", None),
    ];
    for (text, expected) in cases {
        let got = parse_timestamp(&json!(text), &NormalizeSettings::default()).ok();
        assert_eq!(got, expected.map(utc), "{text:?}");
    }
}

#[test]
fn dmy_swaps_day_and_month() {
    let dmy = settings(chrono_tz::UTC, DateOrder::Dmy);
    let cases = [
        ("5/8/2023,11:32:49AM", Some("2023-08-05T11:32:49Z")),
        ("25/12/2023, 6:00:00 PM", Some("2023-12-25T18:00:00Z")),
        ("12/25/2023,6:00:00PM", None),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_timestamp(&json!(text), &dmy).ok(),
            expected.map(utc),
            "{text:?}"
        );
    }
}

#[test]
fn local_times_follow_the_configured_zone() {
    let cases = [
        (
            chrono_tz::America::New_York,
            "5/8/2023,11:32:49AM",
            "2023-05-08T15:32:49Z",
        ),
        (
            chrono_tz::America::New_York,
            "1/8/2023,11:32:49AM",
            "2023-01-08T16:32:49Z",
        ),
        (
            chrono_tz::Asia::Kolkata,
            "5/8/2023,11:32:49AM",
            "2023-05-08T06:02:49Z",
        ),
        (
            chrono_tz::Asia::Kolkata,
            "2023-05-08T11:32:49",
            "2023-05-08T06:02:49Z",
        ),
        (
            chrono_tz::Asia::Kolkata,
            "2023-05-08T11:32:49Z",
            "2023-05-08T11:32:49Z",
        ),
        // DST overlap: 1:30 happens twice; the earlier (EDT, -04:00) wins.
        (
            chrono_tz::America::New_York,
            "11/5/2023 1:30:00AM",
            "2023-11-05T05:30:00Z",
        ),
    ];
    for (zone, text, expected) in cases {
        let got = parse_timestamp(&json!(text), &settings(zone, DateOrder::Mdy));
        assert_eq!(got, Ok(utc(expected)), "{zone} {text:?}");
    }
}

#[test]
fn a_time_in_a_dst_gap_is_a_warning() {
    let new_york = settings(chrono_tz::America::New_York, DateOrder::Mdy);
    assert_eq!(
        parse_timestamp(&json!("3/12/2023 2:30:00AM"), &new_york),
        Err(
            "`3/12/2023 2:30:00AM` is a local time that does not exist in America/New_York \
             (skipped by a daylight-saving change)"
                .to_string()
        )
    );
    assert!(parse_timestamp(&json!("2023-03-12T02:30:00"), &new_york).is_err());
}

#[test]
fn iso_8601_with_and_without_offset() {
    let kolkata = settings(chrono_tz::Asia::Kolkata, DateOrder::Mdy);
    let cases = [
        ("2023-05-08T11:32:49Z", "2023-05-08T11:32:49Z"),
        ("2023-05-08t11:32:49z", "2023-05-08T11:32:49Z"),
        ("2023-05-08T11:32:49.250Z", "2023-05-08T11:32:49.250Z"),
        ("2023-05-08 11:32:49Z", "2023-05-08T11:32:49Z"),
        ("2023-05-08T11:32:49+05:30", "2023-05-08T06:02:49Z"),
        ("2023-05-08T11:32:49+0530", "2023-05-08T06:02:49Z"),
        ("2023-05-08T11:32:49.5-0400", "2023-05-08T15:32:49.5Z"),
        ("2023-05-08 11:32:49-04:00", "2023-05-08T15:32:49Z"),
        // Without an offset: local to Asia/Kolkata (+05:30).
        ("2023-05-08T11:32:49", "2023-05-08T06:02:49Z"),
        ("2023-05-08 11:32:49", "2023-05-08T06:02:49Z"),
        ("2023-05-08T11:32:49.123456", "2023-05-08T06:02:49.123456Z"),
        ("2023-05-08T11:32", "2023-05-08T06:02:00Z"),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_timestamp(&json!(text), &kolkata),
            Ok(utc(expected)),
            "{text:?}"
        );
    }
}

#[test]
fn unix_time_in_seconds_and_milliseconds() {
    let cases = [
        (json!(1683545569), "2023-05-08T11:32:49Z"),
        (json!(1683545569.5), "2023-05-08T11:32:49.5Z"),
        (json!(1683545569000_u64), "2023-05-08T11:32:49Z"),
        (json!(1683545569123_u64), "2023-05-08T11:32:49.123Z"),
        (json!(1683545569123.5), "2023-05-08T11:32:49.1235Z"),
        (json!(0), "1970-01-01T00:00:00Z"),
        (json!(1_000_000_000_000_u64), "2001-09-09T01:46:40Z"),
        (json!("1683545569"), "2023-05-08T11:32:49Z"),
        (json!(" 1683545569.25 "), "2023-05-08T11:32:49.25Z"),
        (json!("1683545569123"), "2023-05-08T11:32:49.123Z"),
    ];
    for (value, expected) in cases {
        let got = parse_timestamp(&value, &NormalizeSettings::default());
        assert_eq!(got, Ok(utc(expected)), "{value}");
    }
}

#[test]
fn the_millisecond_threshold_is_1e12() {
    // Just below the threshold is still seconds: the year 33658, out of range.
    let last_seconds = parse_timestamp(&json!(999_999_999_999_u64), &NormalizeSettings::default());
    assert_eq!(
        last_seconds,
        Err("`999999999999` is outside the years 1 to 9999".to_string())
    );
    let first_millis =
        parse_timestamp(&json!(1_000_000_000_000_u64), &NormalizeSettings::default());
    assert_eq!(
        first_millis,
        Ok(DateTime::from_timestamp(1_000_000_000, 0).unwrap())
    );
}

#[test]
fn unusable_values_give_a_warning_naming_them() {
    let cases = [
        (json!(-1), "`-1` is a negative Unix time"),
        (json!(-1.5), "`-1.5` is a negative Unix time"),
        (json!("-20"), "`-20` is a negative Unix time"),
        (json!(1e300), "`1e+300` is out of range for a Unix time"),
        (
            json!("99999999999999999999999"),
            "`99999999999999999999999` is out of range for a Unix time",
        ),
        (json!("yesterday"), "`yesterday` is not a recognised time"),
        (json!(""), "`` is not a recognised time"),
        (json!("2023-05-08"), "`2023-05-08` is not a recognised time"),
        (
            json!("1683545569."),
            "`1683545569.` is not a recognised time",
        ),
        (json!(true), "`true` is not a recognised time"),
        (
            json!(300_000_000_000_u64),
            "`300000000000` is outside the years 1 to 9999",
        ),
    ];
    for (value, expected) in cases {
        let got = parse_timestamp(&value, &NormalizeSettings::default());
        assert_eq!(got, Err(expected.to_string()), "{value}");
    }
}

proptest! {
    #[test]
    fn gateway_format_round_trips_in_utc(
        seconds in 0_i64..4_102_444_800,
        spaced in any::<bool>(),
        lower in any::<bool>(),
    ) {
        let instant = DateTime::from_timestamp(seconds, 0).unwrap();
        let (pm, hour12) = instant.format("%p|%-I").to_string().split_once('|')
            .map(|(p, h)| (p.to_string(), h.to_string())).unwrap();
        let meridiem = if lower { pm.to_lowercase() } else { pm };
        let date = instant.format("%-m/%-d/%Y");
        let clock = instant.format("%M:%S");
        let text = if spaced {
            format!("{date}, {hour12}:{clock} {meridiem}")
        } else {
            format!("{date},{hour12}:{clock}{meridiem}")
        };
        prop_assert_eq!(parse_timestamp(&json!(text), &NormalizeSettings::default()), Ok(instant));
    }

    #[test]
    fn never_panics_on_any_string(text in any::<String>()) {
        let _ = parse_timestamp(&json!(text), &NormalizeSettings::default());
    }
}
