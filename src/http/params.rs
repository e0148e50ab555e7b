//! Query-string parameters of the `/v1` API: repeated or comma-separated values, strict
//! names, and a 400 naming the parameter and what it accepts for anything else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::error::{ApiError, Result};
use crate::call::{CallState, Outcome};
use crate::dialout::DialoutState;
use crate::notification::{AmdResult, Format};
use crate::store::DeliveryResult;
use crate::store::dialouts::{DialoutCursor, DialoutFilter, DialoutMatch};
use crate::store::query::{CallCursor, CallFilter, DeliveryCursor, DeliveryFilter};

/// The filters of `/v1/calls`, shared by stats, export and bulk operations.
pub const CALL_FILTERS: &[&str] = &[
    "state",
    "outcome",
    "amd_result",
    "reason_code",
    "sip_code",
    "since",
    "until",
    "q",
    "min_duration",
    "max_duration",
    "source",
    "min_ring_ms",
    "max_ring_ms",
    "min_connect_ms",
    "max_connect_ms",
    "target",
    "caller",
    METADATA_FILTER,
];

/// The filters of `/v1/dialouts`.
pub const DIALOUT_FILTERS: &[&str] = &[
    "state",
    "target",
    "caller",
    METADATA_FILTER,
    "since",
    "until",
];

/// `metadata.KEY=VALUE`: a family of parameters, one per metadata key. A name in a list of
/// known parameters ending in `{key}` accepts any name with that prefix.
pub const METADATA_FILTER: &str = "metadata.{key}";

/// The filters of `/v1/deliveries`.
pub const DELIVERY_FILTERS: &[&str] = &["result", "since", "until", "conversation_id"];

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

/// The decoded query string.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

fn bad(parameter: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadParameter {
        parameter: parameter.to_owned(),
        message: message.into(),
    }
}

