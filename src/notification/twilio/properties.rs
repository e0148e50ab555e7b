//! Property tests: the parser is total, and what it accepts is well-formed.

use proptest::prelude::*;

use super::parse;
use crate::notification::{NormalizeSettings, Rejection, Status};

fn value() -> impl Strategy<Value = String> {
    let statuses: Vec<String> = Status::ALL.iter().map(|s| s.as_str().to_string()).collect();
    prop_oneof![
        ".{0,12}",
        "[0-9]{1,4}",
        "-?[0-9]{1,3}(\\.[0-9])?",
        prop::sample::select(statuses),
        prop::sample::select(vec![
            "human".to_string(),
            "machine_start".to_string(),
            "fax".to_string(),
            "Thu, 14 Mar 2024 09:21:41 +0000".to_string(),
        ]),
    ]
}

const KEYS: [&str; 6] = [
    "CallSid",
    "CallStatus",
    "CallDuration",
    "SipResponseCode",
    "Timestamp",
    "AnsweredBy",
];

proptest! {
    #[test]
    fn never_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&body, &NormalizeSettings::default());
    }

    #[test]
    fn accepted_forms_give_well_formed_events(
        values in prop::collection::vec(prop::option::weighted(0.8, value()), KEYS.len()),
    ) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in KEYS.iter().zip(values) {
            if let Some(value) = value {
                form.append_pair(key, &value);
            }
        }
        let body = form.finish();
        match parse(body.as_bytes(), &NormalizeSettings::default()) {
            Ok(notification) => {
                let event = notification.event;
                prop_assert!(!event.conversation_id.is_empty());
                prop_assert_eq!(event.conversation_id.trim(), event.conversation_id.as_str());
                prop_assert!(event.duration_s.is_none_or(|d| d >= 0));
                prop_assert!(event.sip_code.is_none_or(|c| (100..=699).contains(&c)));
                prop_assert!(notification.payload.is_object());
            }
            Err(Rejection::Invalid { errors, .. }) => prop_assert!(!errors.is_empty()),
            // Only a form with no pair at all is not a form.
            Err(Rejection::Malformed(_)) => prop_assert!(body.is_empty()),
        }
    }
}
