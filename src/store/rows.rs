//! Row types shared by both backends, and their conversions into domain types.
//!
//! The column types decode the same way from PostgreSQL (`timestamptz`, `jsonb`, `bytea`)
//! and from SQLite (fixed-width UTC text, JSON text, blob), so one `FromRow` struct serves
//! both. Reading back never trusts a stored string: a value that is not a known spelling is
//! [`StoreError::Corrupt`], not a panic.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use super::{Delivery, DeliveryResult, Result, StoreError, StoredEvent};
use crate::call::{Call, CallState, Outcome, RecordedEvent};
use crate::notification::{AmdMode, AmdResult, Event, FieldError, Format, Rejection};

/// One row of `events`.
#[derive(Debug, FromRow)]
pub(super) struct EventRow {
    pub id: i64,
    pub conversation_id: String,
    pub content_hash: String,
    pub status: String,
    pub reason_code: Option<String>,
    pub reason_code_raw: Option<String>,
    pub reason: Option<String>,
    pub sip_code: Option<i32>,
    pub sip_reason: Option<String>,
    pub amd_mode: Option<String>,
    pub amd_result: Option<String>,
    pub duration_s: Option<i64>,
    pub connect_time: Option<DateTime<Utc>>,
    pub disconnect_time: Option<DateTime<Utc>>,
    pub warnings: Json<Vec<String>>,
    pub payload: Json<serde_json::Value>,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub ring_ms: Option<i64>,
    pub connect_ms: Option<i64>,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self> {
        let event = Event {
            conversation_id: row.conversation_id,
            source: required("source", row.source, Format::parse_name)?,
            status: row.status,
            reason_code: row.reason_code,
            reason_code_raw: row.reason_code_raw,
            reason: row.reason,
            sip_code: sip_code_from_column(row.sip_code)?,
            sip_reason: row.sip_reason,
            amd_mode: spelling("amd_mode", row.amd_mode, AmdMode::parse)?,
            amd_result: spelling("amd_result", row.amd_result, AmdResult::parse)?,
            duration_s: row.duration_s,
            ring_ms: row.ring_ms,
            connect_ms: row.connect_ms,
            connect_time: row.connect_time,
            disconnect_time: row.disconnect_time,
            warnings: row.warnings.0,
        };
        Ok(StoredEvent {
            recorded: RecordedEvent {
                id: row.id,
                content_hash: row.content_hash,
                received_at: row.received_at,
                event,
            },
            payload: row.payload.0,
        })
    }
}

/// An event of one of a group-commit batch's calls as stored, with the call's record
/// beside it (all `None` for a call without one): what both stores' writers read to fold
/// a call again with the batch's events and to count it out of the statistics.
#[derive(Debug, FromRow)]
pub(super) struct EventAndCallRow {
    #[sqlx(flatten)]
    pub event: EventRow,
    pub call_state: Option<String>,
    pub call_status: Option<String>,
    pub call_outcome: Option<String>,
    pub call_reason_code: Option<String>,
    pub call_reason: Option<String>,
    pub call_sip_code: Option<i32>,
    pub call_sip_reason: Option<String>,
    pub call_duration_s: Option<i64>,
    pub call_connected_at: Option<DateTime<Utc>>,
    pub call_ended_at: Option<DateTime<Utc>>,
    pub call_amd_mode: Option<String>,
    pub call_amd_result: Option<String>,
    pub call_occurred_at: Option<DateTime<Utc>>,
    pub call_first_seen_at: Option<DateTime<Utc>>,
    pub call_last_seen_at: Option<DateTime<Utc>>,
    pub call_event_count: Option<i64>,
    pub call_updated_at: Option<DateTime<Utc>>,
    pub call_source: Option<String>,
    pub call_ring_ms: Option<i64>,
    pub call_connect_ms: Option<i64>,
}

/// The columns of [`EventAndCallRow`] read from `events as e` and `calls as c`, but for
/// `payload`, which each store reads as an empty object of its own JSON type: the fold
/// does not look at payloads. SQLite's writer reads them by position, in this order.
pub(super) const EVENT_AND_CALL_COLUMNS: &str = "e.id, e.conversation_id, e.content_hash, \
     e.status, e.reason_code, e.reason_code_raw, e.reason, e.sip_code, e.sip_reason, \
     e.amd_mode, e.amd_result, e.duration_s, e.connect_time, e.disconnect_time, e.warnings, \
     e.received_at, \
     c.state as call_state, c.status as call_status, c.outcome as call_outcome, \
     c.reason_code as call_reason_code, c.reason as call_reason, c.sip_code as call_sip_code, \
     c.sip_reason as call_sip_reason, c.duration_s as call_duration_s, \
     c.connected_at as call_connected_at, c.ended_at as call_ended_at, \
     c.amd_mode as call_amd_mode, c.amd_result as call_amd_result, \
     c.occurred_at as call_occurred_at, c.first_seen_at as call_first_seen_at, \
     c.last_seen_at as call_last_seen_at, c.event_count as call_event_count, \
     c.updated_at as call_updated_at, \
     e.source, e.ring_ms, e.connect_ms, \
     c.source as call_source, c.ring_ms as call_ring_ms, c.connect_ms as call_connect_ms";

