//! Writing call records and their counts through the pool (the reprocessing path, through
//! `store::db`), and the SQL of those writes that the group-commit writer
//! ([`super::writer`]) prepares one row at a time.

use chrono::Utc;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::utc_text;
use crate::call::Call;
use crate::store::Result;
use crate::store::columns::CALL_COLUMNS;
use crate::store::rollup::Deltas;
use crate::store::rows::{CallRow, sip_code_to_column};
use crate::store::statistics::COUNT_TABLES;

/// Rows per multi-row statement: 21 columns × 500 rows stays well under SQLite's limit of
/// 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// Writes the records over the calls' rows and moves their counts in the statistics tables
/// from what the rows held before to what they hold now.
pub(in crate::store) async fn upsert_calls(
    db: &mut SqliteConnection,
    calls: &[Call],
) -> Result<()> {
    if calls.is_empty() {
        return Ok(());
    }
    let old: Vec<CallRow> = sqlx::query_as(&format!(
        "select {CALL_COLUMNS} from calls where conversation_id in (select value from json_each(?1))"
    ))
    .bind(Json(calls.iter().map(|c| &c.conversation_id).collect::<Vec<_>>()))
    .fetch_all(&mut *db)
    .await?;
    let old = old
        .into_iter()
        .map(Call::try_from)
        .collect::<Result<Vec<_>>>()?;
    let deltas = Deltas::between(&old, calls);
    let mut query = QueryBuilder::new("");
    push_calls(&mut query, calls, utc_text(Utc::now()));
    push_counts(&mut query, &deltas);
    query.build().persistent(false).execute(&mut *db).await?;
    Ok(())
}

/// The head of the statement that writes call records: the columns, in the order both
/// writers bind them.
pub(super) const INSERT_CALLS: &str = "insert into calls (conversation_id, state, status, outcome,
        reason_code, reason, sip_code, sip_reason, duration_s, connected_at, ended_at, amd_mode,
        amd_result, occurred_at, first_seen_at, last_seen_at, event_count, updated_at, source,
        ring_ms, connect_ms) ";

/// The tail of [`INSERT_CALLS`]: a record replaces the call's row.
pub(super) const CALLS_ON_CONFLICT: &str = " on conflict (conversation_id) do update set
        state = excluded.state,
        status = excluded.status,
        outcome = excluded.outcome,
        reason_code = excluded.reason_code,
        reason = excluded.reason,
        sip_code = excluded.sip_code,
        sip_reason = excluded.sip_reason,
        duration_s = excluded.duration_s,
        connected_at = excluded.connected_at,
        ended_at = excluded.ended_at,
        amd_mode = excluded.amd_mode,
        amd_result = excluded.amd_result,
        occurred_at = excluded.occurred_at,
        first_seen_at = excluded.first_seen_at,
        last_seen_at = excluded.last_seen_at,
        event_count = excluded.event_count,
        updated_at = excluded.updated_at,
        source = excluded.source,
        ring_ms = excluded.ring_ms,
        connect_ms = excluded.connect_ms";

/// Pushes the statements that write the records over the calls' rows.
fn push_calls<'q>(query: &mut QueryBuilder<'q, Sqlite>, calls: &'q [Call], updated_at: String) {
    for chunk in calls.chunks(ROWS_PER_STATEMENT) {
        query.push(INSERT_CALLS);
        query.push_values(chunk, |mut row, call| {
            row.push_bind(&call.conversation_id)
                .push_bind(call.state.as_str())
                .push_bind(&call.status)
                .push_bind(call.outcome.as_str())
                .push_bind(&call.reason_code)
                .push_bind(&call.reason)
                .push_bind(sip_code_to_column(call.sip_code))
                .push_bind(&call.sip_reason)
                .push_bind(call.duration_s)
                .push_bind(call.connected_at.map(utc_text))
                .push_bind(call.ended_at.map(utc_text))
                .push_bind(call.amd_mode.map(|mode| mode.as_str()))
                .push_bind(call.amd_result.map(|result| result.as_str()))
                .push_bind(utc_text(call.occurred_at))
                .push_bind(utc_text(call.first_seen_at))
                .push_bind(utc_text(call.last_seen_at))
                .push_bind(call.event_count)
                .push_bind(updated_at.clone())
                .push_bind(call.source.source())
                .push_bind(call.ring_ms)
                .push_bind(call.connect_ms);
        });
        query.push(CALLS_ON_CONFLICT);
        query.push(";\n");
    }
}

/// Pushes the statements that add the deltas to the statistics tables.
fn push_counts<'q>(query: &mut QueryBuilder<'q, Sqlite>, deltas: &'q Deltas) {
    for (table, changes) in COUNT_TABLES.iter().zip(deltas.tables()) {
        let changes: Vec<_> = changes.iter().collect();
        for chunk in changes.chunks(ROWS_PER_STATEMENT) {
            query.push(table.insert());
            query.push_values(chunk, |mut row, (key, n)| {
                row.push_bind(key.time)
                    .push_bind(key.state)
                    .push_bind(key.outcome)
                    .push_bind(key.amd_result)
                    .push_bind(key.reason_code.as_str())
                    .push_bind(key.value)
                    .push_bind(key.source)
                    .push_bind(**n);
            });
            query.push(table.add_on_conflict());
            query.push(";\n");
        }
    }
}
