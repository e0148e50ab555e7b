//! Recording one batch on the writer's connection: every statement prepared once and run a
//! row at a time (see [`crate::store::batch`] for the bookkeeping).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSqlError, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use sqlx::types::Json;

use super::super::utc_text;
use super::super::write::{CALLS_ON_CONFLICT, INSERT_CALLS};
use super::Item;
use crate::call::{self, Call, Ended};
use crate::notification::Notification;
use crate::store::batch::{EventKey, Pending, Plan, fold_calls, recorded};
use crate::store::columns::{DELIVERY_FIELD_LIST, DELIVERY_FIELDS, EVENT_FIELD_LIST, EVENT_FIELDS};
use crate::store::rollup::Deltas;
use crate::store::rows::{EVENT_AND_CALL_COLUMNS, EventAndCallRow, EventRow, sip_code_to_column};
use crate::store::statistics::COUNT_TABLES;
use crate::store::{Recorded, Result, StoreError};

/// Records a batch in one `begin immediate` transaction; see [`crate::store::batch`] for
/// the bookkeeping. An error drops the transaction, which rolls it back. Returns the answers
/// and the calls the batch made terminal.
pub(super) fn record_batch(
    db: &mut Connection,
    items: &[Item],
) -> Result<(Vec<Recorded>, Vec<Ended>)> {
    let pending: Vec<Pending<'_>> = items.iter().map(Item::pending).collect();
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut plan = Plan::new(&pending);
    let new_events: Vec<_> = plan.new_events().collect();
    plan.inserted(insert_events(&tx, &new_events)?)?;
    let unresolved = plan.unresolved();
    if !unresolved.is_empty() {
        plan.existing(select_event_ids(&tx, &unresolved)?)?;
    }
    let outcomes = plan.outcomes()?;
    let mut delivery_ids = Vec::with_capacity(pending.len());
    {
        let mut insert = tx.prepare_cached(&INSERT_DELIVERY)?;
        for (item, outcome) in pending.iter().zip(&outcomes) {
            let errors = outcome.errors.map(|errors| json(&errors.0)).transpose()?;
            let id: i64 = insert.query_row(
                (
                    utc_text(item.delivery.received_at),
                    item.delivery.content_type,
                    item.delivery.body,
                    outcome.result.as_str(),
                    outcome.error.as_deref(),
                    errors,
                    outcome.conversation_id,
                    outcome.event_id,
                    item.delivery.source.source(),
                ),
                |row| row.get(0),
            )?;
            delivery_ids.push(id);
        }
    }
    let to_refold = plan.calls_to_refold();
    let (events, old) = read_calls(&tx, &to_refold)?;
    let calls = fold_calls(events, to_refold.len())?;
    let deltas = Deltas::between(&old, &calls);
    let ended = call::ended(&old, &calls);
    write_calls(&tx, &calls)?;
    add_counts(&tx, &deltas)?;
    tx.commit()?;
    Ok((recorded(&outcomes, &delivery_ids), ended))
}

/// Inserts an event unless the same content is stored for its call, returning its id (no
/// row if it is stored).
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "insert into events ({EVENT_FIELDS}) values ({})
         on conflict (conversation_id, content_hash) do nothing
         returning id",
        params(EVENT_FIELD_LIST.len())
    )
});

/// Inserts a delivery, returning its id.
static INSERT_DELIVERY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "insert into deliveries ({DELIVERY_FIELDS}) values ({}) returning id",
        params(DELIVERY_FIELD_LIST.len())
    )
});

/// Inserts the events whose content is not stored yet; returns those it stored.
fn insert_events(
    tx: &Transaction<'_>,
    events: &[(&Notification, DateTime<Utc>)],
) -> Result<Vec<EventKey>> {
    let mut insert = tx.prepare_cached(&INSERT_EVENT)?;
    let mut stored = Vec::with_capacity(events.len());
    for (notification, received_at) in events {
        let event = &notification.event;
        let id: Option<i64> = insert
            .query_row(
                rusqlite::params![
                    event.conversation_id,
                    notification.content_hash,
                    event.status,
                    event.reason_code,
                    event.reason_code_raw,
                    event.reason,
                    sip_code_to_column(event.sip_code),
                    event.sip_reason,
                    event.amd_mode.map(|mode| mode.as_str()),
                    event.amd_result.map(|result| result.as_str()),
                    event.duration_s,
                    event.connect_time.map(utc_text),
                    event.disconnect_time.map(utc_text),
                    json(&event.warnings)?,
                    json(&notification.payload)?,
                    utc_text(*received_at),
                    event.source.source(),
                    event.ring_ms,
                    event.connect_ms,
                ],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            stored.push((
                id,
                event.conversation_id.clone(),
                notification.content_hash.clone(),
            ));
        }
    }
    Ok(stored)
}

/// The ids of stored events, by `(conversation_id, content_hash)`.
fn select_event_ids(tx: &Transaction<'_>, keys: &[(&str, &str)]) -> Result<Vec<EventKey>> {
    let mut select = tx
        .prepare_cached("select id from events where conversation_id = ?1 and content_hash = ?2")?;
    keys.iter()
        .map(|&(conversation_id, content_hash)| {
            let id = select.query_row((conversation_id, content_hash), |row| row.get(0))?;
            Ok((id, conversation_id.to_owned(), content_hash.to_owned()))
        })
        .collect()
}