impl EventAndCallRow {
    /// The call's record, if it has one.
    pub fn call(&self) -> Option<Result<Call>> {
        let row = CallRow {
            conversation_id: self.event.conversation_id.clone(),
            state: self.call_state.clone()?,
            status: self.call_status.clone(),
            outcome: self.call_outcome.clone()?,
            reason_code: self.call_reason_code.clone(),
            reason: self.call_reason.clone(),
            sip_code: self.call_sip_code,
            sip_reason: self.call_sip_reason.clone(),
            duration_s: self.call_duration_s,
            connected_at: self.call_connected_at,
            ended_at: self.call_ended_at,
            amd_mode: self.call_amd_mode.clone(),
            amd_result: self.call_amd_result.clone(),
            occurred_at: self.call_occurred_at?,
            first_seen_at: self.call_first_seen_at?,
            last_seen_at: self.call_last_seen_at?,
            event_count: self.call_event_count?,
            source: self.call_source.clone()?,
            ring_ms: self.call_ring_ms,
            connect_ms: self.call_connect_ms,
        };
        Some(Call::try_from(row))
    }
}

/// One row of `calls` (without `updated_at`, which is bookkeeping, not part of a [`Call`]).
#[derive(Debug, FromRow)]
pub(super) struct CallRow {
    pub conversation_id: String,
    pub state: String,
    pub status: Option<String>,
    pub outcome: String,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub sip_code: Option<i32>,
    pub sip_reason: Option<String>,
    pub duration_s: Option<i64>,
    pub connected_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub amd_mode: Option<String>,
    pub amd_result: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub event_count: i64,
    pub source: String,
    pub ring_ms: Option<i64>,
    pub connect_ms: Option<i64>,
}

impl TryFrom<CallRow> for Call {
    type Error = StoreError;

    fn try_from(row: CallRow) -> Result<Self> {
        Ok(Call {
            conversation_id: row.conversation_id,
            source: required("source", row.source, Format::parse_name)?,
            state: required("state", row.state, CallState::parse)?,
            status: row.status,
            outcome: required("outcome", row.outcome, Outcome::parse)?,
            reason_code: row.reason_code,
            reason: row.reason,
            sip_code: sip_code_from_column(row.sip_code)?,
            sip_reason: row.sip_reason,
            duration_s: row.duration_s,
            connected_at: row.connected_at,
            ended_at: row.ended_at,
            amd_mode: spelling("amd_mode", row.amd_mode, AmdMode::parse)?,
            amd_result: spelling("amd_result", row.amd_result, AmdResult::parse)?,
            occurred_at: row.occurred_at,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.last_seen_at,
            event_count: row.event_count,
            ring_ms: row.ring_ms,
            connect_ms: row.connect_ms,
            dialout: None,
        })
    }
}

/// One row of `deliveries`.
#[derive(Debug, FromRow)]
pub(super) struct DeliveryRow {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub result: String,
    pub error: Option<String>,
    pub errors: Option<Json<Vec<FieldError>>>,
    pub conversation_id: Option<String>,
    pub event_id: Option<i64>,
    pub source: String,
    pub spooled_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> Result<Self> {
        Ok(Delivery {
            id: row.id,
            received_at: row.received_at,
            source: required("source", row.source, Format::parse_name)?,
            content_type: row.content_type,
            body: row.body,
            result: required("result", row.result, DeliveryResult::parse)?,
            error: row.error,
            errors: row.errors.map(|errors| errors.0).unwrap_or_default(),
            conversation_id: row.conversation_id,
            event_id: row.event_id,
            spooled_at: row.spooled_at,
        })
    }
}

/// What a delivery row says about its body, apart from the body itself.
#[derive(Debug)]
pub(super) struct DeliveryOutcome<'a> {
    pub result: DeliveryResult,
    pub error: Option<String>,
    /// `None` for a body that is not a JSON object: there are no fields to blame.
    pub errors: Option<Json<&'a [FieldError]>>,
    pub conversation_id: Option<&'a str>,
    pub event_id: Option<i64>,
}

