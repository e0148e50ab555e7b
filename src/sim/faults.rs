//! Fault injection: what the simulator does to a call's deliveries. Duplicates, reordering
//! and key-case variants are decided here (pure, from the [`fastrand::Rng`] passed in);
//! retrying non-2xx answers is the player's.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::script::Script;

/// The faults to inject, each a probability from 0 to 1 (or a count).
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Chance that a notification is delivered twice.
    pub duplicates: f64,
    /// Chance that a call's notifications arrive in reverse order (the `completed` before the
    /// `answered`).
    pub reorder: f64,
    /// Chance that a notification spells its keys another way (`machineDetection`,
    /// `callDisconnecttime`, `ConversationID`, …).
    pub key_variants: f64,
    /// How often a delivery answered with a non-2xx status (or not at all) is retried.
    pub retries: u32,
    /// The wait before the first retry; doubled for each next one.
    pub retry_backoff: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            duplicates: 0.0,
            reorder: 0.0,
            key_variants: 0.0,
            retries: 3,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// One delivery of one of the script's notifications.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// Which notification of the script.
    pub index: usize,
    /// Simulated seconds after the dial-out.
    pub offset_s: u32,
    /// True for the second copy of a duplicated notification.
    pub copy: bool,
}

/// How a call's notifications are delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub deliveries: Vec<Delivery>,
    pub reordered: bool,
}

/// The deliveries of `script` under `faults`, in sending order.
pub fn plan(script: &Script, faults: &Faults, rng: &mut fastrand::Rng) -> Plan {
    let count = script.notifications.len();
    let reordered = count > 1 && rng.f64() < faults.reorder;
    let order: Vec<usize> = if reordered {
        (0..count).rev().collect()
    } else {
        (0..count).collect()
    };
    // Reordered: held back until the last one is due, then sent last first.
    let last = script.notifications.last().map_or(0, |n| n.offset_s);
    let mut deliveries = Vec::new();
    for index in order {
        let offset_s = if reordered {
            last
        } else {
            script.notifications[index].offset_s
        };
        deliveries.push(Delivery {
            index,
            offset_s,
            copy: false,
        });
        if rng.f64() < faults.duplicates {
            deliveries.push(Delivery {
                index,
                offset_s,
                copy: true,
            });
        }
    }
    Plan {
        deliveries,
        reordered,
    }
}

/// The other spellings the gateway (or a proxy) might use for each key.
const VARIANTS: &[(&str, &[&str])] = &[
    ("conversationId", &["ConversationID", "conversation_id"]),
    (
        "machinedetection",
        &["machineDetection", "MachineDetection"],
    ),
    (
        "callDisconnectTime",
        &["callDisconnecttime", "calldisconnecttime"],
    ),
    ("callconnecttime", &["callConnectTime", "call_connect_time"]),
    ("reasonCode", &["reasoncode", "reason_code"]),
];

/// `body` with each key that has variants respelled, when the dice say so.
pub fn vary_keys(body: &Value, chance: f64, rng: &mut fastrand::Rng) -> Value {
    let Value::Object(object) = body else {
        return body.clone();
    };
    if chance <= 0.0 || rng.f64() >= chance {
        return body.clone();
    }
    let varied: Map<String, Value> = object
        .iter()
        .map(|(key, value)| {
            let key = match VARIANTS.iter().find(|(k, _)| k == key) {
                Some((_, spellings)) => spellings[rng.usize(..spellings.len())].to_owned(),
                None => key.clone(),
            };
            (key, value.clone())
        })
        .collect();
    Value::Object(varied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{AmdMode, DateOrder, Format, NormalizeSettings};
    use crate::sim::outcome::SimOutcome;
    use crate::sim::script::{CallPlan, Timers, script};

    fn answered_script() -> Script {
        let plan = CallPlan {
            call_id: "c-1".into(),
            outcome: SimOutcome::Human,
            amd_mode: Some(AmdMode::Detect),
            timers: Timers::default(),
            dialed_at: "2023-05-08T11:32:40Z".parse().unwrap(),
            zone: chrono_tz::UTC,
            date_order: DateOrder::Mdy,
        };
        script(&plan, &mut fastrand::Rng::with_seed(5))
    }

    #[test]
    fn without_faults_each_notification_goes_once_in_order() {
        let script = answered_script();
        let plan = plan(
            &script,
            &Faults::default(),
            &mut fastrand::Rng::with_seed(1),
        );
        assert!(!plan.reordered);
        let order: Vec<(usize, bool)> = plan.deliveries.iter().map(|d| (d.index, d.copy)).collect();
        assert_eq!(order, [(0, false), (1, false)]);
        assert_eq!(
            plan.deliveries[1].offset_s,
            script.notifications[1].offset_s
        );
    }

    #[test]
    fn reordering_sends_the_last_first_and_duplicates_follow_their_original() {
        let script = answered_script();
        let faults = Faults {
            duplicates: 1.0,
            reorder: 1.0,
            ..Faults::default()
        };
        let plan = plan(&script, &faults, &mut fastrand::Rng::with_seed(1));
        assert!(plan.reordered);
        let order: Vec<(usize, bool)> = plan.deliveries.iter().map(|d| (d.index, d.copy)).collect();
        assert_eq!(order, [(1, false), (1, true), (0, false), (0, true)]);
        assert!(
            plan.deliveries
                .iter()
                .all(|d| d.offset_s == script.notifications[1].offset_s)
        );
    }

    #[test]
    fn key_variants_still_read_the_same_in_calltrail() {
        let script = answered_script();
        let body = &script.notifications[1].body;
        let mut rng = fastrand::Rng::with_seed(2);
        let varied = vary_keys(body, 1.0, &mut rng);
        assert_ne!(&varied, body);
        let settings = NormalizeSettings::default();
        let original = Format::Kore
            .parse(body.to_string().as_bytes(), &settings)
            .unwrap();
        let read = Format::Kore
            .parse(varied.to_string().as_bytes(), &settings)
            .unwrap();
        assert_eq!(read.event, original.event);
        assert_eq!(&vary_keys(body, 0.0, &mut rng), body);
    }
}
