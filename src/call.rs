//! Folding a call's events into one call record (CONTRACT §4). Pure: the record depends
//! only on the set of events, never on the order they arrived in.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::notification::{AmdMode, AmdResult, Event, Status};

/// An event as stored: the normalized fields plus what the store knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub id: i64,
    pub content_hash: String,
    pub received_at: DateTime<Utc>,
    pub event: Event,
}

/// Where a call stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    InProgress,
    Completed,
    Failed,
    Unknown,
}

/// What happened to a call, in the terms a contact center uses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Busy,
    Declined,
    NoAnswer,
    Unavailable,
    Failed,
    Human,
    Machine,
    NoSpeech,
    AmdUndetermined,
    Connected,
    Unknown,
}

macro_rules! snake_names {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The API and storage spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Reads the spelling back.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }
    };
}

snake_names!(CallState {
    InProgress => "in_progress",
    Completed => "completed",
    Failed => "failed",
    Unknown => "unknown",
});

snake_names!(Outcome {
    Busy => "busy",
    Declined => "declined",
    NoAnswer => "no_answer",
    Unavailable => "unavailable",
    Failed => "failed",
    Human => "human",
    Machine => "machine",
    NoSpeech => "no_speech",
    AmdUndetermined => "amd_undetermined",
    Connected => "connected",
    Unknown => "unknown",
});

/// One record per call (CONTRACT §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Call {
    pub conversation_id: String,
    pub state: CallState,
    /// The status of the event that decided `state`.
    pub status: Option<String>,
    pub outcome: Outcome,
    /// Canonical reason code of the terminal event, e.g. `busy-here`.
    pub reason_code: Option<String>,
    /// The terminal event's reason as received, e.g. `486 Busy Here`.
    pub reason: Option<String>,
    pub sip_code: Option<u16>,
    pub sip_reason: Option<String>,
    /// Whole seconds, from the terminal event.
    pub duration_s: Option<i64>,
    /// Earliest connect time of the answered/completed events; null for a failed call.
    pub connected_at: Option<DateTime<Utc>>,
    /// The terminal event's disconnect time.
    pub ended_at: Option<DateTime<Utc>>,
    pub amd_mode: Option<AmdMode>,
    /// The highest answering-machine-detection result among the events.
    pub amd_result: Option<AmdResult>,
    /// `connected_at`, else `ended_at`, else `first_seen_at`: the time lists sort and filter on.
    pub occurred_at: DateTime<Utc>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub event_count: i64,
    /// The dial-out this call came from (its `callId` or `sid` is the call's
    /// `conversation_id`); null for a call calltrail did not place.
    pub dialout: Option<crate::dialout::DialoutLink>,
}

/// Folds the events of one call into its record; `None` for an empty set.
///
/// Events are expected to share one conversation id; the record takes the id of the first.
pub fn fold(events: &[RecordedEvent]) -> Option<Call> {
    let first = events.first()?;
    let with_status = |status: Status| {
        events
            .iter()
            .filter(move |e| e.event.known_status() == Some(status))
    };

    let (state, deciding) = [
        (CallState::Completed, Status::Completed),
        (CallState::Failed, Status::Failed),
        (CallState::InProgress, Status::Answered),
    ]
    .into_iter()
    .find_map(|(state, status)| {
        with_status(status)
            .max_by(tie_break)
            .map(|e| (state, Some(e)))
    })
    .unwrap_or((CallState::Unknown, events.iter().max_by(tie_break)));

    let terminal = deciding.filter(|_| matches!(state, CallState::Completed | CallState::Failed));
    let from_terminal =
        |field: fn(&Event) -> Option<String>| terminal.and_then(|e| field(&e.event));

    let connected_at = if state == CallState::Failed {
        None
    } else {
        with_status(Status::Answered)
            .chain(with_status(Status::Completed))
            .filter_map(|e| e.event.connect_time)
            .min()
    };
    let ended_at = terminal.and_then(|e| e.event.disconnect_time);
    let amd_result = events.iter().filter_map(|e| e.event.amd_result).min();
    let amd_mode = events.iter().filter_map(|e| e.event.amd_mode).max();
    let first_seen_at = events.iter().map(|e| e.received_at).min()?;
    let last_seen_at = events.iter().map(|e| e.received_at).max()?;
    let sip_code = terminal.and_then(|e| e.event.sip_code);
    let reason_code = from_terminal(|e| e.reason_code.clone());

    Some(Call {
        conversation_id: first.event.conversation_id.clone(),
        state,
        status: deciding.map(|e| e.event.status.clone()),
        outcome: outcome(state, sip_code, reason_code.as_deref(), amd_result),
        reason_code,
        reason: from_terminal(|e| e.reason.clone()),
        sip_code,
        sip_reason: from_terminal(|e| e.sip_reason.clone()),
        duration_s: terminal.and_then(|e| e.event.duration_s),
        connected_at,
        ended_at,
        amd_mode,
        amd_result,
        occurred_at: connected_at.or(ended_at).unwrap_or(first_seen_at),
        first_seen_at,
        last_seen_at,
        event_count: events.len() as i64,
        // Not derived from events: the store attaches it when the call is read.
        dialout: None,
    })
}

