//! Twilio's callbacks, from realistic form bodies (tests/data/twilio/) to events and calls.

use chrono::{DateTime, TimeZone, Utc};

use super::{answered_by, form_pairs, parse};
use crate::call::{CallState, Outcome, RecordedEvent, fold};
use crate::notification::{
    AmdResult, Event, FieldError, NormalizeSettings, Notification, Rejection,
};

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../tests/data/twilio/", $name)),
        )
    };
}

const FIXTURES: [(&str, &str); 9] = [
    fixture!("01-initiated.form"),
    fixture!("02-ringing.form"),
    fixture!("03-in-progress-human.form"),
    fixture!("04-completed.form"),
    fixture!("05-busy.form"),
    fixture!("06-no-answer.form"),
    fixture!("07-canceled.form"),
    fixture!("08-failed-404.form"),
    fixture!("09-amd-async-machine.form"),
];

fn parsed(body: &str) -> Notification {
    parse(body.as_bytes(), &NormalizeSettings::default()).expect("a valid callback")
}

fn fixture(name: &str) -> Notification {
    let (_, body) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
    parsed(body)
}

fn utc(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).unwrap().to_utc())
}

#[test]
fn every_fixture_normalizes_to_its_row() {
    type Row = (
        &'static str,
        &'static str,
        Option<u16>,
        Option<AmdResult>,
        Option<i64>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    #[rustfmt::skip]
    let rows: [Row; 9] = [
        ("01-initiated.form", "initiated", None, None, None, None, None),
        ("02-ringing.form", "ringing", Some(180), None, None, None, None),
        ("03-in-progress-human.form", "in-progress", Some(200), Some(AmdResult::HumanDetected), None, utc("2024-03-14T09:21:07Z"), None),
        ("04-completed.form", "completed", Some(200), None, Some(34), utc("2024-03-14T09:21:07Z"), utc("2024-03-14T09:21:41Z")),
        ("05-busy.form", "busy", Some(486), None, Some(0), None, utc("2024-03-14T09:30:05Z")),
        ("06-no-answer.form", "no-answer", Some(487), None, Some(0), None, utc("2024-03-14T09:31:30Z")),
        ("07-canceled.form", "canceled", None, None, Some(0), None, utc("2024-03-14T09:32:10Z")),
        ("08-failed-404.form", "failed", Some(404), None, Some(0), None, utc("2024-03-14T09:33:00Z")),
        ("09-amd-async-machine.form", "in-progress", None, Some(AmdResult::ToneDetected), None, None, None),
    ];
    for (name, status, sip_code, amd_result, duration_s, connect, disconnect) in rows {
        let event = fixture(name).event;
        assert_eq!(event.conversation_id.len(), 34, "{name}: a Twilio call SID");
        let got = (
            event.status.as_str(),
            event.sip_code,
            event.amd_result,
            event.duration_s,
            event.connect_time,
            event.disconnect_time,
        );
        assert_eq!(
            got,
            (
                status, sip_code, amd_result, duration_s, connect, disconnect
            ),
            "{name}"
        );
        assert!(event.warnings.is_empty(), "{name}: {:?}", event.warnings);
    }
}

#[test]
fn the_form_is_kept_as_a_json_object_of_strings() {
    let notification = fixture("04-completed.form");
    let payload = &notification.payload;
    assert_eq!(payload["CallStatus"], "completed");
    assert_eq!(payload["Timestamp"], "Thu, 14 Mar 2024 09:21:41 +0000");
    assert_eq!(payload["From"], "+15550100");
    assert_eq!(payload["ToZip"], "");
    assert_eq!(
        notification.content_hash,
        crate::notification::content_hash(payload)
    );
    // Repeated names keep every value; the order of names does not change the hash.
    let twice = parsed("CallSid=CA1&CallStatus=ringing&Tag=a&Tag=b");
    assert_eq!(twice.payload["Tag"], serde_json::json!(["a", "b"]));
    let reordered = parsed("CallStatus=ringing&Tag=a&CallSid=CA1&Tag=b");
    assert_eq!(reordered.content_hash, twice.content_hash);
}

#[test]
fn answered_by_maps_onto_amd_results() {
    let cases = [
        ("human", Some(AmdResult::HumanDetected)),
        ("machine_start", Some(AmdResult::MachineDetected)),
        ("machine_end_beep", Some(AmdResult::ToneDetected)),
        (
            "machine_end_silence",
            Some(AmdResult::MachineStoppedSpeaking),
        ),
        ("machine_end_other", Some(AmdResult::MachineStoppedSpeaking)),
        ("fax", Some(AmdResult::ToneDetected)),
        ("unknown", Some(AmdResult::DecisionTimeout)),
        (" Human ", Some(AmdResult::HumanDetected)),
        ("robot", None),
    ];
    for (value, expected) in cases {
        assert_eq!(answered_by(value), expected, "{value:?}");
    }
}

fn recorded(index: i64, event: Event) -> RecordedEvent {
    RecordedEvent {
        id: index,
        content_hash: format!("{index:064x}"),
        received_at: Utc.timestamp_opt(1_710_000_000 + index, 0).unwrap(),
        event,
    }
}

/// The mapping docs/api.md, "Twilio", documents: each call's callbacks folded.
#[test]
fn calls_fold_to_the_documented_states_and_outcomes() {
    let call_of = |names: &[&str]| {
        let events: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| recorded(i as i64, fixture(name).event))
            .collect();
        fold(&events).unwrap()
    };
    let full = call_of(&[
        "01-initiated.form",
        "02-ringing.form",
        "03-in-progress-human.form",
        "04-completed.form",
        "09-amd-async-machine.form",
    ]);
    // The async AMD result outranks the human one: a beep was heard.
    assert_eq!(
        (full.state, full.outcome),
        (CallState::Completed, Outcome::Machine)
    );
    assert_eq!(full.connected_at, utc("2024-03-14T09:21:07Z"));
    assert_eq!(full.ended_at, utc("2024-03-14T09:21:41Z"));
    assert_eq!(full.duration_s, Some(34));

    let cases: [(&[&str], (CallState, Outcome)); 6] = [
        (
            &["01-initiated.form", "02-ringing.form"],
            (CallState::Unknown, Outcome::Unknown),
        ),
        (
            &["03-in-progress-human.form"],
            (CallState::InProgress, Outcome::Human),
        ),
        (&["05-busy.form"], (CallState::Failed, Outcome::Busy)),
        (
            &["06-no-answer.form"],
            (CallState::Failed, Outcome::NoAnswer),
        ),
        (
            &["07-canceled.form"],
            (CallState::Failed, Outcome::NoAnswer),
        ),
        (
            &["08-failed-404.form"],
            (CallState::Failed, Outcome::Failed),
        ),
    ];
    for (names, expected) in cases {
        let call = call_of(names);
        assert_eq!((call.state, call.outcome), expected, "{names:?}");
    }
}

