//! jambonz's webhooks, from realistic bodies (tests/data/jambonz/) to events and calls.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::parse;
use crate::call::{CallState, Outcome, RecordedEvent, fold};
use crate::notification::{
    AmdResult, Event, FieldError, NormalizeSettings, Notification, Rejection,
};

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../tests/data/jambonz/", $name)),
        )
    };
}

const FIXTURES: [(&str, &str); 9] = [
    fixture!("01-trying.json"),
    fixture!("02-ringing.json"),
    fixture!("03-in-progress.json"),
    fixture!("04-amd-machine.json"),
    fixture!("05-completed.json"),
    fixture!("06-busy.json"),
    fixture!("07-no-answer.json"),
    fixture!("08-failed-503.json"),
    fixture!("09-amd-human-no-status.json"),
];

fn parsed(body: &str) -> Notification {
    parse(body.as_bytes(), &NormalizeSettings::default()).expect("a valid webhook")
}

fn fixture(name: &str) -> Notification {
    let (_, body) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
    parsed(body)
}

#[test]
fn every_fixture_normalizes_to_its_row() {
    type Row = (
        &'static str,
        &'static str,
        Option<u16>,
        Option<&'static str>,
        Option<AmdResult>,
        Option<i64>,
        Option<&'static str>,
    );
    #[rustfmt::skip]
    let rows: [Row; 9] = [
        ("01-trying.json", "trying", Some(100), Some("100"), None, None, None),
        ("02-ringing.json", "ringing", Some(180), Some("180 Ringing"), None, None, None),
        ("03-in-progress.json", "in-progress", Some(200), Some("200 OK"), None, None, None),
        ("04-amd-machine.json", "in-progress", Some(200), Some("200 OK"), Some(AmdResult::MachineDetected), None, None),
        ("05-completed.json", "completed", Some(200), Some("200 OK"), None, Some(27), Some("caller")),
        ("06-busy.json", "busy", Some(486), Some("486 Busy Here"), None, None, None),
        ("07-no-answer.json", "no-answer", Some(487), Some("487 Request Terminated"), None, None, Some("jambonz")),
        ("08-failed-503.json", "failed", Some(503), Some("503 Service Unavailable"), None, None, None),
        ("09-amd-human-no-status.json", "in-progress", None, None, Some(AmdResult::HumanDetected), None, None),
    ];
    for (name, status, sip_code, reason, amd_result, duration_s, termination_by) in rows {
        let event = fixture(name).event;
        let got = (
            event.status.as_str(),
            event.sip_code,
            event.reason.as_deref(),
            event.amd_result,
            event.duration_s,
            event.reason_code.as_deref(),
        );
        assert_eq!(
            got,
            (
                status,
                sip_code,
                reason,
                amd_result,
                duration_s,
                termination_by
            ),
            "{name}"
        );
        assert!(event.warnings.is_empty(), "{name}: {:?}", event.warnings);
        assert_eq!(event.amd_mode, None, "{name}");
        assert_eq!(
            (event.connect_time, event.disconnect_time),
            (None, None),
            "{name}"
        );
    }
}

#[test]
fn the_payload_is_kept_whole() {
    let (_, body) = FIXTURES[3];
    let notification = parsed(body);
    let payload: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(notification.payload, payload);
    assert_eq!(notification.payload["customerData"]["campaign"], "spring");
    assert_eq!(notification.payload["reason"], "long greeting");
    assert_eq!(
        notification.content_hash,
        crate::notification::content_hash(&payload)
    );
}

fn recorded(index: i64, event: Event) -> RecordedEvent {
    RecordedEvent {
        id: index,
        content_hash: format!("{index:064x}"),
        received_at: Utc.timestamp_opt(1_700_000_000 + index, 0).unwrap(),
        event,
    }
}

