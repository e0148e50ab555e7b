//! The SQLite group-commit write path: a whole batch of deliveries in one `begin immediate`
//! transaction (one fsync) on the writer's own connection, with multi-row inserts and one
//! re-fold per call that gained an event. See [`super::super::batch`] for the bookkeeping.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};

use super::{SqliteStore, utc_text};
use crate::call::Call;
use crate::notification::Notification;
use crate::store::batch::{EventKey, Pending, Plan, fold_calls, recorded};
use crate::store::query::CALL_COLUMNS;
use crate::store::rollup::Deltas;
use crate::store::rows::{
    CallRow, DeliveryOutcome, EVENT_AND_CALL_COLUMNS, EventAndCallRow, EventRow, sip_code_to_column,
};
use crate::store::{Recorded, Result};

/// Rows per multi-row statement: 18 columns × 500 rows stays well under SQLite's limit of
/// 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

impl SqliteStore {
    /// Records a batch of deliveries in one transaction; the answers are in batch order.
    ///
    /// Each statement is a round trip to the connection's thread, which under load costs
    /// more than most of the statements themselves, so the batch takes three as a rule:
    /// `begin` with the events insert; the calls' events and records read together;
    /// deliveries, records, statistics and `commit` in one multi-statement query (plus a
    /// look-up of already stored contents when the batch holds some).
    #[tracing::instrument(name = "sqlite.record_batch", skip_all, fields(size = pending.len()))]
    pub async fn record_batch(&self, pending: &[Pending<'_>]) -> Result<Vec<Recorded>> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        self.with_writer(async |db| record_batch(db, pending).await)
            .await
    }
}

/// See [`SqliteStore::record_batch`]. The transaction's `begin immediate` goes with the
/// first statement and its `commit` with the last, sent as multi-statement queries:
/// two round trips fewer. If a statement fails, those after it — the `commit` among them —
/// do not run, and [`SqliteStore::with_writer`] closes the connection, which rolls back.
async fn record_batch(db: &mut SqliteConnection, pending: &[Pending<'_>]) -> Result<Vec<Recorded>> {
    let mut plan = Plan::new(pending);
    let new_events: Vec<_> = plan.new_events().collect();
    plan.inserted(begin_and_insert_events(db, &new_events).await?)?;
    let unresolved = plan.unresolved();
    if !unresolved.is_empty() {
        plan.existing(select_event_ids(db, &unresolved).await?)?;
    }
    let outcomes = plan.outcomes()?;
    let to_refold = plan.calls_to_refold();
    let read = read_calls(db, &to_refold).await?;
    // The ids are chosen here, under the write lock `begin immediate` took, as SQLite
    // itself would choose them (one past the largest), so that each body knows its row
    // without relying on the order of `returning`, which SQLite leaves undefined.
    let first_delivery_id = match read.next_delivery_id {
        Some(id) => id,
        None => next_delivery_id(db).await?,
    };
    let delivery_ids: Vec<i64> = (first_delivery_id..).take(pending.len()).collect();
    let calls = fold_calls(read.events, to_refold.len())?;
    let deltas = Deltas::between(&read.old, &calls);
    let mut query = QueryBuilder::new("");
    push_deliveries(&mut query, &delivery_ids, pending, &outcomes);
    push_calls(&mut query, &calls, utc_text(Utc::now()));
    push_counts(&mut query, &deltas);
    query.push("commit;");
    query.build().persistent(false).execute(db).await?;
    Ok(recorded(&outcomes, &delivery_ids))
}

/// Begins the batch's transaction (`begin immediate`: the write lock up front) and inserts
/// the events whose content is not stored yet; returns those it stored.
async fn begin_and_insert_events(
    db: &mut SqliteConnection,
    events: &[(&Notification, DateTime<Utc>)],
) -> Result<Vec<EventKey>> {
    const BEGIN: &str = "begin immediate;\n";
    if events.is_empty() {
        sqlx::query(BEGIN).execute(db).await?;
        return Ok(Vec::new());
    }
    let mut stored = Vec::with_capacity(events.len());
    for (index, chunk) in events.chunks(ROWS_PER_STATEMENT).enumerate() {
        let mut query = QueryBuilder::<Sqlite>::new(if index == 0 { BEGIN } else { "" });
        query.push(
            "insert into events (conversation_id, content_hash, status, reason_code,
                                 reason_code_raw, reason, sip_code, sip_reason, amd_mode,
                                 amd_result, duration_s, connect_time, disconnect_time,
                                 warnings, payload, received_at) ",
        );
        query.push_values(chunk, |mut row, (notification, received_at)| {
            let event = &notification.event;
            row.push_bind(&event.conversation_id)
                .push_bind(&notification.content_hash)
                .push_bind(&event.status)
                .push_bind(&event.reason_code)
                .push_bind(&event.reason_code_raw)
                .push_bind(&event.reason)
                .push_bind(sip_code_to_column(event.sip_code))
                .push_bind(&event.sip_reason)
                .push_bind(event.amd_mode.map(|mode| mode.as_str()))
                .push_bind(event.amd_result.map(|result| result.as_str()))
                .push_bind(event.duration_s)
                .push_bind(event.connect_time.map(utc_text))
                .push_bind(event.disconnect_time.map(utc_text))
                .push_bind(Json(&event.warnings))
                .push_bind(Json(&notification.payload))
                .push_bind(utc_text(*received_at));
        });
        query.push(
            " on conflict (conversation_id, content_hash) do nothing
              returning id, conversation_id, content_hash",
        );
        let rows: Vec<EventKey> = query
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *db)
            .await?;
        stored.extend(rows);
    }
    Ok(stored)
}