#[test]
fn unreadable_values_are_null_with_a_warning() {
    let event = parsed(
        "CallSid=CA1&CallStatus=Queued-Up&SipResponseCode=9&CallDuration=-1&Timestamp=soon&AnsweredBy=robot",
    )
    .event;
    assert_eq!(event.status, "queued-up");
    assert_eq!(
        event.warnings,
        [
            "unknown CallStatus `queued-up`: stored, but it does not change the call's state",
            "unknown AnsweredBy `robot`: stored, but no answering-machine result was read from it",
            "SipResponseCode `9` is not a SIP status code: ignored",
            "CallDuration `-1` is negative: ignored",
            "Timestamp: `soon` is not a recognised time",
        ]
    );
}

#[test]
fn form_pairs_are_what_the_signature_covers() {
    assert_eq!(
        form_pairs(b"A=1&B=x+y&C=%2B1"),
        [
            ("A".to_string(), "1".to_string()),
            ("B".to_string(), "x y".to_string()),
            ("C".to_string(), "+1".to_string()),
        ]
    );
}

#[test]
fn bodies_that_cannot_be_a_callback_are_rejected_with_every_reason() {
    let reject = |body: &[u8]| parse(body, &NormalizeSettings::default()).unwrap_err();
    let invalid = |id: Option<&str>, errors: &[(&str, &str)]| Rejection::Invalid {
        conversation_id: id.map(str::to_string),
        errors: errors
            .iter()
            .map(|(field, message)| FieldError {
                field: field.to_string(),
                message: message.to_string(),
            })
            .collect(),
    };
    assert_eq!(
        reject(b""),
        Rejection::Malformed(
            "body is not a form (`name=value&…`), as Twilio's callbacks are".into()
        )
    );
    assert_eq!(
        reject(b"\xff=1"),
        Rejection::Malformed("body is not UTF-8 text".into())
    );
    assert_eq!(
        reject(b"CallStatus=completed"),
        invalid(None, &[("CallSid", "is required")])
    );
    assert_eq!(
        reject(b"CallSid=CA1"),
        invalid(Some("CA1"), &[("CallStatus", "is required")])
    );
    assert_eq!(
        reject(b"CallSid=CA1&CallSid=CA2&CallStatus=busy"),
        invalid(None, &[("CallSid", "must be a string, got an array")])
    );
    assert_eq!(
        reject(b"CallSid=CA1&CallStatus=busy&Note=a%00b"),
        invalid(
            Some("CA1"),
            &[(
                "Note",
                "contains the NUL character (\\u0000), which cannot be stored"
            )]
        )
    );
}
