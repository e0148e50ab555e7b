//! Known calls to seed through `/notify`, with what the API should say of each computed
//! here, independently of calltrail's own fold.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// What a seeded call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Human,
    Machine,
    NoSpeech,
    Timeout,
    Connected,
    InProgress,
    Busy,
    Declined,
    NoAnswer,
    Unavailable,
    Failed,
}

pub const KINDS: [Kind; 11] = [
    Kind::Human,
    Kind::Machine,
    Kind::NoSpeech,
    Kind::Timeout,
    Kind::Connected,
    Kind::InProgress,
    Kind::Busy,
    Kind::Declined,
    Kind::NoAnswer,
    Kind::Unavailable,
    Kind::Failed,
];

/// A seeded call and its expected record.
#[derive(Debug, Clone)]
pub struct Seed {
    pub id: String,
    pub kind: Kind,
    /// Connect time for answered calls, the failure time for failed ones.
    pub at: DateTime<Utc>,
    pub duration_s: i64,
}

impl Seed {
    pub fn new(id: impl Into<String>, kind: Kind, at: DateTime<Utc>, duration_s: i64) -> Self {
        Self {
            id: id.into(),
            kind,
            at,
            duration_s,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(
            self.kind,
            Kind::Busy | Kind::Declined | Kind::NoAnswer | Kind::Unavailable | Kind::Failed
        )
    }

    pub fn state(&self) -> &'static str {
        match self.kind {
            Kind::InProgress => "in_progress",
            _ if self.failed() => "failed",
            _ => "completed",
        }
    }

    pub fn outcome(&self) -> &'static str {
        match self.kind {
            Kind::Human => "human",
            Kind::Machine => "machine",
            Kind::NoSpeech => "no_speech",
            Kind::Timeout => "amd_undetermined",
            Kind::Connected | Kind::InProgress => "connected",
            Kind::Busy => "busy",
            Kind::Declined => "declined",
            Kind::NoAnswer => "no_answer",
            Kind::Unavailable => "unavailable",
            Kind::Failed => "failed",
        }
    }

    pub fn amd_result(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Human => Some("amd_human_detected"),
            Kind::Machine => Some("amd_machine_detected"),
            Kind::NoSpeech => Some("amd_no_speech_detected"),
            Kind::Timeout => Some("amd_decision_timeout"),
            _ => None,
        }
    }

    /// `(reasonCode, reason)` as the gateway sends them.
    fn reasons(&self) -> (&'static str, &'static str) {
        match self.kind {
            Kind::Machine => ("SAVG-disconnected", "200 OK"),
            Kind::Busy => ("Busy Here", "486 Busy Here"),
            Kind::Declined => ("Temporarily Unavailable", "480 Temporarily Unavailable"),
            Kind::NoAnswer => ("Request Terminated", "487 Request Terminated"),
            Kind::Unavailable => ("Service Unavailable", "503 Service Unavailable"),
            Kind::Failed => ("Not Found", "404 Not Found"),
            _ => ("caller-disconnected", "200 OK"),
        }
    }

    pub fn reason_code(&self) -> Option<String> {
        (self.kind != Kind::InProgress).then(|| self.reasons().0.to_lowercase().replace(' ', "-"))
    }

    pub fn sip_code(&self) -> Option<i64> {
        (self.kind != Kind::InProgress).then(|| self.reasons().1[..3].parse().unwrap())
    }

    pub fn expected_duration(&self) -> Option<i64> {
        match self.kind {
            Kind::InProgress => None,
            _ if self.failed() => Some(0),
            _ => Some(self.duration_s),
        }
    }

    pub fn connected_at(&self) -> Option<DateTime<Utc>> {
        (!self.failed()).then_some(self.at)
    }

    /// The notifications the gateway would send for this call.
    pub fn notifications(&self) -> Vec<Value> {
        let time = |t: DateTime<Utc>| t.to_rfc3339();
        let (reason_code, reason) = self.reasons();
        if self.failed() {
            return vec![
                json!({"conversationId": self.id, "status": "failed", "reasonCode": reason_code,
                "reason": reason, "machinedetection": "disconnect", "callconnecttime": time(self.at),
                "callDisconnectTime": time(self.at)}),
            ];
        }
        let detection = self.amd_result().unwrap_or("disabled");
        let answered = json!({"conversationId": self.id, "status": "answered",
            "callconnecttime": time(self.at)});
        if self.kind == Kind::InProgress {
            return vec![answered];
        }
        let end = self.at + Duration::seconds(self.duration_s);
        vec![
            answered,
            json!({"conversationId": self.id, "status": "completed", "reasonCode": reason_code,
                "reason": reason, "duration": self.duration_s, "machinedetection": detection,
                "callconnecttime": time(self.at), "callDisconnectTime": time(end)}),
        ]
    }
}

/// `count` calls cycling through every kind, one every 37 minutes back from `newest`.
pub fn seeds(count: usize, newest: DateTime<Utc>) -> Vec<Seed> {
    (0..count)
        .map(|i| {
            let kind = KINDS[i % KINDS.len()];
            let at = newest - Duration::minutes(37 * i as i64);
            Seed::new(format!("call-{i:04}"), kind, at, (i as i64 * 7) % 95 + 3)
        })
        .collect()
}

/// Posts every notification of `seeds`, asserting each is accepted.
pub async fn post_all(app: &TestApp, seeds: &[Seed]) {
    for seed in seeds {
        for body in seed.notifications() {
            let response = app.notify(body.to_string()).await;
            assert_eq!(response.status(), 200, "{body}");
        }
    }
}

/// The API's order: newest `occurred_at` first, then greater conversation id.
pub fn api_order(seeds: &mut [&Seed]) {
    seeds.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
}