/// Refuses a range whose `until` (exclusive) is not later than its `since`: it could match nothing.
fn in_order(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Result<()> {
    match (since, until) {
        (Some(since), Some(until)) if since >= until => {
            Err(bad("until", "must be later than since"))
        }
        _ => Ok(()),
    }
}

impl Params {
    /// Decodes `raw`, refusing parameters outside `known`.
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Self> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let is_known = |name: &str| {
            known.iter().any(|k| match k.strip_suffix("{key}") {
                Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
                None => *k == name,
            })
        };
        if let Some((name, _)) = pairs.iter().find(|(name, _)| !is_known(name)) {
            return Err(bad(
                name,
                format!("unknown parameter; accepted: {}", known.join(", ")),
            ));
        }
        Ok(Self(pairs))
    }

    /// Every value of `name`, repeated or comma-separated, trimmed, empty ones dropped.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The single value of `name`, if given.
    pub fn single(&self, name: &str) -> Result<Option<&str>> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim());
        let first = values.next();
        if values.next().is_some() {
            return Err(bad(name, "may be given once"));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// Parses every value of `name` with `parse`, naming what is accepted on failure.
    fn each<T>(
        &self,
        name: &str,
        accepted: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>> {
        self.list(name)
            .into_iter()
            .map(|v| parse(v).ok_or_else(|| bad(name, format!("`{v}` is not one of {accepted}"))))
            .collect()
    }

    /// `limit`, 1–1000, default 50.
    pub fn limit(&self) -> Result<u32> {
        match self.single("limit")? {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    bad(
                        "limit",
                        format!("`{v}` is not a whole number from 1 to {MAX_LIMIT}"),
                    )
                }),
        }
    }

    /// `tz`, an IANA zone, default UTC.
    pub fn tz(&self) -> Result<Tz> {
        match self.single("tz")? {
            None => Ok(chrono_tz::UTC),
            Some(v) => v.parse().map_err(|_| {
                bad(
                    "tz",
                    format!("`{v}` is not an IANA time zone such as Europe/Berlin"),
                )
            }),
        }
    }

    /// An instant from RFC 3339, or the start of a `YYYY-MM-DD` day in `tz`.
    fn instant(&self, name: &str, tz: Tz) -> Result<Option<DateTime<Utc>>> {
        let Some(v) = self.single(name)? else {
            return Ok(None);
        };
        if let Ok(at) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(at.with_timezone(&Utc)));
        }
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .and_then(|day| {
                tz.from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
                    .earliest()
            })
            .map(|at| Some(at.with_timezone(&Utc)))
            .ok_or_else(|| {
                bad(
                    name,
                    format!("`{v}` is neither an RFC 3339 time nor a date YYYY-MM-DD"),
                )
            })
    }

    fn whole_seconds(&self, name: &str) -> Result<Option<i64>> {
        self.whole_number(name, "seconds")
    }

    fn whole_number(&self, name: &str, unit: &str) -> Result<Option<i64>> {
        self.single(name)?
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad(name, format!("`{v}` is not a whole number of {unit}")))
            })
            .transpose()
    }

    /// The call filters; dates in `since`/`until` are days in `tz`.
    pub fn call_filter(&self, tz: Tz) -> Result<CallFilter> {
        let names = |all: &[&str]| all.join(", ");
        let states: Vec<&str> = CallState::ALL.iter().map(|s| s.as_str()).collect();
        let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        let mut amd: Vec<&str> = AmdResult::ALL.iter().map(|r| r.as_str()).collect();
        amd.push("none");
        let sources: Vec<&str> = Format::ALL.iter().map(|f| f.source()).collect();
        let filter = CallFilter {
            states: self.each("state", &names(&states), CallState::parse)?,
            outcomes: self.each("outcome", &names(&outcomes), Outcome::parse)?,
            amd_results: self.each("amd_result", &names(&amd), |v| match v {
                "none" => Some(None),
                other => AmdResult::parse(other).map(Some),
            })?,
            // Compared in canonical form, so `Busy Here` finds `busy-here`.
            reason_codes: self.each("reason_code", "a reason code such as busy-here", |v| {
                crate::notification::normalize::canonical_reason_code(v)
            })?,
            sip_codes: self.each("sip_code", "a SIP code from 100 to 699", |v| {
                v.parse::<u16>().ok().filter(|c| (100..=699).contains(c))
            })?,
            since: self.instant("since", tz)?,
            until: self.instant("until", tz)?,
            conversation_prefix: self.single("q")?.map(str::to_owned),
            min_duration: self.whole_seconds("min_duration")?,
            max_duration: self.whole_seconds("max_duration")?,
            sources: self.each("source", &names(&sources), Format::parse_name)?,
            ring_ms: (
                self.whole_number("min_ring_ms", "milliseconds")?,
                self.whole_number("max_ring_ms", "milliseconds")?,
            ),
            connect_ms: (
                self.whole_number("min_connect_ms", "milliseconds")?,
                self.whole_number("max_connect_ms", "milliseconds")?,
            ),
            dialout: self.dialout_match()?,
        };
        in_order(filter.since, filter.until)?;
        Ok(filter)
    }

    /// `target`, `caller` and `metadata.KEY=VALUE`: conditions on a dial-out.
    fn dialout_match(&self) -> Result<DialoutMatch> {
        let prefix = METADATA_FILTER.trim_end_matches("{key}");
        let mut metadata: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.0 {
            let Some(key) = name.strip_prefix(prefix) else {
                continue;
            };
            if key.is_empty() || key.chars().any(|c| c == '"' || c.is_control()) {
                return Err(bad(
                    name,
                    "a metadata key must be non-empty, without `\"` or control characters",
                ));
            }
            if metadata.iter().any(|(k, _)| k == key) {
                return Err(bad(name, "may be given once"));
            }
            metadata.push((key.to_owned(), value.clone()));
        }
        Ok(DialoutMatch {
            targets: self.list("target").into_iter().map(str::to_owned).collect(),
            callers: self.list("caller").into_iter().map(str::to_owned).collect(),
            metadata,
        })
    }

    /// The dial-out filters.
    pub fn dialout_filter(&self) -> Result<DialoutFilter> {
        let states: Vec<&str> = DialoutState::ALL.iter().map(|s| s.as_str()).collect();
        let filter = DialoutFilter {
            states: self.each("state", &states.join(", "), DialoutState::parse)?,
            matching: self.dialout_match()?,
            since: self.instant("since", chrono_tz::UTC)?,
            until: self.instant("until", chrono_tz::UTC)?,
        };
        in_order(filter.since, filter.until)?;
        Ok(filter)
    }

    /// The `cursor` of a dial-out list.
    pub fn dialout_cursor(&self) -> Result<Option<DialoutCursor>> {
        match self.cursor()? {
            None => Ok(None),
            Some((at, key)) => key
                .parse()
                .map(|id| {
                    Some(DialoutCursor {
                        requested_at: at,
                        id,
                    })
                })
                .map_err(|_| bad("cursor", "is not a cursor of this list")),
        }
    }

    /// The delivery filters.
    pub fn delivery_filter(&self) -> Result<DeliveryFilter> {
        let filter = DeliveryFilter {
            results: self.each(
                "result",
                "accepted, duplicate, rejected",
                DeliveryResult::parse,
            )?,
            since: self.instant("since", chrono_tz::UTC)?,
            until: self.instant("until", chrono_tz::UTC)?,
            conversation_id: self.single("conversation_id")?.map(str::to_owned),
        };
        in_order(filter.since, filter.until)?;
        Ok(filter)
    }

    /// The `cursor` of a call list.
    pub fn call_cursor(&self) -> Result<Option<CallCursor>> {
        self.cursor().map(|c| {
            c.map(|(at, key)| CallCursor {
                occurred_at: at,
                conversation_id: key,
            })
        })
    }

    /// The `cursor` of a delivery list.
    pub fn delivery_cursor(&self) -> Result<Option<DeliveryCursor>> {
        match self.cursor()? {
            None => Ok(None),
            Some((at, key)) => key
                .parse()
                .map(|id| {
                    Some(DeliveryCursor {
                        received_at: at,
                        id,
                    })
                })
                .map_err(|_| bad("cursor", "is not a cursor of this list")),
        }
    }

    fn cursor(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        let Some(v) = self.single("cursor")? else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(v)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<(DateTime<Utc>, String)>(&bytes).ok())
            .map(Some)
            .ok_or_else(|| bad("cursor", "is not a cursor returned by this API"))
    }
}

