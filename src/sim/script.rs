//! The notifications a simulated call sends, and what calltrail should make of them. Pure:
//! everything random comes from the [`fastrand::Rng`] passed in.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::outcome::SimOutcome;
use super::time::gateway_time;
use crate::notification::{AmdMode, DateOrder};

/// What a call is played from: the dial-out request's settings and the chosen outcome.
#[derive(Debug, Clone)]
pub struct CallPlan {
    /// The `conversationId` of every notification: the dial-out's `callId`.
    pub call_id: String,
    pub outcome: SimOutcome,
    /// The requested `machineDetection`; `None` when the request had none.
    pub amd_mode: Option<AmdMode>,
    pub timers: Timers,
    /// When the dial-out was taken (whole seconds: the gateway's times have no fractions).
    pub dialed_at: DateTime<Utc>,
    pub zone: Tz,
    pub date_order: DateOrder,
}

/// The AMD timers of the request (milliseconds), the gateway's defaults where absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timers {
    pub no_speech_timeout_ms: u32,
    pub decision_timeout_ms: u32,
    pub tone_timeout_ms: u32,
    pub greeting_completion_timeout_ms: u32,
}

impl Default for Timers {
    fn default() -> Self {
        let defaults = crate::dialout::Timers::default();
        Self {
            no_speech_timeout_ms: defaults.no_speech_timeout_ms,
            decision_timeout_ms: defaults.decision_timeout_ms,
            tone_timeout_ms: defaults.tone_timeout_ms,
            greeting_completion_timeout_ms: defaults.greeting_completion_timeout_ms,
        }
    }
}

/// One notification and when the call sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scheduled {
    /// Simulated seconds after the dial-out.
    pub offset_s: u32,
    pub body: Value,
}

/// What calltrail's call record should say once every notification is in (docs/api.md, "The
/// call record").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub state: &'static str,
    pub outcome: &'static str,
    pub amd_result: Option<&'static str>,
    pub reason: &'static str,
    pub reason_code: &'static str,
    pub sip_code: u16,
    pub duration_s: Option<i64>,
    pub connected_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
}

/// A call's notifications in the order the gateway would send them, and the truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Script {
    pub notifications: Vec<Scheduled>,
    pub expected: Expected,
}

/// Plays `plan` on paper.
pub fn script(plan: &CallPlan, rng: &mut fastrand::Rng) -> Script {
    if plan.outcome.is_answered() {
        answered(plan, rng)
    } else {
        failed(plan, rng)
    }
}

/// A call that is never answered: one `failed` notification, shaped like the seed's samples
/// (the connect and disconnect times equal, the AMD mode echoed in `machinedetection`).
fn failed(plan: &CallPlan, rng: &mut fastrand::Rng) -> Script {
    let (ring_s, reason, reason_code_raw, reason_code, sip_code, outcome) = match plan.outcome {
        SimOutcome::Busy => (
            rng.u32(1..=3),
            "486 Busy Here",
            "Busy Here",
            "busy-here",
            486,
            "busy",
        ),
        SimOutcome::Declined => (
            rng.u32(3..=12),
            "480 Temporarily Unavailable",
            "Temporarily Unavailable",
            "temporarily-unavailable",
            480,
            "declined",
        ),
        SimOutcome::NoAnswer => (
            rng.u32(25..=35),
            "408 Request Timeout",
            "Request Timeout",
            "request-timeout",
            408,
            "no_answer",
        ),
        _ => (
            rng.u32(0..=1),
            "503 Service Unavailable",
            "Service Unavailable",
            "service-unavailable",
            503,
            "unavailable",
        ),
    };
    let at = plan.dialed_at + TimeDelta::seconds(i64::from(ring_s));
    let time = gateway_time(at, plan.zone, plan.date_order);
    let mut body = Map::new();
    body.insert("conversationId".into(), json!(plan.call_id));
    body.insert("status".into(), json!("failed"));
    body.insert("reason".into(), json!(reason));
    if let Some(mode) = plan.amd_mode {
        body.insert("machinedetection".into(), json!(mode.as_str()));
    }
    body.insert("callconnecttime".into(), json!(time));
    body.insert("reasonCode".into(), json!(reason_code_raw));
    body.insert("callDisconnectTime".into(), json!(time));
    Script {
        notifications: vec![Scheduled {
            offset_s: ring_s,
            body: Value::Object(body),
        }],
        expected: Expected {
            state: "failed",
            outcome,
            amd_result: None,
            reason,
            reason_code,
            sip_code,
            // Derived from the two equal times.
            duration_s: Some(0),
            connected_at: None,
            ended_at: at,
        },
    }
}

