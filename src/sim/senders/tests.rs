use chrono::{TimeZone, Utc};

use super::*;
use crate::call::{RecordedEvent, fold};
use crate::notification::{AmdMode, DateOrder};
use crate::sim::outcome::SimOutcome;
use crate::sim::script::{self, CallPlan, Timers};

/// Every outcome the simulator plays, through each sender and calltrail's parser and fold,
/// ends in the state and outcome the script expects (Twilio has no "no speech": undetermined).
#[test]
fn every_simulated_call_folds_the_same_from_every_sender() {
    let settings = NormalizeSettings::default();
    let mut rng = fastrand::Rng::with_seed(7);
    for outcome in SimOutcome::ALL.iter().copied() {
        for amd_mode in [None, Some(AmdMode::Detect), Some(AmdMode::Disconnect)] {
            let plan = CallPlan {
                call_id: format!("sim-{outcome:?}-{amd_mode:?}"),
                outcome,
                amd_mode,
                timers: Timers::default(),
                dialed_at: Utc.timestamp_opt(1_710_000_000, 0).unwrap(),
                zone: chrono_tz::UTC,
                date_order: DateOrder::Mdy,
            };
            let script = script::script(&plan, &mut rng);
            for format in Format::ALL {
                let mut events = Vec::new();
                for notification in &script.notifications {
                    for rendered in render(format, &notification.body, &settings) {
                        let parsed = format.parse(&rendered.body, &settings).unwrap_or_else(|r| {
                            panic!(
                                "{format:?} {}: {r}",
                                String::from_utf8_lossy(&rendered.body)
                            )
                        });
                        assert!(
                            parsed.event.warnings.is_empty(),
                            "{format:?} {:?}",
                            parsed.event
                        );
                        let id = events.len() as i64;
                        events.push(RecordedEvent {
                            id,
                            content_hash: parsed.content_hash,
                            received_at: plan.dialed_at,
                            event: parsed.event,
                        });
                    }
                }
                let call = fold(&events).unwrap();
                let mut expected = script.expected.outcome;
                if format == Format::Twilio && expected == "no_speech" {
                    expected = "amd_undetermined";
                }
                let label = format!("{format:?} {outcome:?} {amd_mode:?}");
                assert_eq!(call.state.as_str(), script.expected.state, "{label}");
                assert_eq!(call.outcome.as_str(), expected, "{label}");
                if call.state.as_str() == "completed" {
                    assert_eq!(call.duration_s, script.expected.duration_s, "{label}");
                }
            }
        }
    }
}

#[test]
fn signatures_are_what_calltrail_verifies() {
    use crate::notification::signature::{TwilioBody, verify_timestamped, verify_twilio};
    let body = b"{\"call_sid\":\"c\"}";
    let (name, value) = sign(Format::Jambonz, "s", 1_700_000_000, "", body);
    assert_eq!(name, "Jambonz-Signature");
    assert_eq!(
        verify_timestamped(name, Some(&value), body, &["s"], 1_700_000_000, 300),
        Ok(())
    );
    let (name, value) = sign(Format::Kore, "s", 1_700_000_000, "", body);
    assert_eq!(name, "SAVG-Signature");
    assert!(value.starts_with("t=1700000000,v1="));
    let form = b"CallSid=CA1&CallStatus=busy";
    let url = "https://calltrail.example.com/twilio/notify";
    let (name, value) = sign(Format::Twilio, "tok", 0, url, form);
    assert_eq!(name, "X-Twilio-Signature");
    let pairs = form_pairs(form);
    assert_eq!(
        verify_twilio(Some(&value), url, TwilioBody::Form(&pairs), &["tok"]),
        Ok(())
    );
}
