//! The statistics tables: counts of calls kept beside `calls`, so that `GET /v1/stats`
//! over a month reads a few tens of thousands of rows instead of every call.
//!
//! - `call_slot_counts`: calls per quarter hour (Unix seconds / 900 of `occurred_at`) and
//!   every dimension the statistics break down by (state, outcome, AMD result, reason
//!   code, answered) or filter by (source) — the breakdown and the time buckets.
//! - `call_day_durations`: calls per UTC day, the filterable dimensions and whole-second
//!   duration — the duration figures, exact.
//! - `call_day_ring_times`: answered calls with a ring time, per UTC day, the filterable
//!   dimensions and ring time rounded to [`RING_MS_STEP`] — the time to answer.
//!
//! Whenever a call's record is written, the transaction that writes it also takes the old
//! record's contribution out of these tables and puts the new one's in ([`Deltas`]), so
//! they always hold exactly the counts of `calls` (the store tests check this after every
//! kind of write). Absent values are stored as `''` (a key column cannot be null).
//!
//! Pure: the backends read the old records, run the SQL and bind what this computes.

use std::collections::BTreeMap;

use crate::call::Call;

/// Seconds in a quarter-hour slot.
pub const SLOT_SECONDS: i64 = crate::stats::SLOT_SECONDS;
/// Seconds in a UTC day.
pub const DAY_SECONDS: i64 = 86_400;

/// One row key of a statistics table, its columns in key order (see
/// `statistics::COUNT_TABLES`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CountKey {
    /// The quarter-hour slot (`call_slot_counts`) or the UTC day of `occurred_at`.
    pub time: i64,
    pub state: &'static str,
    pub outcome: &'static str,
    pub amd_result: &'static str,
    pub reason_code: String,
    /// Answered (0 or 1), the duration in seconds or the ring time, rounded.
    pub value: i64,
    pub source: &'static str,
}

/// The resolution of `call_day_ring_times`, in milliseconds.
pub const RING_MS_STEP: i64 = 100;

/// A ring time as `call_day_ring_times` keeps it: rounded to the nearest [`RING_MS_STEP`]
/// (half up). The statistics read from `calls` round with the same integer arithmetic.
pub fn ring_ms_bucket(ring_ms: i64) -> i64 {
    (ring_ms + RING_MS_STEP / 2).div_euclid(RING_MS_STEP) * RING_MS_STEP
}

/// Changes to the statistics tables, one per key, sorted by key: every transaction takes
/// the rows' locks in the same order, so two writers never deadlock on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deltas {
    pub slots: BTreeMap<CountKey, i64>,
    pub durations: BTreeMap<CountKey, i64>,
    pub ring_times: BTreeMap<CountKey, i64>,
}

