//! Property tests: the parser is total, and what it accepts is well-formed.

use proptest::prelude::*;
use serde_json::Value;

use super::parse;
use crate::notification::{AmdResult, NormalizeSettings, Rejection, Status};

fn field_value() -> impl Strategy<Value = Value> {
    let statuses: Vec<Value> = Status::ALL
        .iter()
        .map(|s| Value::from(s.as_str()))
        .collect();
    let types: Vec<Value> = AmdResult::ALL
        .iter()
        .map(|r| Value::from(r.as_str()))
        .collect();
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6..1e6_f64).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "[0-9]{1,4}".prop_map(Value::from),
        prop::sample::select(statuses),
        prop::sample::select(types),
        prop::collection::vec(any::<i64>().prop_map(Value::from), 0..3).prop_map(Value::Array),
    ]
}

const KEYS: [&str; 7] = [
    "call_sid",
    "call_status",
    "type",
    "sip_status",
    "sip_reason",
    "duration",
    "call_termination_by",
];

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&body, &NormalizeSettings::default());
    }

    #[test]
    fn accepted_bodies_give_well_formed_events(
        values in prop::collection::vec(prop::option::weighted(0.8, field_value()), KEYS.len()),
    ) {
        let body: serde_json::Map<String, Value> = KEYS
            .iter()
            .zip(values)
            .filter_map(|(key, value)| value.map(|v| (key.to_string(), v)))
            .collect();
        let text = Value::Object(body).to_string();
        match parse(text.as_bytes(), &NormalizeSettings::default()) {
            Ok(notification) => {
                let event = notification.event;
                prop_assert!(!event.conversation_id.is_empty());
                prop_assert_eq!(event.conversation_id.trim(), event.conversation_id.as_str());
                prop_assert!(!event.status.is_empty());
                prop_assert!(event.duration_s.is_none_or(|d| d >= 0));
                prop_assert!(event.sip_code.is_none_or(|c| (100..=699).contains(&c)));
                // A known status is always stored in its one spelling.
                if let Some(status) = Status::recognize(&event.status) {
                    prop_assert_eq!(status.as_str(), event.status.as_str());
                }
            }
            Err(Rejection::Invalid { errors, .. }) => prop_assert!(!errors.is_empty()),
            Err(Rejection::Malformed(message)) => prop_assert!(false, "malformed: {}", message),
        }
    }
}
