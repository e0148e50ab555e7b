//! The gateway's newer notifications (its V2 dial-out documentation): `Answered`, `Failed`
//! and `Call-In-Progress` spellings, `callDuration`, ISO 8601 times with milliseconds,
//! `reasonCode` `OK`, `sessionId`, and the ring and connect durations.

use chrono::{DateTime, Utc};

use crate::notification::Format;

use super::parse;
use crate::notification::{AmdMode, AmdResult, Event, NormalizeSettings, Notification};

const CALL_IN_PROGRESS: &str =
    include_str!("../../../tests/data/kore/01-call-in-progress-machine.json");
const ANSWERED: &str = include_str!("../../../tests/data/kore/02-answered.json");
const COMPLETED: &str = include_str!("../../../tests/data/kore/03-completed.json");
const FAILED_BUSY: &str = include_str!("../../../tests/data/kore/04-failed-busy.json");
const BAD_DURATIONS: &str =
    include_str!("../../../tests/data/kore/05-in-progress-bad-durations.json");

fn parsed(body: &str) -> Notification {
    parse(body.as_bytes(), &NormalizeSettings::default()).expect("a valid notification")
}

fn utc(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).unwrap().to_utc())
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

fn up(status: &str) -> Event {
    Event {
        conversation_id: "7f3c2a10-5b1e-4d8a-9c61-2e0f4b7axxxx".to_string(),
        source: Format::Kore,
        status: status.to_string(),
        reason_code: None,
        reason_code_raw: None,
        reason: None,
        sip_code: None,
        sip_reason: None,
        amd_mode: None,
        amd_result: None,
        duration_s: None,
        ring_ms: Some(5230),
        connect_ms: Some(6118),
        connect_time: utc("2024-03-14T09:21:07.412Z"),
        disconnect_time: None,
        warnings: vec![],
    }
}

#[test]
fn every_newer_notification_normalizes_exactly() {
    let cases = [
        (
            CALL_IN_PROGRESS,
            Event {
                amd_result: Some(AmdResult::MachineDetected),
                ..up("call-in-progress")
            },
        ),
        (
            ANSWERED,
            Event {
                reason_code: some("ok"),
                reason_code_raw: some("OK"),
                reason: some("200 OK"),
                sip_code: Some(200),
                sip_reason: some("OK"),
                ..up("answered")
            },
        ),
        (
            COMPLETED,
            Event {
                reason_code: some("caller-disconnected"),
                reason_code_raw: some("caller-disconnected"),
                reason: some("200 OK"),
                sip_code: Some(200),
                sip_reason: some("OK"),
                amd_result: Some(AmdResult::MachineDetected),
                duration_s: Some(42),
                disconnect_time: utc("2024-03-14T09:21:49.957Z"),
                ..up("completed")
            },
        ),
        (
            FAILED_BUSY,
            Event {
                conversation_id: "0c9d8e7f-1a2b-4c3d-8e5f-6a7b8c9dxxxx".to_string(),
                source: Format::Kore,
                reason_code: some("busy-here"),
                reason_code_raw: some("Busy Here"),
                reason: some("486 Busy Here"),
                sip_code: Some(486),
                sip_reason: some("Busy Here"),
                amd_mode: Some(AmdMode::Disconnect),
                duration_s: Some(0),
                ring_ms: Some(3900),
                connect_ms: None,
                connect_time: utc("2024-03-14T09:30:02.118Z"),
                disconnect_time: utc("2024-03-14T09:30:02.118Z"),
                ..up("failed")
            },
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(parsed(body).event, expected, "{body}");
    }
}

#[test]
fn the_session_id_is_kept_raw_and_is_not_the_call() {
    let notification = parsed(CALL_IN_PROGRESS);
    assert_eq!(
        notification.payload["sessionId"],
        "b3f1e0c2-91d4-4a57-8e2b-6c0d5a9fxxxx"
    );
    assert_eq!(
        notification.event.conversation_id,
        "7f3c2a10-5b1e-4d8a-9c61-2e0f4b7axxxx"
    );
}

#[test]
fn call_in_progress_in_any_spelling_is_one_status() {
    for spelling in [
        "Call-In-Progress",
        "call_in_progress",
        "CALL IN PROGRESS",
        " call-in_progress ",
        "Call--In  Progress",
    ] {
        let body = serde_json::json!({"conversationId": "c", "status": spelling});
        let event = parsed(&body.to_string()).event;
        assert_eq!(event.status, "call-in-progress", "{spelling:?}");
        assert!(
            event.warnings.is_empty(),
            "{spelling:?}: {:?}",
            event.warnings
        );
    }
}

#[test]
fn unreadable_durations_are_null_with_a_warning() {
    let event = parsed(BAD_DURATIONS).event;
    assert_eq!(event.status, "call-in-progress");
    assert_eq!(event.amd_result, Some(AmdResult::HumanDetected));
    assert_eq!((event.ring_ms, event.connect_ms), (None, None));
    assert_eq!(
        event.warnings,
        [
            "ringDurationInMS `-1` is negative: ignored",
            "connectDurationInMS `n/a` is not a number: ignored",
        ]
    );
}

#[test]
fn call_duration_and_duration_are_one_field() {
    let same = r#"{"conversationId":"c","status":"completed","duration":7,"callDuration":"7"}"#;
    let event = parse(same.as_bytes(), &NormalizeSettings::default());
    // Equal as JSON values or not, two spellings of one field must agree.
    assert!(event.is_err(), "7 and \"7\" differ: {event:?}");
    let agree = r#"{"conversationId":"c","status":"completed","duration":7,"call_duration":7}"#;
    assert_eq!(parsed(agree).event.duration_s, Some(7));
    let body = r#"{"conversationId":"c","status":"completed","callDuration":"12.9"}"#;
    assert_eq!(parsed(body).event.duration_s, Some(12));
}