/// The mapping docs/api.md, "jambonz", documents: each call's webhooks folded.
#[test]
fn calls_fold_to_the_documented_states_and_outcomes() {
    let call_of = |names: &[&str]| {
        let events: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| recorded(i as i64, fixture(name).event))
            .collect();
        let call = fold(&events).unwrap();
        (call.state, call.outcome)
    };
    let cases: [(&[&str], (CallState, Outcome)); 7] = [
        (
            &["01-trying.json", "02-ringing.json"],
            (CallState::Unknown, Outcome::Unknown),
        ),
        (
            &["03-in-progress.json"],
            (CallState::InProgress, Outcome::Connected),
        ),
        (
            &["03-in-progress.json", "04-amd-machine.json"],
            (CallState::InProgress, Outcome::Machine),
        ),
        (
            &[
                "01-trying.json",
                "02-ringing.json",
                "03-in-progress.json",
                "04-amd-machine.json",
                "05-completed.json",
            ],
            (CallState::Completed, Outcome::Machine),
        ),
        (&["06-busy.json"], (CallState::Failed, Outcome::Busy)),
        (
            &["07-no-answer.json"],
            (CallState::Failed, Outcome::NoAnswer),
        ),
        (
            &["08-failed-503.json"],
            (CallState::Failed, Outcome::Unavailable),
        ),
    ];
    for (names, expected) in cases {
        assert_eq!(call_of(names), expected, "{names:?}");
    }
}

#[test]
fn a_no_answer_without_a_sip_code_is_still_no_answer() {
    let body = json!({"call_sid": "c", "call_status": "no-answer"});
    let call = fold(&[recorded(1, parsed(&body.to_string()).event)]).unwrap();
    assert_eq!(
        (call.state, call.outcome),
        (CallState::Failed, Outcome::NoAnswer)
    );
}

#[test]
fn unreadable_values_are_null_with_a_warning() {
    let body = json!({
        "call_sid": "c", "call_status": "Parked", "type": "amd_maybe",
        "sip_status": "abc", "duration": -4,
    });
    let event = parsed(&body.to_string()).event;
    assert_eq!(event.status, "parked");
    assert_eq!(
        (event.sip_code, event.amd_result, event.duration_s),
        (None, None, None)
    );
    assert_eq!(
        event.warnings,
        [
            "unknown call_status `parked`: stored, but it does not change the call's state",
            "unknown type `amd_maybe`: stored, but no answering-machine result was read from it",
            "sip_status `abc` is not a SIP status code: ignored",
            "duration `-4` is negative: ignored",
        ]
    );
}

#[test]
fn statuses_and_keys_are_read_in_any_spelling() {
    let body = json!({"callSid": " c-1 ", "CallStatus": "No_Answer", "SipStatus": "487"});
    let event = parsed(&body.to_string()).event;
    assert_eq!(
        (
            event.conversation_id.as_str(),
            event.status.as_str(),
            event.sip_code
        ),
        ("c-1", "no-answer", Some(487))
    );
}

fn invalid(conversation_id: Option<&str>, errors: &[(&str, &str)]) -> Rejection {
    Rejection::Invalid {
        conversation_id: conversation_id.map(str::to_string),
        errors: errors
            .iter()
            .map(|(field, message)| FieldError {
                field: field.to_string(),
                message: message.to_string(),
            })
            .collect(),
    }
}

#[test]
fn bodies_that_cannot_be_a_webhook_are_rejected_with_every_reason() {
    let reject = |body: &str| parse(body.as_bytes(), &NormalizeSettings::default()).unwrap_err();
    assert!(matches!(reject("call_sid=1"), Rejection::Malformed(_)));
    assert_eq!(
        reject("[1]"),
        Rejection::Malformed("body must be a JSON object, not an array".to_string())
    );
    assert_eq!(
        reject(r#"{"call_status":"completed"}"#),
        invalid(None, &[("call_sid", "is required")])
    );
    assert_eq!(
        reject(r#"{"call_sid":"c","sip_status":[486],"duration":{}}"#),
        invalid(
            Some("c"),
            &[
                ("call_status", "is required"),
                (
                    "sip_status",
                    "must be a number or a string holding one, got an array"
                ),
                (
                    "duration",
                    "must be a number or a string holding one, got an object"
                ),
            ]
        )
    );
    assert_eq!(
        reject(r#"{"call_sid":"  ","call_status":7}"#),
        invalid(
            None,
            &[
                ("call_sid", "must not be empty"),
                ("call_status", "must be a string, got a number")
            ]
        )
    );
    assert_eq!(
        reject(r#"{"call_sid":"c","call_status":"completed","note":"a\u0000b"}"#),
        invalid(
            Some("c"),
            &[(
                "note",
                "contains the NUL character (\\u0000), which cannot be stored"
            )]
        )
    );
}
