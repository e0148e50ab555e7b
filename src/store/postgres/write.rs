//! The PostgreSQL group-commit write path: a whole batch of deliveries in one transaction
//! (one WAL flush), with `unnest` array inserts, so that each statement is prepared once
//! whatever the batch size. See [`super::super::batch`] for the bookkeeping.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;

use super::PgStore;
use crate::call::Call;
use crate::notification::Notification;
use crate::store::batch::{EventKey, Pending, Plan, fold_calls, recorded};
use crate::store::query::CALL_COLUMNS;
use crate::store::rollup::Deltas;
use crate::store::rows::{CallRow, DeliveryOutcome, EventRow, sip_code_to_column};
use crate::store::{Recorded, Result};

impl PgStore {
    /// Records a batch of deliveries in one transaction; the answers are in batch order.
    #[tracing::instrument(name = "postgres.record_batch", skip_all, fields(size = pending.len()))]
    pub async fn record_batch(&self, pending: &[Pending<'_>]) -> Result<Vec<Recorded>> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let mut plan = Plan::new(pending);
        let mut tx = self.begin_write().await?;
        lock_calls(&mut tx, &plan.conversation_ids()).await?;
        let new_events: Vec<_> = plan.new_events().collect();
        let (inserted, existing) = insert_events(&mut tx, &new_events).await?;
        plan.inserted(inserted)?;
        plan.existing(existing)?;
        // Only if another writer stored one of these contents without taking its call's
        // lock, which calltrail never does.
        let unresolved = plan.unresolved();
        if !unresolved.is_empty() {
            plan.existing(select_event_ids(&mut tx, &unresolved).await?)?;
        }
        let outcomes = plan.outcomes()?;
        let delivery_ids = insert_deliveries(&mut tx, pending, &outcomes).await?;
        refold_calls(&mut tx, &plan.calls_to_refold()).await?;
        tx.commit().await?;
        Ok(recorded(&outcomes, &delivery_ids))
    }
}

/// Takes the advisory lock of every call in the batch (see `lock_call`), in the order of
/// the lock keys, so that two batches of two instances never wait for each other in a cycle.
async fn lock_calls(db: &mut PgConnection, conversation_ids: &[&str]) -> Result<()> {
    if conversation_ids.is_empty() {
        return Ok(());
    }
    // The sort happens in the subquery, so the locks are taken in that order (the pattern
    // the PostgreSQL manual gives for locking a set of keys).
    sqlx::query(
        "select pg_advisory_xact_lock(keys.key)
         from (select distinct hashtextextended(id, 0) as key
               from unnest($1::text[]) as id
               order by key) as keys",
    )
    .bind(conversation_ids)
    .execute(db)
    .await?;
    Ok(())
}

/// Inserts the events whose content is not stored yet. Returns those it stored, and those
/// that were stored before, in one round trip: the second half of the query reads the
/// statement's snapshot, which does not hold the first half's rows. The calls' locks,
/// taken by an earlier statement, keep any other calltrail from storing these contents
/// meanwhile.
async fn insert_events(
    db: &mut PgConnection,
    events: &[(&Notification, DateTime<Utc>)],
) -> Result<(Vec<EventKey>, Vec<EventKey>)> {
    if events.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let rows: Vec<(i64, String, String, bool)> = sqlx::query_as(
        "with input as (
             select *
             from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::integer[], $8::text[], $9::text[], $10::text[],
                         $11::bigint[], $12::timestamptz[], $13::timestamptz[],
                         $14::jsonb[], $15::jsonb[], $16::timestamptz[])
                  as i (conversation_id, content_hash, status, reason_code, reason_code_raw,
                        reason, sip_code, sip_reason, amd_mode, amd_result, duration_s,
                        connect_time, disconnect_time, warnings, payload, received_at)
         ),
         inserted as (
             insert into events (conversation_id, content_hash, status, reason_code,
                                 reason_code_raw, reason, sip_code, sip_reason, amd_mode,
                                 amd_result, duration_s, connect_time, disconnect_time,
                                 warnings, payload, received_at)
             select * from input
             on conflict on constraint events_one_per_content do nothing
             returning id, conversation_id, content_hash
         )
         select id, conversation_id, content_hash, true from inserted
         union all
         select e.id, e.conversation_id, e.content_hash, false
         from input
         cross join lateral (
             select id, conversation_id, content_hash
             from events
             where events.conversation_id = input.conversation_id
               and events.content_hash = input.content_hash
             offset 0
         ) as e",
    )
    .bind(map(events, |(n, _)| n.event.conversation_id.as_str()))
    .bind(map(events, |(n, _)| n.content_hash.as_str()))
    .bind(map(events, |(n, _)| n.event.status.as_str()))
    .bind(map(events, |(n, _)| n.event.reason_code.as_deref()))
    .bind(map(events, |(n, _)| n.event.reason_code_raw.as_deref()))
    .bind(map(events, |(n, _)| n.event.reason.as_deref()))
    .bind(map(events, |(n, _)| sip_code_to_column(n.event.sip_code)))
    .bind(map(events, |(n, _)| n.event.sip_reason.as_deref()))
    .bind(map(events, |(n, _)| {
        n.event.amd_mode.map(|mode| mode.as_str())
    }))
    .bind(map(events, |(n, _)| {
        n.event.amd_result.map(|result| result.as_str())
    }))
    .bind(map(events, |(n, _)| n.event.duration_s))
    .bind(map(events, |(n, _)| n.event.connect_time))
    .bind(map(events, |(n, _)| n.event.disconnect_time))
    .bind(map(events, |(n, _)| Json(&n.event.warnings)))
    .bind(map(events, |(n, _)| Json(&n.payload)))
    .bind(map(events, |(_, received_at)| *received_at))
    // One index look-up per content (`lateral`): see `refold_calls`.
    .fetch_all(db)
    .await?;
    let (inserted, existing): (Vec<_>, Vec<_>) = rows.into_iter().partition(|row| row.3);
    let key = |(id, conversation_id, content_hash, _)| (id, conversation_id, content_hash);
    Ok((
        inserted.into_iter().map(key).collect(),
        existing.into_iter().map(key).collect(),
    ))
}