/// The ids of stored events, by `(conversation_id, content_hash)`.
async fn select_event_ids(
    db: &mut SqliteConnection,
    keys: &[(&str, &str)],
) -> Result<Vec<EventKey>> {
    // `cross join` keeps the short key list as the outer loop, so that each key is one
    // look-up in the unique index rather than a scan of `events`.
    let rows = sqlx::query_as(
        "select e.id, e.conversation_id, e.content_hash
         from json_each(?1) as k
         cross join events as e
         where e.conversation_id = k.value ->> 0 and e.content_hash = k.value ->> 1",
    )
    .bind(Json(keys))
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// One past the largest delivery id.
async fn next_delivery_id(db: &mut SqliteConnection) -> Result<i64> {
    let id = sqlx::query_scalar("select coalesce(max(id), 0) + 1 from deliveries")
        .fetch_one(db)
        .await?;
    Ok(id)
}

/// Pushes the statements that insert one delivery per body, with the given ids.
fn push_deliveries<'q>(
    query: &mut QueryBuilder<'q, Sqlite>,
    ids: &'q [i64],
    pending: &'q [Pending<'_>],
    outcomes: &'q [DeliveryOutcome<'_>],
) {
    let rows: Vec<_> = ids.iter().zip(pending).zip(outcomes).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        query.push(
            "insert into deliveries (id, received_at, content_type, body, result, error, errors,
                                     conversation_id, event_id) ",
        );
        query.push_values(chunk, |mut row, ((id, item), outcome)| {
            row.push_bind(**id)
                .push_bind(utc_text(item.delivery.received_at))
                .push_bind(item.delivery.content_type)
                .push_bind(item.delivery.body)
                .push_bind(outcome.result.as_str())
                .push_bind(outcome.error.as_deref())
                .push_bind(outcome.errors)
                .push_bind(outcome.conversation_id)
                .push_bind(outcome.event_id);
        });
        query.push(";\n");
    }
}

/// What the batch reads of the calls that gain events: every stored event (the batch's
/// own included), grouped by call in received order, and the records they have now.
struct Read {
    events: Vec<EventRow>,
    old: Vec<Call>,
    /// One past the largest delivery id; `None` when there was no call to read.
    next_delivery_id: Option<i64>,
}

/// A [`EventAndCallRow`], with one past the largest delivery id.
#[derive(Debug, FromRow)]
struct ReadRow {
    #[sqlx(flatten)]
    stored: EventAndCallRow,
    next_delivery_id: i64,
}

