//! The columns of every table the store reads and writes, listed once. Adding a column
//! starts here: the statements written once build on these lists, the batch writers bind
//! in their order, and a test (`tests/store.rs`) checks that both stores' schemas hold
//! exactly these columns.

use chrono::{DateTime, Utc};

use super::Result;
use super::sql::Arg;
use crate::notification::{Event, Notification};

/// Defines a table's columns as a list and as the text `a, b, c` for a select.
macro_rules! columns {
    ($(#[$doc:meta])* $text:ident, $list:ident: [$first:literal $(, $rest:literal)* $(,)?]) => {
        $(#[$doc])*
        pub const $text: &str = concat!($first $(, ", ", $rest)*);
        $(#[$doc])*
        pub const $list: &[&str] = &[$first $(, $rest)*];
    };
}

columns! {
    /// The columns of an event as written, in the order the writers bind them (the row's
    /// `id` aside).
    EVENT_FIELDS, EVENT_FIELD_LIST: [
        "conversation_id", "content_hash", "status", "reason_code", "reason_code_raw",
        "reason", "sip_code", "sip_reason", "amd_mode", "amd_result", "duration_s",
        "connect_time", "disconnect_time", "warnings", "payload", "received_at", "source",
        "ring_ms", "connect_ms",
    ]
}

columns! {
    /// The columns of an event, in the order `EventRow` reads them.
    EVENT_COLUMNS, EVENT_COLUMN_LIST: [
        "id", "conversation_id", "content_hash", "status", "reason_code", "reason_code_raw",
        "reason", "sip_code", "sip_reason", "amd_mode", "amd_result", "duration_s",
        "connect_time", "disconnect_time", "warnings", "payload", "received_at", "source",
        "ring_ms", "connect_ms",
    ]
}

columns! {
    /// The columns a new parse of a stored event rewrites: its normalized fields (its
    /// payload, hash and receipt time stay).
    EVENT_NORMALIZED, EVENT_NORMALIZED_LIST: [
        "status", "reason_code", "reason_code_raw", "reason", "sip_code", "sip_reason",
        "amd_mode", "amd_result", "duration_s", "connect_time", "disconnect_time", "warnings",
        "source", "ring_ms", "connect_ms",
    ]
}

columns! {
    /// The columns of a call, in the order `CallRow` reads them; the table's `updated_at`
    /// is bookkeeping, written but never read.
    CALL_COLUMNS, CALL_COLUMN_LIST: [
        "conversation_id", "state", "status", "outcome", "reason_code", "reason", "sip_code",
        "sip_reason", "duration_s", "connected_at", "ended_at", "amd_mode", "amd_result",
        "occurred_at", "first_seen_at", "last_seen_at", "event_count", "source", "ring_ms",
        "connect_ms",
    ]
}

/// The column of `calls` written beside [`CALL_COLUMNS`] and never read.
pub const CALL_BOOKKEEPING: &str = "updated_at";

columns! {
    /// The columns of a delivery as the batch writers write it, in the order they bind them
    /// (the row's `id` aside, and `spooled_at`, which a replay from the spool sets after).
    DELIVERY_FIELDS, DELIVERY_FIELD_LIST: [
        "received_at", "content_type", "body", "result", "error", "errors",
        "conversation_id", "event_id", "source",
    ]
}

columns! {
    /// The columns of a delivery, in the order `DeliveryRow` reads them.
    DELIVERY_COLUMNS, DELIVERY_COLUMN_LIST: [
        "id", "received_at", "content_type", "body", "result", "error", "errors",
        "conversation_id", "event_id", "source", "spooled_at",
    ]
}

columns! {
    /// The columns of a dial-out, in the order `DialoutRow` reads them.
    DIALOUT_COLUMNS, DIALOUT_COLUMN_LIST: [
        "id", "state", "target", "caller", "trunk", "metadata", "timers", "machine_detection",
        "threshold_word_count", "idempotency_key", "request_hash", "sid", "call_id", "attempts",
        "gateway_status", "gateway_body", "error", "requested_at", "completed_at",
    ]
}

/// How many of [`EVENT_NORMALIZED`] come before `payload` in [`EVENT_FIELDS`]; the rest
/// follow `received_at`.
const EVENT_BEFORE_PAYLOAD: usize = 12;

/// The values of [`EVENT_NORMALIZED`], in order.
pub(super) fn normalized_values(event: &Event) -> Result<Vec<Arg>> {
    Ok(vec![
        event.status.as_str().into(),
        event.reason_code.as_deref().into(),
        event.reason_code_raw.as_deref().into(),
        event.reason.as_deref().into(),
        event.sip_code.into(),
        event.sip_reason.as_deref().into(),
        event.amd_mode.map(|mode| mode.as_str()).into(),
        event.amd_result.map(|result| result.as_str()).into(),
        event.duration_s.into(),
        event.connect_time.into(),
        event.disconnect_time.into(),
        Arg::json(&event.warnings)?,
        event.source.source().into(),
        event.ring_ms.into(),
        event.connect_ms.into(),
    ])
}

/// The values of [`EVENT_FIELDS`], in order.
pub(super) fn event_values(
    notification: &Notification,
    received_at: DateTime<Utc>,
) -> Result<Vec<Arg>> {
    let event = &notification.event;
    let mut normalized = normalized_values(event)?;
    let after_received_at = normalized.split_off(EVENT_BEFORE_PAYLOAD);
    let mut values = vec![
        event.conversation_id.as_str().into(),
        notification.content_hash.as_str().into(),
    ];
    values.extend(normalized);
    values.push(Arg::json(&notification.payload)?);
    values.push(received_at.into());
    values.extend(after_received_at);
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_written_as_its_id_and_fields_and_rewritten_by_its_normalized_ones() {
        assert_eq!(EVENT_COLUMN_LIST[0], "id");
        assert_eq!(&EVENT_COLUMN_LIST[1..], EVENT_FIELD_LIST);
        let before = EVENT_BEFORE_PAYLOAD;
        assert_eq!(
            &EVENT_FIELD_LIST[2..2 + before],
            &EVENT_NORMALIZED_LIST[..before]
        );
        assert_eq!(
            &EVENT_FIELD_LIST[2 + before..4 + before],
            ["payload", "received_at"]
        );
        assert_eq!(
            &EVENT_FIELD_LIST[4 + before..],
            &EVENT_NORMALIZED_LIST[before..]
        );
        assert_eq!(EVENT_COLUMNS, EVENT_COLUMN_LIST.join(", "));
    }

    #[test]
    fn a_delivery_is_written_as_its_fields_and_read_with_its_id_and_spooled_time() {
        assert_eq!(DELIVERY_COLUMN_LIST[0], "id");
        let read = &DELIVERY_COLUMN_LIST[1..DELIVERY_COLUMN_LIST.len() - 1];
        assert_eq!(read, DELIVERY_FIELD_LIST);
        assert_eq!(DELIVERY_COLUMN_LIST.last(), Some(&"spooled_at"));
    }
}