impl<'a> DeliveryOutcome<'a> {
    /// A body that could not become an event. `error` is the rejection's own wording.
    pub fn rejected(rejection: &'a Rejection) -> Self {
        let (conversation_id, errors) = match rejection {
            Rejection::Malformed(_) => (None, None),
            Rejection::Invalid {
                conversation_id,
                errors,
            } => (conversation_id.as_deref(), Some(Json(errors.as_slice()))),
        };
        Self {
            result: DeliveryResult::Rejected,
            error: Some(rejection.to_string()),
            errors,
            conversation_id,
            event_id: None,
        }
    }

    /// What recording this outcome for delivery `delivery_id` did.
    pub fn recorded(&self, delivery_id: i64) -> super::Recorded {
        match (self.result, self.event_id) {
            (DeliveryResult::Accepted, Some(event_id)) => super::Recorded::Accepted {
                delivery_id,
                event_id,
            },
            (DeliveryResult::Duplicate, Some(event_id)) => super::Recorded::Duplicate {
                delivery_id,
                event_id,
            },
            _ => super::Recorded::Rejected { delivery_id },
        }
    }

    /// A notification whose event is stored: new (`Accepted`) or seen before (`Duplicate`).
    pub fn stored(result: DeliveryResult, conversation_id: &'a str, event_id: i64) -> Self {
        Self {
            result,
            error: None,
            errors: None,
            conversation_id: Some(conversation_id),
            event_id: Some(event_id),
        }
    }
}

/// The SIP code as stored (`integer`).
pub(super) fn sip_code_to_column(code: Option<u16>) -> Option<i32> {
    code.map(i32::from)
}

fn sip_code_from_column(code: Option<i32>) -> Result<Option<u16>> {
    code.map(|code| {
        u16::try_from(code)
            .map_err(|_| StoreError::Corrupt(format!("sip_code {code} is out of range")))
    })
    .transpose()
}

/// Reads an optional column holding one of a vocabulary's spellings.
fn spelling<T>(
    column: &str,
    text: Option<String>,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    text.map(|text| required(column, text, parse)).transpose()
}

/// Reads a column holding one of a vocabulary's spellings.
fn required<T>(column: &str, text: String, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("{column} {text:?} is not a known value")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::FieldError;

    #[test]
    fn unknown_spellings_are_corrupt_not_panics() {
        let err = required("state", "flying".to_owned(), CallState::parse).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt(ref m) if m.contains("flying")),
            "{err:?}"
        );
        assert!(sip_code_from_column(Some(-1)).is_err());
        assert_eq!(sip_code_from_column(Some(486)).unwrap(), Some(486));
    }

    #[test]
    fn a_rejected_object_keeps_its_conversation_id_and_field_errors() {
        let rejection = Rejection::Invalid {
            conversation_id: Some("c-1".to_owned()),
            errors: vec![FieldError {
                field: "status".to_owned(),
                message: "is required".to_owned(),
            }],
        };
        let outcome = DeliveryOutcome::rejected(&rejection);
        assert_eq!(outcome.result, DeliveryResult::Rejected);
        assert_eq!(outcome.conversation_id, Some("c-1"));
        assert_eq!(outcome.errors.map(|e| e.0.len()), Some(1));
        assert_eq!(outcome.error.as_deref(), Some("invalid fields: status"));

        let malformed = Rejection::Malformed("expected a JSON object".to_owned());
        let outcome = DeliveryOutcome::rejected(&malformed);
        assert!(outcome.errors.is_none());
        assert_eq!(outcome.error.as_deref(), Some("expected a JSON object"));
    }
}

/// One row of the statistics breakdown (see `query::call_breakdown`).
#[derive(Debug, FromRow)]
pub(super) struct BreakdownDbRow {
    pub state: String,
    pub outcome: String,
    pub amd_result: Option<String>,
    pub reason_code: Option<String>,
    pub answered: i32,
    pub calls: i64,
}

impl TryFrom<BreakdownDbRow> for crate::stats::BreakdownRow {
    type Error = StoreError;

    fn try_from(row: BreakdownDbRow) -> Result<Self> {
        Ok(crate::stats::BreakdownRow {
            state: required("state", row.state, CallState::parse)?,
            outcome: required("outcome", row.outcome, Outcome::parse)?,
            amd_result: spelling("amd_result", row.amd_result, AmdResult::parse)?,
            reason_code: row.reason_code,
            answered: row.answered != 0,
            calls: row.calls,
        })
    }
}

/// Reads a quarter-hour slot row `(slot, outcome, calls)`.
pub(super) fn slot_row((slot, outcome, calls): (i64, String, i64)) -> Result<(i64, Outcome, i64)> {
    Ok((slot, required("outcome", outcome, Outcome::parse)?, calls))
}