/// Every stored event of the calls with their records, in one statement.
async fn read_calls(db: &mut SqliteConnection, conversation_ids: &[&str]) -> Result<Read> {
    if conversation_ids.is_empty() {
        return Ok(Read {
            events: Vec::new(),
            old: Vec::new(),
            next_delivery_id: None,
        });
    }
    // `cross join` keeps the short key list as the outer loop: each call is one range of
    // events_one_per_content and one primary-key look-up in `calls`.
    let rows: Vec<ReadRow> = sqlx::query_as(READ_CALLS.as_str())
        .bind(Json(conversation_ids))
        .fetch_all(&mut *db)
        .await?;
    let next_delivery_id = rows.first().map(|row| row.next_delivery_id);
    let mut old = Vec::new();
    let mut previous: Option<&str> = None;
    for ReadRow { stored, .. } in &rows {
        let id = stored.event.conversation_id.as_str();
        if previous != Some(id) {
            old.extend(stored.call().transpose()?);
            previous = Some(id);
        }
    }
    Ok(Read {
        events: rows.into_iter().map(|row| row.stored.event).collect(),
        old,
        next_delivery_id,
    })
}

static READ_CALLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {EVENT_AND_CALL_COLUMNS}, '{{}}' as payload,
                (select coalesce(max(id), 0) + 1 from deliveries) as next_delivery_id
         from json_each(?1) as k
         cross join events as e on e.conversation_id = k.value
         left join calls as c on c.conversation_id = k.value
         order by e.conversation_id, e.received_at, e.id"
    )
});

/// Writes the records over the calls' rows and moves their counts in the statistics tables
/// from what the rows held before to what they hold now.
pub(super) async fn upsert_calls(db: &mut SqliteConnection, calls: &[Call]) -> Result<()> {
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

/// Pushes the statements that write the records over the calls' rows.
fn push_calls<'q>(query: &mut QueryBuilder<'q, Sqlite>, calls: &'q [Call], updated_at: String) {
    for chunk in calls.chunks(ROWS_PER_STATEMENT) {
        query.push(
            "insert into calls (conversation_id, state, status, outcome, reason_code, reason,
                                sip_code, sip_reason, duration_s, connected_at, ended_at,
                                amd_mode, amd_result, occurred_at, first_seen_at, last_seen_at,
                                event_count, updated_at) ",
        );
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
                .push_bind(updated_at.clone());
        });
        query.push(
            " on conflict (conversation_id) do update set
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
                 updated_at = excluded.updated_at;\n",
        );
    }
}

/// Pushes the statements that add the deltas to the statistics tables.
fn push_counts<'q>(query: &mut QueryBuilder<'q, Sqlite>, deltas: &'q Deltas) {
    let slots: Vec<_> = deltas.slots.iter().collect();
    for chunk in slots.chunks(ROWS_PER_STATEMENT) {
        query.push(
            "insert into call_slot_counts
                 (slot, state, outcome, amd_result, reason_code, answered, calls) ",
        );
        query.push_values(chunk, |mut row, (key, n)| {
            row.push_bind(key.slot)
                .push_bind(key.state)
                .push_bind(key.outcome)
                .push_bind(key.amd_result)
                .push_bind(key.reason_code.as_str())
                .push_bind(key.answered)
                .push_bind(**n);
        });
        query.push(
            " on conflict (slot, state, outcome, amd_result, reason_code, answered)
              do update set calls = calls + excluded.calls;\n",
        );
    }
    let durations: Vec<_> = deltas.durations.iter().collect();
    for chunk in durations.chunks(ROWS_PER_STATEMENT) {
        query.push(
            "insert into call_day_durations
                 (day, state, outcome, amd_result, reason_code, duration_s, calls) ",
        );
        query.push_values(chunk, |mut row, (key, n)| {
            row.push_bind(key.day)
                .push_bind(key.state)
                .push_bind(key.outcome)
                .push_bind(key.amd_result)
                .push_bind(key.reason_code.as_str())
                .push_bind(key.duration_s)
                .push_bind(**n);
        });
        query.push(
            " on conflict (day, state, outcome, amd_result, reason_code, duration_s)
              do update set calls = calls + excluded.calls;\n",
        );
    }
}