/// An opaque cursor: the sort key of the last item of a page.
pub fn encode_cursor(at: DateTime<Utc>, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&(at, key)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_take_repeats_and_commas() {
        let params = Params::parse(
            Some("state=failed,completed&state=%20unknown&q=ab"),
            CALL_FILTERS,
        )
        .unwrap();
        assert_eq!(params.list("state"), ["failed", "completed", "unknown"]);
        let filter = params.call_filter(chrono_tz::UTC).unwrap();
        assert_eq!(
            filter.states,
            [CallState::Failed, CallState::Completed, CallState::Unknown]
        );
        assert_eq!(filter.conversation_prefix.as_deref(), Some("ab"));
    }

    #[test]
    fn errors_name_the_parameter_and_what_it_accepts() {
        let cases = [
            (
                "outcome=voicemail",
                "outcome",
                "`voicemail` is not one of busy, declined",
            ),
            ("limit=0", "limit", "from 1 to 1000"),
            (
                "since=yesterday",
                "since",
                "neither an RFC 3339 time nor a date",
            ),
            ("sip_code=99", "sip_code", "SIP code"),
            ("cursor=zzz", "cursor", "not a cursor"),
            ("statee=failed", "statee", "unknown parameter"),
            (
                "since=2024-01-02&until=2024-01-01",
                "until",
                "later than since",
            ),
        ];
        for (query, parameter, message) in cases {
            let known: Vec<&str> = CALL_FILTERS
                .iter()
                .copied()
                .chain(["limit", "cursor"])
                .collect();
            let result = Params::parse(Some(query), &known).and_then(|p| {
                p.call_filter(chrono_tz::UTC)?;
                p.limit()?;
                p.call_cursor()
            });
            let Err(ApiError::BadParameter {
                parameter: p,
                message: m,
            }) = result
            else {
                panic!("{query}: {result:?}");
            };
            assert_eq!(p, parameter, "{query}");
            assert!(m.contains(message), "{query}: {m}");
        }
    }

    #[test]
    fn dialout_filters_take_metadata_keys_as_parameter_names() {
        let raw = "target=tel:1,tel:2&caller=%2B100&metadata.campaign=spring&metadata.tier=1";
        let params = Params::parse(Some(raw), CALL_FILTERS).unwrap();
        let filter = params.call_filter(chrono_tz::UTC).unwrap();
        assert_eq!(filter.dialout.targets, ["tel:1", "tel:2"]);
        assert_eq!(filter.dialout.callers, ["+100"]);
        assert_eq!(
            filter.dialout.metadata,
            [
                ("campaign".to_owned(), "spring".to_owned()),
                ("tier".to_owned(), "1".to_owned())
            ]
        );
        for bad_query in [
            "metadata.=x",
            "metadata.a%22b=x",
            "metadata.a=1&metadata.a=2",
        ] {
            let result = Params::parse(Some(bad_query), CALL_FILTERS)
                .and_then(|p| p.call_filter(chrono_tz::UTC));
            assert!(
                matches!(result, Err(ApiError::BadParameter { .. })),
                "{bad_query}"
            );
        }
        let unknown = Params::parse(Some("metadata=x"), CALL_FILTERS).unwrap_err();
        assert!(unknown.to_string().contains("metadata.{key}"), "{unknown}");
    }

    #[test]
    fn dates_are_days_in_the_zone_and_cursors_round_trip() {
        let params = Params::parse(Some("since=2024-03-10"), &["since"]).unwrap();
        let filter = params.call_filter(chrono_tz::America::New_York).unwrap();
        assert_eq!(filter.since, Some("2024-03-10T05:00:00Z".parse().unwrap()));
        let at: DateTime<Utc> = "2024-03-10T05:00:00.123456Z".parse().unwrap();
        let raw = format!("cursor={}", encode_cursor(at, "call-1"));
        let cursor = Params::parse(Some(&raw), &["cursor"])
            .unwrap()
            .call_cursor()
            .unwrap();
        assert_eq!(
            cursor,
            Some(CallCursor {
                occurred_at: at,
                conversation_id: "call-1".into()
            })
        );
    }
}
