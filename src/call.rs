//! Folding a call's events into one call record (docs/api.md, "The call record"). Pure:
//! the record depends only on the set of events, never on the order they arrived in.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::notification::{AmdMode, AmdResult, Event, Format, Stage, Status};

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

/// One record per call (docs/api.md, "The call record").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Call {
    pub conversation_id: String,
    /// The gateway that sent the call's notifications: that of the event that decided
    /// `state`.
    pub source: Format,
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
    /// How long the callee's phone rang, in milliseconds: from the completed or failed event
    /// that decided the call, else from the earliest event that has it.
    pub ring_ms: Option<i64>,
    /// How long the call took to connect, in milliseconds; chosen as `ring_ms`.
    pub connect_ms: Option<i64>,
    /// The dial-out this call came from (its `callId` or `sid` is the call's
    /// `conversation_id`); null for a call calltrail did not place.
    pub dialout: Option<crate::dialout::DialoutLink>,
}

/// Folds the events of one call into its record; `None` for an empty set.
///
/// Events are expected to share one conversation id; the record takes the id of the first.
pub fn fold(events: &[RecordedEvent]) -> Option<Call> {
    let first = events.first()?;
    let at_stage = |stage: Stage| {
        events
            .iter()
            .filter(move |e| e.event.known_status().map(Status::stage) == Some(stage))
    };

    let (state, deciding) = decide(events);
    let terminal = deciding.filter(|_| state.is_terminal());
    let from_terminal =
        |field: fn(&Event) -> Option<String>| terminal.and_then(|e| field(&e.event));

    let connected_at = if state == CallState::Failed {
        None
    } else {
        at_stage(Stage::Up)
            .chain(at_stage(Stage::Completed))
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
    let RingAndConnect {
        ring_ms,
        connect_ms,
    } = ring_and_connect(events);

    Some(Call {
        conversation_id: first.event.conversation_id.clone(),
        source: deciding.unwrap_or(first).event.source,
        state,
        status: deciding.map(|e| e.event.status.clone()),
        outcome: outcome(
            state,
            deciding.and_then(|e| e.event.known_status()),
            sip_code,
            reason_code.as_deref(),
            amd_result,
        ),
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
        ring_ms,
        connect_ms,
        // Not derived from events: the store attaches it when the call is read.
        dialout: None,
    })
}

/// The call's state and the event that decided it (the last of the unknown ones when none
/// did).
fn decide(events: &[RecordedEvent]) -> (CallState, Option<&RecordedEvent>) {
    let at_stage = |stage: Stage| {
        events
            .iter()
            .filter(move |e| e.event.known_status().map(Status::stage) == Some(stage))
    };
    [
        (CallState::Completed, Stage::Completed),
        (CallState::Failed, Stage::Failed),
        (CallState::InProgress, Stage::Up),
    ]
    .into_iter()
    .find_map(|(state, stage)| at_stage(stage).max_by(tie_break).map(|e| (state, Some(e))))
    .unwrap_or((CallState::Unknown, events.iter().max_by(tie_break)))
}

/// How long a call rang and took to connect, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingAndConnect {
    pub ring_ms: Option<i64>,
    pub connect_ms: Option<i64>,
}

/// A call's ring and connect durations (docs/api.md, "The call record"): each from the
/// completed or failed event that decided the call when it has one, else from the earliest
/// event that has one — earliest by the event's own connect (else disconnect) time, then
/// content hash, so that arrival order never matters.
pub fn ring_and_connect(events: &[RecordedEvent]) -> RingAndConnect {
    let (state, deciding) = decide(events);
    let terminal = deciding.filter(|_| state.is_terminal());
    let pick = |field: fn(&Event) -> Option<i64>| {
        terminal.and_then(|e| field(&e.event)).or_else(|| {
            events
                .iter()
                .filter_map(|e| field(&e.event).map(|value| (e, value)))
                .min_by_key(|(e, _)| {
                    let at = e.event.connect_time.or(e.event.disconnect_time);
                    (at.is_none(), at, e.content_hash.clone())
                })
                .map(|(_, value)| value)
        })
    };
    RingAndConnect {
        ring_ms: pick(|e| e.ring_ms),
        connect_ms: pick(|e| e.connect_ms),
    }
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

/// The first matching row of the outcome table (docs/api.md, "The call record"); `status` is
/// that of the event that decided `state` (jambonz's and Twilio's `busy`, `no-answer` and
/// `canceled` say what SIP codes say for Kore.ai).
pub fn outcome(
    state: CallState,
    status: Option<Status>,
    sip_code: Option<u16>,
    reason_code: Option<&str>,
    amd_result: Option<AmdResult>,
) -> Outcome {
    let code_in = |codes: &[u16]| sip_code.is_some_and(|c| codes.contains(&c));
    let reason_in = |codes: &[&str]| reason_code.is_some_and(|r| codes.contains(&r));
    let status_in = |statuses: &[Status]| status.is_some_and(|s| statuses.contains(&s));
    if state == CallState::Failed {
        return if code_in(&[486, 600])
            || reason_in(&["busy-here", "busy-everywhere"])
            || status_in(&[Status::Busy])
        {
            Outcome::Busy
        } else if code_in(&[480, 603]) || reason_in(&["temporarily-unavailable", "decline"]) {
            Outcome::Declined
        } else if code_in(&[408, 487])
            || reason_in(&["request-timeout", "request-terminated"])
            || status_in(&[Status::NoAnswer, Status::Canceled])
        {
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

/// A call that a write made terminal (completed or failed) for the first time, with the
/// source and outcome it has then: what `calltrail_calls_ended_total` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub source: Format,
    pub outcome: Outcome,
}

impl CallState {
    /// Completed or failed: the call is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, CallState::Completed | CallState::Failed)
    }
}

/// The calls among `new` that are terminal while their record in `old` (the records they
/// replace; a new call has none) was not: each call ends once, whatever later events
/// change about it.
pub fn ended<'c>(
    old: impl IntoIterator<Item = &'c Call>,
    new: impl IntoIterator<Item = &'c Call>,
) -> Vec<Ended> {
    let already: std::collections::HashSet<&str> = old
        .into_iter()
        .filter(|call| call.state.is_terminal())
        .map(|call| call.conversation_id.as_str())
        .collect();
    new.into_iter()
        .filter(|call| call.state.is_terminal() && !already.contains(call.conversation_id.as_str()))
        .map(|call| Ended {
            source: call.source,
            outcome: call.outcome,
        })
        .collect()
}

#[cfg(test)]
mod tests;