impl Deltas {
    /// The changes that replacing the records `old` (those that existed) by `new` makes.
    pub fn between<'c>(
        old: impl IntoIterator<Item = &'c Call>,
        new: impl IntoIterator<Item = &'c Call>,
    ) -> Self {
        let mut deltas = Self::default();
        for call in old {
            deltas.count(call, -1);
        }
        for call in new {
            deltas.count(call, 1);
        }
        for table in [
            &mut deltas.slots,
            &mut deltas.durations,
            &mut deltas.ring_times,
        ] {
            table.retain(|_, n| *n != 0);
        }
        deltas
    }

    pub fn is_empty(&self) -> bool {
        self.tables().iter().all(|table| table.is_empty())
    }

    /// The changes of `call_slot_counts`, `call_day_durations` and `call_day_ring_times`,
    /// in the order of `statistics::COUNT_TABLES`.
    pub fn tables(&self) -> [&BTreeMap<CountKey, i64>; 3] {
        [&self.slots, &self.durations, &self.ring_times]
    }

    fn count(&mut self, call: &Call, by: i64) {
        let seconds = call.occurred_at.timestamp();
        let key = |unit: i64, value: i64| CountKey {
            time: seconds.div_euclid(unit),
            state: call.state.as_str(),
            outcome: call.outcome.as_str(),
            amd_result: call.amd_result.map_or("", |r| r.as_str()),
            reason_code: call.reason_code.clone().unwrap_or_default(),
            value,
            source: call.source.source(),
        };
        if let Some(duration_s) = call.duration_s {
            *self
                .durations
                .entry(key(DAY_SECONDS, duration_s))
                .or_default() += by;
        }
        if let (Some(ring_ms), Some(_)) = (call.ring_ms, call.connected_at) {
            let ring_ms = ring_ms_bucket(ring_ms);
            *self
                .ring_times
                .entry(key(DAY_SECONDS, ring_ms))
                .or_default() += by;
        }
        let answered = i64::from(call.connected_at.is_some());
        *self.slots.entry(key(SLOT_SECONDS, answered)).or_default() += by;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallState, Outcome};
    use crate::notification::AmdResult;
    use chrono::{TimeZone, Utc};

    fn call(id: &str, state: CallState, outcome: Outcome, at: i64) -> Call {
        let at = Utc.timestamp_opt(at, 0).unwrap();
        Call {
            conversation_id: id.into(),
            state,
            status: None,
            outcome,
            reason_code: None,
            reason: None,
            sip_code: None,
            sip_reason: None,
            duration_s: None,
            connected_at: None,
            ended_at: None,
            amd_mode: None,
            amd_result: None,
            occurred_at: at,
            first_seen_at: at,
            last_seen_at: at,
            event_count: 1,
            source: crate::notification::Format::Kore,
            ring_ms: None,
            connect_ms: None,
            dialout: None,
        }
    }

    #[test]
    fn a_new_call_adds_one_to_its_slot_and_a_duration_once_it_has_one() {
        let ringing = call("a", CallState::InProgress, Outcome::Unknown, 1_800);
        let deltas = Deltas::between([], [&ringing]);
        assert_eq!(deltas.slots.len(), 1);
        let (key, n) = deltas.slots.iter().next().unwrap();
        assert_eq!(
            (key.time, key.state, key.amd_result, n),
            (2, "in_progress", "", &1)
        );
        assert!(deltas.durations.is_empty());

        let mut done = call("a", CallState::Completed, Outcome::Human, 1_800);
        done.duration_s = Some(42);
        done.amd_result = Some(AmdResult::HumanDetected);
        done.reason_code = Some("normal-clearing".into());
        done.connected_at = Some(done.occurred_at);
        let deltas = Deltas::between([&ringing], [&done]);
        let slots: Vec<_> = deltas
            .slots
            .iter()
            .map(|(k, n)| (k.state, k.value, k.reason_code.as_str(), *n))
            .collect();
        assert_eq!(
            slots,
            [
                ("completed", 1, "normal-clearing", 1),
                ("in_progress", 0, "", -1)
            ]
        );
        let durations: Vec<_> = deltas
            .durations
            .iter()
            .map(|(k, n)| (k.time, k.amd_result, k.value, *n))
            .collect();
        assert_eq!(durations, [(0, "amd_human_detected", 42, 1)]);
        assert!(deltas.ring_times.is_empty());

        let mut rang = done.clone();
        rang.ring_ms = Some(3_449);
        let deltas = Deltas::between([&done], [&rang]);
        let ring_times: Vec<_> = deltas
            .ring_times
            .iter()
            .map(|(k, n)| (k.time, k.outcome, k.value, *n))
            .collect();
        assert_eq!(ring_times, [(0, "human", 3_400, 1)]);
        assert!(deltas.slots.is_empty() && deltas.durations.is_empty());
    }

    #[test]
    fn ring_times_round_to_the_nearest_step_and_count_only_answered_calls() {
        let cases = [
            (0, 0),
            (49, 0),
            (50, 100),
            (149, 100),
            (150, 200),
            (12_345, 12_300),
        ];
        for (ring_ms, bucket) in cases {
            assert_eq!(ring_ms_bucket(ring_ms), bucket, "{ring_ms}");
        }
        let mut unanswered = call("a", CallState::Failed, Outcome::NoAnswer, 0);
        unanswered.ring_ms = Some(30_000);
        assert!(Deltas::between([], [&unanswered]).ring_times.is_empty());
    }

    #[test]
    fn a_rewrite_that_changes_no_counted_field_changes_nothing() {
        let before = call("a", CallState::Completed, Outcome::Human, 100);
        let mut after = before.clone();
        after.event_count = 3;
        after.last_seen_at += chrono::Duration::seconds(5);
        assert!(Deltas::between([&before], [&after]).is_empty());
    }

    #[test]
    fn slots_and_days_round_down_before_the_epoch_too() {
        let early = call("a", CallState::Failed, Outcome::Busy, -1);
        let mut with_duration = early.clone();
        with_duration.duration_s = Some(0);
        let deltas = Deltas::between([], [&with_duration]);
        assert_eq!(deltas.slots.keys().next().unwrap().time, -1);
        assert_eq!(deltas.durations.keys().next().unwrap().time, -1);
    }
}