/// An answered call: `answered`, then `completed` when someone hangs up. With AMD on
/// (`detect` or `disconnect`) the completed notification carries the AMD result; with
/// `disconnect`, a machine or tone makes the gateway hang up as soon as it is detected.
fn answered(plan: &CallPlan, rng: &mut fastrand::Rng) -> Script {
    let ring_s = rng.u32(2..=10);
    let connected_at = plan.dialed_at + TimeDelta::seconds(i64::from(ring_s));
    let secs = |ms: u32| ms.div_ceil(1000).max(1);
    let timers = plan.timers;
    // When AMD decides, in seconds after the connect, and what it says.
    let (decided_s, amd_result, amd_outcome) = match plan.outcome {
        SimOutcome::Human => (rng.u32(1..=3), "amd_human_detected", "human"),
        SimOutcome::Machine => (
            secs(timers.greeting_completion_timeout_ms) + rng.u32(2..=5),
            "amd_machine_detected",
            "machine",
        ),
        SimOutcome::Tone => (
            rng.u32(3..=8).min(secs(timers.tone_timeout_ms)),
            "amd_tone_detected",
            "machine",
        ),
        SimOutcome::NoSpeech => (
            secs(timers.no_speech_timeout_ms),
            "amd_no_speech_detected",
            "no_speech",
        ),
        _ => (
            secs(timers.decision_timeout_ms),
            "amd_decision_timeout",
            "amd_undetermined",
        ),
    };
    let amd_on = matches!(plan.amd_mode, Some(AmdMode::Detect | AmdMode::Disconnect));
    let machine = matches!(plan.outcome, SimOutcome::Machine | SimOutcome::Tone);
    let hung_up_by_gateway = plan.amd_mode == Some(AmdMode::Disconnect) && machine;
    let (duration_s, reason_code_raw, reason_code) = if hung_up_by_gateway {
        (decided_s, "SAVG-disconnected", "savg-disconnected")
    } else {
        let talk_s = match plan.outcome {
            SimOutcome::Human => rng.u32(10..=90),
            SimOutcome::Machine => rng.u32(15..=40),
            SimOutcome::Tone => rng.u32(5..=20),
            SimOutcome::NoSpeech => rng.u32(3..=10),
            _ => rng.u32(5..=30),
        };
        if rng.bool() {
            (
                decided_s + talk_s,
                "caller-disconnected",
                "caller-disconnected",
            )
        } else {
            (decided_s + talk_s, "Bot-disconnected", "bot-disconnected")
        }
    };
    let ended_at = connected_at + TimeDelta::seconds(i64::from(duration_s));
    let connect = gateway_time(connected_at, plan.zone, plan.date_order);
    let disconnect = gateway_time(ended_at, plan.zone, plan.date_order);

    let answered =
        json!({"conversationId": plan.call_id, "status": "answered", "callconnecttime": connect});
    let mut completed = Map::new();
    completed.insert("conversationId".into(), json!(plan.call_id));
    completed.insert("reasonCode".into(), json!(reason_code_raw));
    completed.insert("status".into(), json!("completed"));
    completed.insert("reason".into(), json!("200 OK"));
    completed.insert("duration".into(), json!(duration_s));
    match plan.amd_mode {
        Some(AmdMode::Disabled) => {
            completed.insert("machinedetection".into(), json!("disabled"));
        }
        Some(_) => {
            completed.insert("machinedetection".into(), json!(amd_result));
        }
        None => {}
    }
    completed.insert("callconnecttime".into(), json!(connect));
    completed.insert("callDisconnectTime".into(), json!(disconnect));

    Script {
        notifications: vec![
            Scheduled {
                offset_s: ring_s,
                body: answered,
            },
            Scheduled {
                offset_s: ring_s + duration_s,
                body: Value::Object(completed),
            },
        ],
        expected: Expected {
            state: "completed",
            outcome: if amd_on { amd_outcome } else { "connected" },
            amd_result: amd_on.then_some(amd_result),
            reason: "200 OK",
            reason_code,
            sip_code: 200,
            duration_s: Some(i64::from(duration_s)),
            connected_at: Some(connected_at),
            ended_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call;
    use crate::notification::{Format, NormalizeSettings};

    fn plan(outcome: SimOutcome, amd_mode: Option<AmdMode>) -> CallPlan {
        CallPlan {
            call_id: "2c01240f-6880-123c-179b-02d8f501xxxx".into(),
            outcome,
            amd_mode,
            timers: Timers::default(),
            dialed_at: "2023-05-08T11:32:40Z".parse().unwrap(),
            zone: chrono_tz::UTC,
            date_order: DateOrder::Mdy,
        }
    }

    /// What calltrail's own pipeline makes of the script's notifications.
    fn folded(script: &Script) -> call::Call {
        let events: Vec<call::RecordedEvent> = script
            .notifications
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let parsed = Format::Kore
                    .parse(n.body.to_string().as_bytes(), &NormalizeSettings::default())
                    .unwrap();
                assert!(
                    parsed.event.warnings.is_empty(),
                    "{:?}",
                    parsed.event.warnings
                );
                call::RecordedEvent {
                    id: i as i64,
                    content_hash: parsed.content_hash,
                    received_at: Utc::now(),
                    event: parsed.event,
                }
            })
            .collect();
        call::fold(&events).unwrap()
    }

    #[test]
    fn a_busy_call_is_one_failed_notification_like_the_sample() {
        let script = script(
            &plan(SimOutcome::Busy, Some(AmdMode::Disconnect)),
            &mut fastrand::Rng::with_seed(3),
        );

        assert_eq!(script.notifications.len(), 1);
        let body = &script.notifications[0].body;
        let keys: std::collections::BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let sample: Value = serde_json::from_str(include_str!(
            "../../tests/data/samples/05-failed-486-busy.json"
        ))
        .unwrap();
        let sample_keys: std::collections::BTreeSet<&str> = sample
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, sample_keys);
        assert_eq!(body["reason"], "486 Busy Here");
        assert_eq!(body["reasonCode"], "Busy Here");
        assert_eq!(body["machinedetection"], "disconnect");
        assert_eq!(body["callconnecttime"], body["callDisconnectTime"]);
        assert_eq!(script.expected.outcome, "busy");
    }

    #[test]
    fn amd_follows_the_requested_mode() {
        let mut rng = fastrand::Rng::with_seed(9);
        let detect = script(&plan(SimOutcome::Machine, Some(AmdMode::Detect)), &mut rng);
        let disconnect = script(
            &plan(SimOutcome::Machine, Some(AmdMode::Disconnect)),
            &mut rng,
        );
        let disabled = script(
            &plan(SimOutcome::Machine, Some(AmdMode::Disabled)),
            &mut rng,
        );
        let human = script(
            &plan(SimOutcome::Human, Some(AmdMode::Disconnect)),
            &mut rng,
        );

        assert_eq!(
            detect.notifications[1].body["machinedetection"],
            "amd_machine_detected"
        );
        assert_ne!(
            detect.notifications[1].body["reasonCode"], "SAVG-disconnected",
            "detect: the call goes on"
        );
        assert_eq!(
            disconnect.notifications[1].body["reasonCode"], "SAVG-disconnected",
            "disconnect: the gateway hangs up"
        );
        assert!(disconnect.expected.duration_s < detect.expected.duration_s);
        assert_eq!(
            disabled.notifications[1].body["machinedetection"],
            "disabled"
        );
        assert_eq!(disabled.expected.outcome, "connected");
        assert_eq!(disabled.expected.amd_result, None);
        assert_ne!(
            human.notifications[1].body["reasonCode"],
            "SAVG-disconnected"
        );
        assert_eq!(human.expected.outcome, "human");
    }

    #[test]
    fn the_no_speech_and_decision_timers_set_when_amd_decides() {
        let mut slow = plan(SimOutcome::DecisionTimeout, Some(AmdMode::Disconnect));
        slow.timers.decision_timeout_ms = 42_000;
        let script = script(&slow, &mut fastrand::Rng::with_seed(1));
        assert!(script.expected.duration_s.unwrap() > 42);
        assert_eq!(script.expected.outcome, "amd_undetermined");
    }

    #[test]
    fn calltrail_folds_every_script_into_its_expected_record() {
        let mut rng = fastrand::Rng::with_seed(11);
        let modes = [
            None,
            Some(AmdMode::Disabled),
            Some(AmdMode::Detect),
            Some(AmdMode::Disconnect),
        ];
        for outcome in SimOutcome::ALL {
            for mode in modes {
                let script = script(&plan(*outcome, mode), &mut rng);
                let call = folded(&script);
                let expected = &script.expected;
                let label = format!("{outcome:?} {mode:?}");
                assert_eq!(call.state.as_str(), expected.state, "{label}");
                assert_eq!(call.outcome.as_str(), expected.outcome, "{label}");
                assert_eq!(
                    call.amd_result.map(|r| r.as_str()),
                    expected.amd_result,
                    "{label}"
                );
                assert_eq!(call.reason.as_deref(), Some(expected.reason), "{label}");
                assert_eq!(
                    call.reason_code.as_deref(),
                    Some(expected.reason_code),
                    "{label}"
                );
                assert_eq!(call.sip_code, Some(expected.sip_code), "{label}");
                assert_eq!(call.duration_s, expected.duration_s, "{label}");
                assert_eq!(call.connected_at, expected.connected_at, "{label}");
                assert_eq!(call.ended_at, Some(expected.ended_at), "{label}");
            }
        }
    }
}