/// Orders events that compete to decide a call: the later disconnect time wins, then the
/// later connect time, then the greater content hash. Independent of arrival order.
fn tie_break(a: &&RecordedEvent, b: &&RecordedEvent) -> std::cmp::Ordering {
    let key = |e: &RecordedEvent| {
        (
            e.event.disconnect_time,
            e.event.connect_time,
            e.content_hash.clone(),
        )
    };
    key(a).cmp(&key(b))
}

/// The first matching row of CONTRACT §4's outcome table.
pub fn outcome(
    state: CallState,
    sip_code: Option<u16>,
    reason_code: Option<&str>,
    amd_result: Option<AmdResult>,
) -> Outcome {
    let code_in = |codes: &[u16]| sip_code.is_some_and(|c| codes.contains(&c));
    let reason_in = |codes: &[&str]| reason_code.is_some_and(|r| codes.contains(&r));
    if state == CallState::Failed {
        return if code_in(&[486, 600]) || reason_in(&["busy-here", "busy-everywhere"]) {
            Outcome::Busy
        } else if code_in(&[480, 603]) || reason_in(&["temporarily-unavailable", "decline"]) {
            Outcome::Declined
        } else if code_in(&[408, 487]) || reason_in(&["request-timeout", "request-terminated"]) {
            Outcome::NoAnswer
        } else if sip_code.is_some_and(|c| (500..=599).contains(&c))
            || reason_in(&["service-unavailable"])
        {
            Outcome::Unavailable
        } else {
            Outcome::Failed
        };
    }
    match amd_result {
        Some(AmdResult::HumanDetected) => Outcome::Human,
        Some(
            AmdResult::MachineDetected
            | AmdResult::MachineStoppedSpeaking
            | AmdResult::ToneDetected,
        ) => Outcome::Machine,
        Some(AmdResult::NoSpeechDetected) => Outcome::NoSpeech,
        Some(AmdResult::DecisionTimeout | AmdResult::Error | AmdResult::Stopped) => {
            Outcome::AmdUndetermined
        }
        None if matches!(state, CallState::Completed | CallState::InProgress) => Outcome::Connected,
        None => Outcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_683_545_569 + seconds, 0).unwrap()
    }

    fn event(status: &str) -> Event {
        Event {
            conversation_id: "c-1".into(),
            status: status.into(),
            reason_code: None,
            reason_code_raw: None,
            reason: None,
            sip_code: None,
            sip_reason: None,
            amd_mode: None,
            amd_result: None,
            duration_s: None,
            connect_time: None,
            disconnect_time: None,
            warnings: Vec::new(),
        }
    }

    fn recorded(id: i64, event: Event) -> RecordedEvent {
        RecordedEvent {
            id,
            content_hash: format!("{id:064x}"),
            received_at: at(100 + id),
            event,
        }
    }

    #[test]
    fn outcome_table_rows_in_order() {
        use CallState::*;
        type Row = (
            CallState,
            Option<u16>,
            Option<&'static str>,
            Option<AmdResult>,
            Outcome,
        );
        let cases: &[Row] = &[
            (Failed, Some(486), None, None, Outcome::Busy),
            (Failed, Some(600), None, None, Outcome::Busy),
            (Failed, None, Some("busy-everywhere"), None, Outcome::Busy),
            (Failed, Some(480), None, None, Outcome::Declined),
            (Failed, Some(603), None, None, Outcome::Declined),
            (Failed, None, Some("decline"), None, Outcome::Declined),
            (
                Failed,
                None,
                Some("temporarily-unavailable"),
                None,
                Outcome::Declined,
            ),
            (Failed, Some(408), None, None, Outcome::NoAnswer),
            (Failed, Some(487), None, None, Outcome::NoAnswer),
            (
                Failed,
                None,
                Some("request-terminated"),
                None,
                Outcome::NoAnswer,
            ),
            (Failed, Some(503), None, None, Outcome::Unavailable),
            (Failed, Some(500), None, None, Outcome::Unavailable),
            (
                Failed,
                None,
                Some("service-unavailable"),
                None,
                Outcome::Unavailable,
            ),
            (Failed, Some(404), Some("not-found"), None, Outcome::Failed),
            (
                Failed,
                None,
                None,
                Some(AmdResult::HumanDetected),
                Outcome::Failed,
            ),
            (
                Completed,
                Some(200),
                None,
                Some(AmdResult::HumanDetected),
                Outcome::Human,
            ),
            (
                Completed,
                None,
                None,
                Some(AmdResult::MachineDetected),
                Outcome::Machine,
            ),
            (
                Completed,
                None,
                None,
                Some(AmdResult::MachineStoppedSpeaking),
                Outcome::Machine,
            ),
            (
                InProgress,
                None,
                None,
                Some(AmdResult::ToneDetected),
                Outcome::Machine,
            ),
            (
                Completed,
                None,
                None,
                Some(AmdResult::NoSpeechDetected),
                Outcome::NoSpeech,
            ),
            (
                Completed,
                None,
                None,
                Some(AmdResult::DecisionTimeout),
                Outcome::AmdUndetermined,
            ),
            (
                Completed,
                None,
                None,
                Some(AmdResult::Error),
                Outcome::AmdUndetermined,
            ),
            (
                Completed,
                None,
                None,
                Some(AmdResult::Stopped),
                Outcome::AmdUndetermined,
            ),
            (Completed, Some(200), None, None, Outcome::Connected),
            (InProgress, None, None, None, Outcome::Connected),
            (Unknown, None, None, None, Outcome::Unknown),
            (
                Unknown,
                None,
                None,
                Some(AmdResult::HumanDetected),
                Outcome::Human,
            ),
        ];
        for (state, sip, reason, amd, expected) in cases {
            assert_eq!(
                outcome(*state, *sip, *reason, *amd),
                *expected,
                "{state:?} {sip:?} {reason:?} {amd:?}"
            );
        }
    }

    #[test]
    fn completed_beats_failed_beats_answered() {
        let mut answered = event("answered");
        answered.connect_time = Some(at(0));
        let mut failed = event("failed");
        failed.sip_code = Some(486);
        failed.connect_time = Some(at(5));
        failed.disconnect_time = Some(at(5));
        let mut completed = event("completed");
        completed.connect_time = Some(at(1));
        completed.disconnect_time = Some(at(15));
        completed.duration_s = Some(14);

        let in_progress = fold(&[recorded(1, answered.clone())]).unwrap();
        let failed_call = fold(&[recorded(1, failed.clone())]).unwrap();
        let all = fold(&[
            recorded(1, answered),
            recorded(2, failed),
            recorded(3, completed),
        ])
        .unwrap();

        assert_eq!(
            (in_progress.state, in_progress.outcome),
            (CallState::InProgress, Outcome::Connected)
        );
        assert_eq!(in_progress.connected_at, Some(at(0)));
        assert_eq!(in_progress.ended_at, None);
        assert_eq!(
            (failed_call.state, failed_call.outcome),
            (CallState::Failed, Outcome::Busy)
        );
        assert_eq!(
            failed_call.connected_at, None,
            "a failed call never connected"
        );
        assert_eq!(
            failed_call.occurred_at,
            at(5),
            "occurred_at falls back to ended_at"
        );
        assert_eq!(all.state, CallState::Completed);
        assert_eq!(all.status.as_deref(), Some("completed"));
        assert_eq!(
            all.connected_at,
            Some(at(0)),
            "earliest connect of answered/completed"
        );
        assert_eq!(all.ended_at, Some(at(15)));
        assert_eq!(all.duration_s, Some(14));
        assert_eq!(
            all.sip_code, None,
            "taken from the deciding completed event"
        );
        assert_eq!(all.event_count, 3);
        assert_eq!((all.first_seen_at, all.last_seen_at), (at(101), at(103)));
    }

    #[test]
    fn amd_result_takes_the_highest_precedence() {
        let results = [
            AmdResult::HumanDetected,
            AmdResult::MachineDetected,
            AmdResult::DecisionTimeout,
        ];
        let events: Vec<_> = results
            .iter()
            .enumerate()
            .map(|(i, result)| {
                let mut e = event("completed");
                e.amd_result = Some(*result);
                recorded(i as i64, e)
            })
            .collect();

        let call = fold(&events).unwrap();

        assert_eq!(call.amd_result, Some(AmdResult::MachineDetected));
        assert_eq!(call.outcome, Outcome::Machine);
    }

    #[test]
    fn unknown_statuses_do_not_change_the_state() {
        let call = fold(&[recorded(1, event("ringing"))]).unwrap();
        assert_eq!(
            (call.state, call.outcome),
            (CallState::Unknown, Outcome::Unknown)
        );
        assert_eq!(call.status.as_deref(), Some("ringing"));
        assert_eq!(
            call.occurred_at,
            at(101),
            "occurred_at falls back to first_seen_at"
        );
        assert!(fold(&[]).is_none());
    }

    fn arb_time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        prop::option::of((0i64..5).prop_map(at))
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        let status = prop::sample::select(vec!["answered", "completed", "failed", "ringing"]);
        let sip = prop::option::of(prop::sample::select(vec![200u16, 486, 480, 503, 408, 404]));
        let reason = prop::option::of(prop::sample::select(vec![
            "busy-here",
            "caller-disconnected",
            "decline",
        ]));
        let amd_result = prop::option::of(prop::sample::select(AmdResult::ALL.to_vec()));
        let amd_mode = prop::option::of(prop::sample::select(AmdMode::ALL.to_vec()));
        (
            status,
            sip,
            reason,
            amd_result,
            amd_mode,
            arb_time(),
            arb_time(),
            prop::option::of(0i64..60),
        )
            .prop_map(
                |(
                    status,
                    sip_code,
                    reason_code,
                    amd_result,
                    amd_mode,
                    connect_time,
                    disconnect_time,
                    duration_s,
                )| Event {
                    sip_code,
                    reason_code: reason_code.map(str::to_owned),
                    amd_result,
                    amd_mode,
                    connect_time,
                    disconnect_time,
                    duration_s,
                    ..event(status)
                },
            )
    }

    proptest! {
        /// The call depends only on the set of events: shuffling which event arrived when
        /// (ids and received times follow arrival) never changes the record.
        #[test]
        fn every_arrival_order_gives_the_same_call(
            events in prop::collection::vec(arb_event(), 1..6),
            order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
        ) {
            let arrive = |sequence: &[&Event]| -> Call {
                let recorded: Vec<RecordedEvent> = sequence
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let mut r = recorded(i as i64, (*e).clone());
                        // The identity of a notification is its content, not its arrival.
                        r.content_hash = format!("{:?}", e);
                        r
                    })
                    .collect();
                fold(&recorded).unwrap()
            };
            let original: Vec<&Event> = events.iter().collect();
            let expected = arrive(&original);
            for permutation in permutations(&original, order) {
                prop_assert_eq!(&arrive(&permutation), &expected);
            }
        }
    }

    /// Every permutation for small sets; for larger ones a seeded sample of them.
    fn permutations<'a>(items: &[&'a Event], seed: u64) -> Vec<Vec<&'a Event>> {
        let mut all = vec![Vec::new()];
        for item in items {
            let mut next = Vec::new();
            for partial in &all {
                for position in 0..=partial.len() {
                    let mut p: Vec<&Event> = partial.clone();
                    p.insert(position, *item);
                    next.push(p);
                }
            }
            all = next;
        }
        let step = (all.len() / 24).max(1);
        let offset = (seed as usize) % step;
        all.into_iter().skip(offset).step_by(step).collect()
    }
}
