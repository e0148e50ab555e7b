use crate::notification::Format;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::notification::{AmdMode, AmdResult, DateOrder};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn event_of(body: &Value) -> Event {
    parse(body.to_string().as_bytes(), &NormalizeSettings::default())
        .unwrap_or_else(|rejection| panic!("{body} rejected: {rejection:?}"))
        .event
}

/// The smallest valid body plus `extra` fields.
fn body_with(extra: Value) -> Value {
    let mut body = json!({"conversationId": "c-1", "status": "completed"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// An event with only the required fields, for struct-update syntax in expectations.
fn bare(status: &str) -> Event {
    Event {
        conversation_id: "c-1".to_string(),
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
        ring_ms: None,
        connect_ms: None,
        connect_time: None,
        disconnect_time: None,
        warnings: vec![],
    }
}

#[test]
fn a_bare_body_gives_a_bare_event() {
    let body = br#"{"conversationId":"  c-1 ","status":" Completed "}"#;
    let notification = parse(body, &NormalizeSettings::default()).unwrap();
    assert_eq!(notification.event, bare("completed"));
    let payload = json!({"conversationId": "  c-1 ", "status": " Completed "});
    assert_eq!(notification.content_hash, content_hash(&payload));
    assert_eq!(notification.payload, payload);
}

#[test]
fn every_spelling_of_every_field_is_read() {
    let expected = Event {
        reason_code: Some("busy-here".to_string()),
        reason_code_raw: Some("Busy Here".to_string()),
        reason: Some("486 Busy Here".to_string()),
        sip_code: Some(486),
        sip_reason: Some("Busy Here".to_string()),
        amd_mode: Some(AmdMode::Disconnect),
        duration_s: Some(3),
        connect_time: Some(utc("2023-05-08T11:36:33Z")),
        disconnect_time: Some(utc("2023-05-08T11:36:36Z")),
        ..bare("failed")
    };
    #[rustfmt::skip]
    let spellings = [
        ["conversationId", "status", "reasonCode", "reason", "duration", "machinedetection", "callconnecttime", "callDisconnectTime"],
        ["conversation_id", "Status", "reason_code", "Reason", "Duration", "machineDetection", "callConnectTime", "callDisconnecttime"],
        ["ConversationID", "STATUS", "ReasonCode", "REASON", "DURATION", "machine_detection", "call_connect_time", "call_disconnect_time"],
        ["conversation-id", "status", "reason-code", "reason", "duration", "Machine-Detection", "call-connect-time", "call-disconnect-time"],
        ["CONVERSATION_ID", "sta_tus", "REASONCODE", "re-ason", "dura_tion", "MACHINEDETECTION", "CallConnectTime", "CallDisconnectTime"],
    ];
    let values = [
        json!("c-1"),
        json!("failed"),
        json!("Busy Here"),
        json!("486 Busy Here"),
        json!(3),
        json!("disconnect"),
        json!("5/8/2023,11:36:33AM"),
        json!("5/8/2023,11:36:36AM"),
    ];
    for keys in spellings {
        let body: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| k.to_string())
            .zip(values.clone())
            .collect();
        assert_eq!(event_of(&Value::Object(body)), expected, "{keys:?}");
    }
}

#[test]
fn the_same_field_twice_with_the_same_value_is_fine() {
    let body = body_with(json!({"duration": 5, "Duration": 5, "reason_code": null}));
    assert_eq!(
        event_of(&body),
        Event {
            duration_s: Some(5),
            ..bare("completed")
        }
    );
}

#[test]
fn statuses_are_trimmed_and_lower_cased() {
    let cases = [
        ("answered", vec![]),
        ("COMPLETED", vec![]),
        (" Failed ", vec![]),
        (
            "Transferred",
            vec!["unknown status `transferred`: stored, but it does not change the call's state"],
        ),
    ];
    for (status, warnings) in cases {
        let event = event_of(&json!({"conversationId": "c-1", "status": status}));
        assert_eq!(event.status, status.trim().to_lowercase());
        assert_eq!(event.warnings, warnings, "{status:?}");
    }
}

#[test]
fn reason_code_raw_and_reason_are_kept_as_received() {
    let cases = [
        (
            json!({"reasonCode": "  Busy   Here "}),
            Some("busy-here"),
            Some("  Busy   Here "),
        ),
        (
            json!({"reasonCode": "Temporarily_Unavailable"}),
            Some("temporarily-unavailable"),
            Some("Temporarily_Unavailable"),
        ),
        (json!({"reasonCode": ""}), None, Some("")),
        (json!({"reasonCode": null}), None, None),
    ];
    for (extra, code, raw) in cases {
        let event = event_of(&body_with(extra.clone()));
        assert_eq!(event.reason_code.as_deref(), code, "{extra}");
        assert_eq!(event.reason_code_raw.as_deref(), raw, "{extra}");
    }
    let event = event_of(&body_with(json!({"reason": " OK "})));
    assert_eq!(
        (event.reason.as_deref(), event.sip_code, event.sip_reason),
        (Some(" OK "), None, None)
    );
}

#[test]
fn machine_detection_becomes_mode_or_result() {
    let unknown = "unknown machinedetection `Voicemail`: stored, but no answering-machine mode \
                   or result was read from it";
    let cases = [
        (
            "amd_human_detected",
            None,
            Some(AmdResult::HumanDetected),
            vec![],
        ),
        (
            " AMD_TONE_DETECTED ",
            None,
            Some(AmdResult::ToneDetected),
            vec![],
        ),
        ("disconnect", Some(AmdMode::Disconnect), None, vec![]),
        ("Detect", Some(AmdMode::Detect), None, vec![]),
        ("", None, None, vec![]),
        ("Voicemail", None, None, vec![unknown]),
    ];
    for (value, mode, result, warnings) in cases {
        let event = event_of(&body_with(json!({"machinedetection": value})));
        assert_eq!(
            (event.amd_mode, event.amd_result),
            (mode, result),
            "{value:?}"
        );
        assert_eq!(event.warnings, warnings, "{value:?}");
    }
}

#[test]
fn duration_is_read_or_derived() {
    let times = json!({"callconnecttime": "5/8/2023,11:32:49AM", "callDisconnectTime": "5/8/2023,11:33:03AM"});
    let reversed = json!({"callconnecttime": "5/8/2023,11:33:03AM", "callDisconnectTime": "5/8/2023,11:32:49AM"});
    let with = |duration: Value, times: &Value| {
        let mut extra = times.clone();
        extra["duration"] = duration;
        extra
    };
    let cases = [
        (json!({"duration": 14}), Some(14), vec![]),
        (json!({"duration": 14.7}), Some(14), vec![]),
        (json!({"duration": "14.0"}), Some(14), vec![]),
        (json!({"duration": " 14 "}), Some(14), vec![]),
        (
            json!({"duration": -3}),
            None,
            vec!["duration `-3` is negative: ignored"],
        ),
        (
            json!({"duration": "soon"}),
            None,
            vec!["duration `soon` is not a number: ignored"],
        ),
        (with(json!(20), &times), Some(20), vec![]),
        (
            with(json!("x"), &times),
            None,
            vec!["duration `x` is not a number: ignored"],
        ),
        (times.clone(), Some(14), vec![]),
        (with(Value::Null, &times), Some(14), vec![]),
        (with(json!(""), &times), Some(14), vec![]),
        (
            reversed,
            None,
            vec![
                "callDisconnectTime (2023-05-08T11:32:49Z) is before callconnecttime (2023-05-08T11:33:03Z): no duration derived",
            ],
        ),
        (
            json!({"callconnecttime": "5/8/2023,11:32:49AM"}),
            None,
            vec![],
        ),
        (json!({}), None, vec![]),
    ];
    for (extra, duration, warnings) in cases {
        let event = event_of(&body_with(extra.clone()));
        assert_eq!(event.duration_s, duration, "{extra}");
        assert_eq!(event.warnings, warnings, "{extra}");
    }
}

#[test]
fn times_are_read_in_the_configured_zone() {
    let settings = NormalizeSettings {
        timezone: chrono_tz::America::New_York,
        date_order: DateOrder::Dmy,
    };
    let body = body_with(json!({
        "callconnecttime": "8/5/2023, 11:32:49 AM",
        "call_disconnect_time": 1683560000,
    }));
    let event = parse(body.to_string().as_bytes(), &settings).unwrap().event;
    assert_eq!(event.connect_time, Some(utc("2023-05-08T15:32:49Z")));
    assert_eq!(event.disconnect_time, Some(utc("2023-05-08T15:33:20Z")));
    assert_eq!(event.duration_s, Some(31));
    assert!(event.warnings.is_empty());
}

#[test]
fn unreadable_times_are_null_with_a_warning() {
    let body = body_with(json!({
        "callconnecttime": "yesterday",
        "callDisconnectTime": -5,
        "duration": "x",
        "status": "on-hold",
    }));
    let event = event_of(&body);
    assert_eq!(
        (event.connect_time, event.disconnect_time, event.duration_s),
        (None, None, None)
    );
    assert_eq!(
        event.warnings,
        vec![
            "unknown status `on-hold`: stored, but it does not change the call's state",
            "duration `x` is not a number: ignored",
            "callconnecttime: `yesterday` is not a recognised time",
            "callDisconnectTime: `-5` is a negative Unix time",
        ]
    );
    let blank = event_of(&body_with(json!({"callconnecttime": " "})));
    assert_eq!((blank.connect_time, blank.warnings.len()), (None, 0));
}

#[test]
fn unknown_keys_are_kept_in_the_payload_and_the_hash() {
    let plain = parse(
        br#"{"conversationId":"c-1","status":"completed"}"#,
        &NormalizeSettings::default(),
    )
    .unwrap();
    let extra = parse(
        br#"{"status":"completed", "conversationId":"c-1", "to":"+15550100"}"#,
        &NormalizeSettings::default(),
    )
    .unwrap();
    assert_eq!(extra.event, plain.event);
    assert_eq!(extra.payload["to"], json!("+15550100"));
    assert_ne!(extra.content_hash, plain.content_hash);
    let reordered = parse(
        br#"{ "to":"+15550100","conversationId":"c-1","status":"completed" }"#,
        &NormalizeSettings::default(),
    )
    .unwrap();
    assert_eq!(reordered.content_hash, extra.content_hash);
}