/// The ids of stored events, by `(conversation_id, content_hash)`.
async fn select_event_ids(db: &mut PgConnection, keys: &[(&str, &str)]) -> Result<Vec<EventKey>> {
    let rows = sqlx::query_as(
        "select e.id, e.conversation_id, e.content_hash
         from unnest($1::text[], $2::text[]) as k (conversation_id, content_hash)
         join events as e using (conversation_id, content_hash)",
    )
    .bind(map(keys, |(id, _)| *id))
    .bind(map(keys, |(_, hash)| *hash))
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Inserts one delivery per body; returns their ids in batch order.
///
/// Each row's id is drawn from the identity's sequence beside its position in the batch
/// (`rows` is materialized once), so that each body knows its row without
/// relying on the order in which `returning` gives rows back.
async fn insert_deliveries(
    db: &mut PgConnection,
    pending: &[Pending<'_>],
    outcomes: &[DeliveryOutcome<'_>],
) -> Result<Vec<i64>> {
    let ids = sqlx::query_scalar(
        "with rows as materialized (
             select nextval(pg_get_serial_sequence('deliveries', 'id')) as id, r.*
             from unnest($1::timestamptz[], $2::text[], $3::bytea[], $4::text[], $5::text[],
                         $6::jsonb[], $7::text[], $8::bigint[])
                  with ordinality
                  as r (received_at, content_type, body, result, error, errors,
                        conversation_id, event_id, position)
         ),
         inserted as (
             insert into deliveries (id, received_at, content_type, body, result, error,
                                     errors, conversation_id, event_id)
             overriding system value
             select id, received_at, content_type, body, result, error, errors,
                    conversation_id, event_id
             from rows
         )
         select id from rows order by position",
    )
    .bind(map(pending, |p| p.delivery.received_at))
    .bind(map(pending, |p| p.delivery.content_type))
    .bind(map(pending, |p| p.delivery.body))
    .bind(map(outcomes, |o| o.result.as_str()))
    .bind(map(outcomes, |o| o.error.as_deref()))
    .bind(map(outcomes, |o| o.errors))
    .bind(map(outcomes, |o| o.conversation_id))
    .bind(map(outcomes, |o| o.event_id))
    .fetch_all(db)
    .await?;
    Ok(ids)
}

/// Folds all events of each call again and writes the results over their records.
async fn refold_calls(db: &mut PgConnection, conversation_ids: &[&str]) -> Result<()> {
    if conversation_ids.is_empty() {
        return Ok(());
    }
    // One index look-up per call: a `lateral` subquery kept from being flattened into a
    // join (`offset 0`), in a write transaction that plans no sequential scan
    // (`PgStore::begin_write`). Otherwise the planner, with no statistics yet or a cached
    // plan made while `events` was small, hashes the whole table for every batch. The fold
    // does not look at payloads: leaving them out spares decoding every call's JSON again.
    let rows: Vec<EventRow> = sqlx::query_as(
        "select e.id, e.conversation_id, e.content_hash, e.status, e.reason_code,
                e.reason_code_raw, e.reason, e.sip_code, e.sip_reason, e.amd_mode, e.amd_result,
                e.duration_s, e.connect_time, e.disconnect_time, e.warnings,
                '{}'::jsonb as payload, e.received_at
         from unnest($1::text[]) as c (conversation_id)
         cross join lateral (
             select * from events where events.conversation_id = c.conversation_id offset 0
         ) as e
         order by e.conversation_id, e.received_at, e.id",
    )
    .bind(conversation_ids)
    .fetch_all(&mut *db)
    .await?;
    let calls = fold_calls(rows, conversation_ids.len())?;
    upsert_calls(db, &calls).await
}

/// Writes the records over the calls' rows and moves their counts in the statistics tables
/// from what the rows held before to what they hold now.
pub(super) async fn upsert_calls(db: &mut PgConnection, calls: &[Call]) -> Result<()> {
    // One statement: `old` reads the snapshot the statement started with, before the
    // upsert's changes. One primary-key look-up per call, as in `refold_calls`: callers
    // write in `PgStore::begin_write`'s transactions, whose plans scan no table whole.
    let old: Vec<CallRow> = sqlx::query_as(UPSERT_CALLS.as_str())
        .bind(map(calls, |c| c.conversation_id.as_str()))
        .bind(map(calls, |c| c.state.as_str()))
        .bind(map(calls, |c| c.status.as_deref()))
        .bind(map(calls, |c| c.outcome.as_str()))
        .bind(map(calls, |c| c.reason_code.as_deref()))
        .bind(map(calls, |c| c.reason.as_deref()))
        .bind(map(calls, |c| sip_code_to_column(c.sip_code)))
        .bind(map(calls, |c| c.sip_reason.as_deref()))
        .bind(map(calls, |c| c.duration_s))
        .bind(map(calls, |c| c.connected_at))
        .bind(map(calls, |c| c.ended_at))
        .bind(map(calls, |c| c.amd_mode.map(|mode| mode.as_str())))
        .bind(map(calls, |c| c.amd_result.map(|result| result.as_str())))
        .bind(map(calls, |c| c.occurred_at))
        .bind(map(calls, |c| c.first_seen_at))
        .bind(map(calls, |c| c.last_seen_at))
        .bind(map(calls, |c| c.event_count))
        .bind(Utc::now())
        .fetch_all(&mut *db)
        .await?;
    let old = old
        .into_iter()
        .map(Call::try_from)
        .collect::<Result<Vec<_>>>()?;
    apply_counts(db, &Deltas::between(&old, calls)).await
}

static UPSERT_CALLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with old as (
         select c.*
         from unnest($1::text[]) as k (conversation_id)
         cross join lateral (
             select {CALL_COLUMNS} from calls
             where calls.conversation_id = k.conversation_id
             offset 0
         ) as c
     ),
     upserted as (
         insert into calls (conversation_id, state, status, outcome, reason_code, reason,
                            sip_code, sip_reason, duration_s, connected_at, ended_at, amd_mode,
                            amd_result, occurred_at, first_seen_at, last_seen_at, event_count,
                            updated_at)
         select *, $18::timestamptz
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::integer[], $8::text[], $9::bigint[], $10::timestamptz[],
                     $11::timestamptz[], $12::text[], $13::text[], $14::timestamptz[],
                     $15::timestamptz[], $16::timestamptz[], $17::bigint[])
         on conflict (conversation_id) do update set
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
             updated_at = excluded.updated_at
     )
     select * from old"
    )
});