/// Every stored event of the calls (the batch's own included), grouped by call in received
/// order, and the records the calls have now.
fn read_calls(
    tx: &Transaction<'_>,
    conversation_ids: &[&str],
) -> Result<(Vec<EventRow>, Vec<Call>)> {
    let mut select = tx.prepare_cached(&READ_CALL)?;
    let mut events = Vec::new();
    let mut old = Vec::new();
    for conversation_id in conversation_ids {
        let mut rows = select.query([conversation_id])?;
        let mut first = true;
        while let Some(row) = rows.next()? {
            let row = event_and_call_row(row)?;
            if first {
                old.extend(row.call().transpose()?);
                first = false;
            }
            events.push(row.event);
        }
    }
    Ok((events, old))
}

/// One call's stored events with its record beside each, in received order.
pub(super) static READ_CALL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {EVENT_AND_CALL_COLUMNS}
         from events as e
         left join calls as c on c.conversation_id = e.conversation_id
         where e.conversation_id = ?1
         order by e.received_at, e.id"
    )
});

/// Reads a row of [`READ_CALL`] by position, in the order of [`EVENT_AND_CALL_COLUMNS`];
/// the payload is left empty, as the fold does not look at it.
fn event_and_call_row(row: &Row<'_>) -> rusqlite::Result<EventAndCallRow> {
    Ok(EventAndCallRow {
        event: EventRow {
            id: row.get(0)?,
            conversation_id: row.get(1)?,
            content_hash: row.get(2)?,
            status: row.get(3)?,
            reason_code: row.get(4)?,
            reason_code_raw: row.get(5)?,
            reason: row.get(6)?,
            sip_code: row.get(7)?,
            sip_reason: row.get(8)?,
            amd_mode: row.get(9)?,
            amd_result: row.get(10)?,
            duration_s: row.get(11)?,
            connect_time: time(row, 12)?,
            disconnect_time: time(row, 13)?,
            warnings: Json(from_json(row, 14)?),
            payload: Json(serde_json::Value::Object(Default::default())),
            received_at: required_time(row, 15)?,
            source: row.get(33)?,
            ring_ms: row.get(34)?,
            connect_ms: row.get(35)?,
        },
        call_state: row.get(16)?,
        call_status: row.get(17)?,
        call_outcome: row.get(18)?,
        call_reason_code: row.get(19)?,
        call_reason: row.get(20)?,
        call_sip_code: row.get(21)?,
        call_sip_reason: row.get(22)?,
        call_duration_s: row.get(23)?,
        call_connected_at: time(row, 24)?,
        call_ended_at: time(row, 25)?,
        call_amd_mode: row.get(26)?,
        call_amd_result: row.get(27)?,
        call_occurred_at: time(row, 28)?,
        call_first_seen_at: time(row, 29)?,
        call_last_seen_at: time(row, 30)?,
        call_event_count: row.get(31)?,
        call_updated_at: time(row, 32)?,
        call_source: row.get(36)?,
        call_ring_ms: row.get(37)?,
        call_connect_ms: row.get(38)?,
    })
}

/// A timestamp as [`utc_text`] writes it, or null.
fn time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let Some(text) = row.get_ref(index)?.as_str_or_null()? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .map(|at| Some(at.with_timezone(&Utc)))
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

fn required_time(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    time(row, index)?.ok_or(rusqlite::Error::InvalidColumnType(
        index,
        "received_at".into(),
        Type::Null,
    ))
}

/// A JSON text column.
fn from_json<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let value = row.get_ref(index)?;
    let text = match value {
        ValueRef::Text(text) => text,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                index,
                other.data_type(),
                Box::new(FromSqlError::InvalidType),
            ));
        }
    };
    serde_json::from_slice(text)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

/// JSON text, as the pool's connections store JSON.
fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Corrupt(format!("a value would not serialize as JSON: {err}")))
}

/// Writes the records over the calls' rows.
fn write_calls(tx: &Transaction<'_>, calls: &[Call]) -> Result<()> {
    static UPSERT_CALL: LazyLock<String> =
        LazyLock::new(|| format!("{INSERT_CALLS} values ({}) {CALLS_ON_CONFLICT}", params(21)));
    let mut upsert = tx.prepare_cached(&UPSERT_CALL)?;
    let updated_at = utc_text(Utc::now());
    for call in calls {
        upsert.execute(rusqlite::params![
            call.conversation_id,
            call.state.as_str(),
            call.status,
            call.outcome.as_str(),
            call.reason_code,
            call.reason,
            sip_code_to_column(call.sip_code),
            call.sip_reason,
            call.duration_s,
            call.connected_at.map(utc_text),
            call.ended_at.map(utc_text),
            call.amd_mode.map(|mode| mode.as_str()),
            call.amd_result.map(|result| result.as_str()),
            utc_text(call.occurred_at),
            utc_text(call.first_seen_at),
            utc_text(call.last_seen_at),
            call.event_count,
            updated_at,
            call.source.source(),
            call.ring_ms,
            call.connect_ms,
        ])?;
    }
    Ok(())
}

/// Adds the deltas to the statistics tables.
fn add_counts(tx: &Transaction<'_>, deltas: &Deltas) -> Result<()> {
    static ADD: LazyLock<Vec<String>> = LazyLock::new(|| {
        COUNT_TABLES
            .iter()
            .map(|table| {
                let (insert, on_conflict) = (table.insert(), table.add_on_conflict());
                format!("{insert} values ({}) {on_conflict}", params(8))
            })
            .collect()
    });
    for (statement, changes) in ADD.iter().zip(deltas.tables()) {
        let mut add = tx.prepare_cached(statement)?;
        for (key, n) in changes {
            add.execute((
                key.time,
                key.state,
                key.outcome,
                key.amd_result,
                key.reason_code.as_str(),
                key.value,
                key.source,
                n,
            ))?;
        }
    }
    Ok(())
}

/// `?1, ?2, …, ?n`
fn params(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
