//! Property tests: the parser is total, and key spellings never matter.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::parse;
use crate::notification::{Event, NormalizeSettings, Rejection};

fn event_of(body: &Value) -> Event {
    parse(body.to_string().as_bytes(), &NormalizeSettings::default())
        .unwrap_or_else(|rejection| panic!("{body} rejected: {rejection:?}"))
        .event
}

/// A JSON value of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A value for a known key: of any type, or a string or number shaped like what the
/// gateway sends, so that bodies also get past validation.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_json(),
        "[ 0-9a-zA-Z_/:,.+-]{0,24}".prop_map(Value::from),
        "[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}, ?[0-9]{1,2}:[0-9]{2}:[0-9]{2} ?[AaPp][Mm]".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?"
            .prop_map(Value::from),
        (-1e15..1e15_f64).prop_map(Value::from),
    ]
}

/// A spelling of `key` with random case and `_` / `-` sprinkled in.
fn respell(key: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<bool>(), 0..4_u8), key.len()).prop_map(move |choices| {
        key.chars()
            .zip(choices)
            .map(|(c, (upper, sep))| {
                let c = if upper {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
                match sep {
                    0 => format!("_{c}"),
                    1 => format!("{c}-"),
                    _ => c.to_string(),
                }
            })
            .collect()
    })
}

const WIRE_KEYS: [&str; 10] = [
    "conversationId",
    "status",
    "reasonCode",
    "reason",
    "duration",
    "machinedetection",
    "callconnecttime",
    "callDisconnectTime",
    "ringDurationInMS",
    "connectDurationInMS",
];

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&body, &NormalizeSettings::default());
    }

    #[test]
    fn never_panics_on_known_keys_of_any_type(
        values in prop::collection::vec(prop::option::weighted(0.8, field_value()), WIRE_KEYS.len()),
        extra in any_json(),
    ) {
        let mut body = serde_json::Map::new();
        for (key, value) in WIRE_KEYS.iter().zip(values) {
            if let Some(value) = value {
                body.insert(key.to_string(), value);
            }
        }
        body.insert("extra".to_string(), extra);
        let text = Value::Object(body).to_string();
        match parse(text.as_bytes(), &NormalizeSettings::default()) {
            Ok(notification) => {
                // Re-read rather than compared with the generated value: serde_json's float
                // printing does not always round-trip the last digit.
                let payload: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(&notification.payload, &payload);
                let event = notification.event;
                prop_assert_eq!(event.conversation_id.trim(), event.conversation_id.as_str());
                prop_assert!(!event.conversation_id.is_empty());
                prop_assert!(event.duration_s.is_none_or(|d| d >= 0));
                prop_assert!(event.ring_ms.is_none_or(|ms| ms >= 0));
                prop_assert!(event.connect_ms.is_none_or(|ms| ms >= 0));
                prop_assert!(event.sip_code.is_none_or(|c| (100..=699).contains(&c)));
            }
            Err(Rejection::Invalid { errors, .. }) => prop_assert!(!errors.is_empty()),
            Err(Rejection::Malformed(message)) => prop_assert!(false, "malformed: {}", message),
        }
    }

    #[test]
    fn key_spellings_do_not_change_the_event(
        spellings in WIRE_KEYS.map(respell),
        duration in 0_u32..100_000,
    ) {
        let values = [
            json!("c-1"), json!("Completed"), json!("Caller-disconnected"), json!("200 OK"),
            json!(duration), json!("amd_machine_detected"), json!("5/8/2023,11:32:49AM"),
            json!("2023-05-08T11:33:03Z"), json!(duration), json!(duration.to_string()),
        ];
        let canonical: serde_json::Map<_, _> =
            WIRE_KEYS.iter().map(|k| k.to_string()).zip(values.clone()).collect();
        let respelled: serde_json::Map<_, _> = spellings.into_iter().zip(values).collect();
        prop_assert_eq!(event_of(&Value::Object(respelled)), event_of(&Value::Object(canonical)));
    }
}
