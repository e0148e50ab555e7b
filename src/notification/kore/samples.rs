//! The gateway's own six sample notifications, normalized field by field.

use chrono::{DateTime, Utc};

use crate::notification::Format;

use super::parse;
use crate::notification::{
    AmdMode, AmdResult, Event, NormalizeSettings, Notification, content_hash,
};

const SAMPLES: [&str; 6] = [
    include_str!("../../../tests/data/samples/01-completed-human.json"),
    include_str!("../../../tests/data/samples/02-completed-machine.json"),
    include_str!("../../../tests/data/samples/03-completed-amd-disabled.json"),
    include_str!("../../../tests/data/samples/04-failed-503.json"),
    include_str!("../../../tests/data/samples/05-failed-486-busy.json"),
    include_str!("../../../tests/data/samples/06-failed-480-unavailable.json"),
];

fn utc(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).unwrap().to_utc())
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

fn completed(id: &str, reason_code: &str, duration: i64, connect: &str, disconnect: &str) -> Event {
    Event {
        conversation_id: id.to_string(),
        source: Format::Kore,
        status: "completed".to_string(),
        reason_code: some(&reason_code.to_lowercase()),
        reason_code_raw: some(reason_code),
        reason: some("200 OK"),
        sip_code: Some(200),
        sip_reason: some("OK"),
        amd_mode: None,
        amd_result: None,
        duration_s: Some(duration),
        ring_ms: None,
        connect_ms: None,
        connect_time: utc(connect),
        disconnect_time: utc(disconnect),
        warnings: vec![],
    }
}

/// A failed sample: the gateway sends the AMD mode, no duration, and equal times.
fn failed(id: &str, reason_code: &str, canonical: &str, sip: u16, at: &str) -> Event {
    Event {
        conversation_id: id.to_string(),
        source: Format::Kore,
        status: "failed".to_string(),
        reason_code: some(canonical),
        reason_code_raw: some(reason_code),
        reason: Some(format!("{sip} {reason_code}")),
        sip_code: Some(sip),
        sip_reason: some(reason_code),
        amd_mode: Some(AmdMode::Disconnect),
        amd_result: None,
        duration_s: Some(0),
        ring_ms: None,
        connect_ms: None,
        connect_time: utc(at),
        disconnect_time: utc(at),
        warnings: vec![],
    }
}

fn expected() -> [Event; 6] {
    let human = "29e2d933-527e-429c-95b9-ba4f7c7bxxxx";
    [
        Event {
            amd_result: Some(AmdResult::HumanDetected),
            ..completed(
                human,
                "caller-disconnected",
                14,
                "2023-05-08T11:32:49Z",
                "2023-05-08T11:33:03Z",
            )
        },
        Event {
            amd_result: Some(AmdResult::MachineDetected),
            ..completed(
                human,
                "SAVG-disconnected",
                14,
                "2023-05-08T11:32:49Z",
                "2023-05-08T11:33:03Z",
            )
        },
        Event {
            amd_mode: Some(AmdMode::Disabled),
            ..completed(
                "4e010fea-cd93-47a0-a548-36d5f621xxxx",
                "caller-disconnected",
                10,
                "2023-05-08T11:29:55Z",
                "2023-05-08T11:30:05Z",
            )
        },
        failed(
            "305ae3c4-b527-4bfd-ad75-9b6abdaaxxxx",
            "Service Unavailable",
            "service-unavailable",
            503,
            "2023-05-08T11:31:30Z",
        ),
        failed(
            "80af8588-31c7-4877-a798-a3603c30xxxx",
            "Busy Here",
            "busy-here",
            486,
            "2023-05-08T11:36:33Z",
        ),
        failed(
            "40a95de6-949a-4403-b735-233daxxxx",
            "Temporarily Unavailable",
            "temporarily-unavailable",
            480,
            "2023-05-08T11:37:46Z",
        ),
    ]
}

fn parsed(sample: &str) -> Notification {
    parse(sample.as_bytes(), &NormalizeSettings::default())
        .expect("the gateway's samples are valid")
}

#[test]
fn every_sample_normalizes_exactly() {
    for (index, (sample, expected)) in SAMPLES.iter().zip(expected()).enumerate() {
        assert_eq!(parsed(sample).event, expected, "sample {:02}", index + 1);
    }
}

#[test]
fn the_first_sample_spelled_out() {
    let event = parsed(SAMPLES[0]).event;
    assert_eq!(event.status, "completed");
    assert_eq!(event.reason_code.as_deref(), Some("caller-disconnected"));
    assert_eq!(
        (event.sip_code, event.sip_reason.as_deref()),
        (Some(200), Some("OK"))
    );
    assert_eq!(
        event.amd_result.map(AmdResult::as_str),
        Some("amd_human_detected")
    );
    assert_eq!(event.duration_s, Some(14));
    let rfc3339 =
        |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    assert_eq!(
        rfc3339(event.connect_time).as_deref(),
        Some("2023-05-08T11:32:49Z")
    );
    assert_eq!(
        rfc3339(event.disconnect_time).as_deref(),
        Some("2023-05-08T11:33:03Z")
    );
    assert!(event.warnings.is_empty());
}

#[test]
fn samples_keep_their_payload_and_hash_distinctly() {
    let notifications: Vec<_> = SAMPLES.iter().map(|sample| parsed(sample)).collect();
    for (sample, notification) in SAMPLES.iter().zip(&notifications) {
        let payload: serde_json::Value = serde_json::from_str(sample).unwrap();
        assert_eq!(notification.payload, payload);
        assert_eq!(notification.content_hash, content_hash(&payload));
    }
    // Samples 01 and 02 share a conversation id; only their content tells them apart.
    assert_ne!(notifications[0].content_hash, notifications[1].content_hash);
}