/// Adds the deltas to the statistics tables, in key order (see [`Deltas`]).
async fn apply_counts(db: &mut PgConnection, deltas: &Deltas) -> Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let slots: Vec<_> = deltas.slots.iter().collect();
    let durations: Vec<_> = deltas.durations.iter().collect();
    sqlx::query(
        "with slots as (
             insert into call_slot_counts as t
                 (slot, state, outcome, amd_result, reason_code, answered, calls)
             select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::integer[], $7::bigint[])
             on conflict (slot, state, outcome, amd_result, reason_code, answered)
             do update set calls = t.calls + excluded.calls
         )
         insert into call_day_durations as t
             (day, state, outcome, amd_result, reason_code, duration_s, calls)
         select * from unnest($8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[],
                              $13::bigint[], $14::bigint[])
         on conflict (day, state, outcome, amd_result, reason_code, duration_s)
         do update set calls = t.calls + excluded.calls",
    )
    .bind(map(&slots, |(k, _)| k.slot))
    .bind(map(&slots, |(k, _)| k.state))
    .bind(map(&slots, |(k, _)| k.outcome))
    .bind(map(&slots, |(k, _)| k.amd_result))
    .bind(map(&slots, |(k, _)| k.reason_code.as_str()))
    .bind(map(&slots, |(k, _)| k.answered))
    .bind(map(&slots, |(_, n)| **n))
    .bind(map(&durations, |(k, _)| k.day))
    .bind(map(&durations, |(k, _)| k.state))
    .bind(map(&durations, |(k, _)| k.outcome))
    .bind(map(&durations, |(k, _)| k.amd_result))
    .bind(map(&durations, |(k, _)| k.reason_code.as_str()))
    .bind(map(&durations, |(k, _)| k.duration_s))
    .bind(map(&durations, |(_, n)| **n))
    .execute(db)
    .await?;
    Ok(())
}

/// One column of an `unnest` insert.
fn map<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}
