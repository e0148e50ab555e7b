//! The PostgreSQL group-commit write path: a whole batch of deliveries in one transaction
//! (one WAL flush), with `unnest` array inserts, so that each statement is prepared once
//! whatever the batch size. See [`super::super::batch`] for the bookkeeping.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;

use super::PgStore;
use super::statements::{
    UPSERT_CALLS, WRITE_BATCH, bind_calls, bind_counts, bind_deliveries, bind_events, map,
};
use crate::call::{self, Call, Ended, RecordedEvent};
use crate::notification::{Event, Notification};
use crate::store::batch::{EventKey, Pending, Plan, fold_calls, recorded};
use crate::store::rollup::Deltas;
use crate::store::rows::{
    CallRow, DeliveryOutcome, EVENT_AND_CALL_COLUMNS, EventAndCallRow, EventRow,
};
use crate::store::{Committed, Result, StoreError, StoredEvent};

impl PgStore {
    /// Records a batch of deliveries in one transaction; the answers are in batch order.
    ///
    /// Two round trips as a rule ([`PgStore::record_batch_at_once`]); under the calls'
    /// locks in a transaction of several statements ([`PgStore::record_batch_locked`]) when
    /// another transaction changed one of the batch's calls meanwhile.
    #[tracing::instrument(name = "postgres.record_batch", skip_all, fields(size = pending.len()))]
    pub async fn record_batch(&self, pending: &[Pending<'_>]) -> Result<Committed> {
        if pending.is_empty() {
            return Ok(Committed::on_disk(Vec::new(), Vec::new()));
        }
        match self.record_batch_at_once(pending).await {
            Err(StoreError::Database(sqlx::Error::Database(err)))
                if err.code().as_deref() == Some(SERIALIZATION_FAILURE) =>
            {
                tracing::debug!(
                    "a call of the batch changed while it was written; again under the calls' locks"
                );
                self.record_batch_locked(pending).await
            }
            other => other,
        }
    }

    /// Reads the batch's calls (their records and events) in one statement, folds them
    /// with the batch's new events here, and writes everything in a second statement —
    /// its own transaction, committed before it answers — which first takes the calls'
    /// advisory locks and then aborts itself ([`SERIALIZATION_FAILURE`]) if a call's
    /// record is no longer the one read, or if an event it inserts is already stored.
    async fn record_batch_at_once(&self, pending: &[Pending<'_>]) -> Result<Committed> {
        let mut plan = Plan::new(pending);
        let conversation_ids = plan.conversation_ids();
        let mut db = self.writes.acquire().await?;
        let stored = read_calls(&mut db, &conversation_ids).await?;
        plan.known(stored.iter().map(|row| {
            let event = &row.event;
            (
                event.id,
                event.conversation_id.as_str(),
                event.content_hash.as_str(),
            )
        }));
        let new_events = plan.new_for_the_rest();
        let mut outcomes = plan.outcomes()?;
        let writes = CallWrites::fold(stored, &new_events, &plan.calls_to_refold())?;
        let rows = write_batch(
            &mut db,
            &conversation_ids,
            &new_events,
            &writes,
            pending,
            &outcomes,
        )
        .await?;
        if rows.len() != outcomes.len() {
            return Err(StoreError::Corrupt(format!(
                "writing {} deliveries returned {} ids",
                outcomes.len(),
                rows.len()
            )));
        }
        let recorded = outcomes
            .iter_mut()
            .zip(rows)
            .map(|(outcome, (delivery_id, event_id))| {
                outcome.event_id = event_id;
                outcome.recorded(delivery_id)
            })
            .collect();
        Ok(Committed::on_disk(recorded, writes.ended))
    }

    /// Records a batch in one transaction that first takes the advisory locks of its calls,
    /// so that no other transaction changes them meanwhile.
    async fn record_batch_locked(&self, pending: &[Pending<'_>]) -> Result<Committed> {
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
        let ended = refold_calls(&mut tx, &plan.calls_to_refold()).await?;
        tx.commit().await?;
        Ok(Committed::on_disk(
            recorded(&outcomes, &delivery_ids),
            ended,
        ))
    }
}

/// The SQLSTATE with which `calltrail_batch_conflict()` (migration 0006) aborts a batch's
/// statement: serialization_failure, "try again".
const SERIALIZATION_FAILURE: &str = "40001";

/// Every stored event of the calls, each with its call's record, read in one snapshot
/// (both are written in one transaction, so they agree). Payloads are left out: the fold
/// does not look at them.
async fn read_calls(
    db: &mut PgConnection,
    conversation_ids: &[&str],
) -> Result<Vec<EventAndCallRow>> {
    if conversation_ids.is_empty() {
        return Ok(Vec::new());
    }
    // One primary-key probe per call and one index probe for its events: `lateral`
    // subqueries kept from being flattened (`offset 0`), planned without sequential scans
    // (the `writes` pool's sessions).
    let rows = sqlx::query_as(READ_CALLS.as_str())
        .bind(conversation_ids)
        .fetch_all(db)
        .await?;
    Ok(rows)
}

static READ_CALLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {EVENT_AND_CALL_COLUMNS}, '{{}}'::jsonb as payload
         from unnest($1::text[]) as k (conversation_id)
         cross join lateral (
             select * from calls where calls.conversation_id = k.conversation_id offset 0
         ) as c
         cross join lateral (
             select * from events where events.conversation_id = k.conversation_id offset 0
         ) as e"
    )
});

/// The records a batch writes: each call that gains an event folded again from its
/// stored events and the new ones, with the record it replaces.
struct CallWrites {
    calls: Vec<Call>,
    /// For each of `calls`: the stored record's event count and time of writing, or
    /// `None` for a new call — what the write checks is still there.
    read: Vec<Option<(i64, DateTime<Utc>)>>,
    deltas: Deltas,
    /// The calls these records make terminal for the first time.
    ended: Vec<Ended>,
}

impl CallWrites {
    fn fold(
        stored: Vec<EventAndCallRow>,
        new_events: &[(&Notification, DateTime<Utc>)],
        to_refold: &[&str],
    ) -> Result<Self> {
        #[derive(Default)]
        struct Gathered {
            read: Option<(i64, DateTime<Utc>)>,
            old: Option<Call>,
            events: Vec<RecordedEvent>,
        }
        let mut by_call: HashMap<&str, Gathered> = to_refold
            .iter()
            .map(|id| (*id, Gathered::default()))
            .collect();
        for row in stored {
            if let Some(call) = by_call.get_mut(row.event.conversation_id.as_str()) {
                if call.read.is_none() {
                    call.read = row.call_event_count.zip(row.call_updated_at);
                    call.old = row.call().transpose()?;
                }
                call.events.push(StoredEvent::try_from(row.event)?.recorded);
            }
        }
        for (index, (notification, received_at)) in new_events.iter().enumerate() {
            let id = notification.event.conversation_id.as_str();
            let call = by_call.get_mut(id).ok_or_else(|| {
                StoreError::Corrupt(format!("new event of call {id:?} is not to be folded"))
            })?;
            call.events.push(as_read_back(
                notification,
                *received_at,
                -(index as i64) - 1,
            ));
        }
        let mut calls = Vec::with_capacity(to_refold.len());
        let mut read = Vec::with_capacity(to_refold.len());
        let mut old = Vec::new();
        for id in to_refold {
            let gathered = by_call
                .remove(id)
                .expect("every call to refold was gathered");
            calls.push(call::fold(&gathered.events).ok_or_else(|| {
                StoreError::Corrupt(format!("call {id:?} has no events to fold"))
            })?);
            read.push(gathered.read);
            old.extend(gathered.old);
        }
        let deltas = Deltas::between(&old, &calls);
        let ended = call::ended(&old, &calls);
        Ok(Self {
            calls,
            read,
            deltas,
            ended,
        })
    }
}

/// A new event as it will read back from the database: PostgreSQL keeps times to the
/// microsecond, so the fold here must see them as the store will (see [`as_stored`]).
fn as_read_back(
    notification: &Notification,
    received_at: DateTime<Utc>,
    stand_in_id: i64,
) -> RecordedEvent {
    let event = &notification.event;
    RecordedEvent {
        id: stand_in_id,
        content_hash: notification.content_hash.clone(),
        received_at: as_stored(received_at),
        event: Event {
            connect_time: event.connect_time.map(as_stored),
            disconnect_time: event.disconnect_time.map(as_stored),
            ..event.clone()
        },
    }
}

/// A time as PostgreSQL stores what sqlx sends it: whole microseconds since 2000-01-01,
/// the rest cut off toward that day (`TimeDelta::num_microseconds`).
fn as_stored(time: DateTime<Utc>) -> DateTime<Utc> {
    let epoch = DateTime::<Utc>::from_timestamp(946_684_800, 0).expect("2000-01-01 is a time");
    (time - epoch)
        .num_microseconds()
        .map_or(time, |micros| epoch + TimeDelta::microseconds(micros))
}

/// Writes a batch in one statement, its own transaction: takes the calls' advisory locks,
/// inserts the new events, writes the calls' records if they are still those read (else
/// aborts with [`SERIALIZATION_FAILURE`]), inserts one delivery per body and moves the
/// statistics counts. Returns each delivery's id and event id, in batch order.
async fn write_batch(
    db: &mut PgConnection,
    conversation_ids: &[&str],
    events: &[(&Notification, DateTime<Utc>)],
    writes: &CallWrites,
    pending: &[Pending<'_>],
    outcomes: &[DeliveryOutcome<'_>],
) -> Result<Vec<(i64, Option<i64>)>> {
    let query = sqlx::query_as(WRITE_BATCH).bind(conversation_ids);
    let query = bind_calls(bind_events(query, events), &writes.calls);
    let query = query
        .bind(map(&writes.read, |read| read.map(|(count, _)| count)))
        .bind(map(&writes.read, |read| read.map(|(_, at)| at)))
        .bind(Utc::now());
    let query = bind_deliveries(query, pending, outcomes);
    let rows = bind_counts(query, &writes.deltas).fetch_all(db).await?;
    Ok(rows)
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
    let query = sqlx::query_as(
        "with input as (
             select *
             from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::integer[], $8::text[], $9::text[], $10::text[],
                         $11::bigint[], $12::timestamptz[], $13::timestamptz[],
                         $14::jsonb[], $15::jsonb[], $16::timestamptz[], $17::text[],
                         $18::bigint[], $19::bigint[])
                  as i (conversation_id, content_hash, status, reason_code, reason_code_raw,
                        reason, sip_code, sip_reason, amd_mode, amd_result, duration_s,
                        connect_time, disconnect_time, warnings, payload, received_at,
                        source, ring_ms, connect_ms)
         ),
         inserted as (
             insert into events (conversation_id, content_hash, status, reason_code,
                                 reason_code_raw, reason, sip_code, sip_reason, amd_mode,
                                 amd_result, duration_s, connect_time, disconnect_time,
                                 warnings, payload, received_at, source, ring_ms, connect_ms)
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
    );
    let rows: Vec<(i64, String, String, bool)> = bind_events(query, events)
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
    let query = sqlx::query_scalar(
        "with rows as materialized (
             select nextval(pg_get_serial_sequence('deliveries', 'id')) as id, r.*
             from unnest($1::timestamptz[], $2::text[], $3::bytea[], $4::text[], $5::text[],
                         $6::jsonb[], $7::text[], $8::bigint[], $9::text[])
                  with ordinality
                  as r (received_at, content_type, body, result, error, errors,
                        conversation_id, event_id, source, position)
         ),
         inserted as (
             insert into deliveries (id, received_at, content_type, body, result, error,
                                     errors, conversation_id, event_id, source)
             overriding system value
             select id, received_at, content_type, body, result, error, errors,
                    conversation_id, event_id, source
             from rows
         )
         select id from rows order by position",
    );
    let ids = bind_deliveries(query, pending, outcomes)
        .fetch_all(db)
        .await?;
    Ok(ids)
}

/// Folds all events of each call again and writes the results over their records; returns
/// the calls that became terminal.
async fn refold_calls(db: &mut PgConnection, conversation_ids: &[&str]) -> Result<Vec<Ended>> {
    if conversation_ids.is_empty() {
        return Ok(Vec::new());
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
                '{}'::jsonb as payload, e.received_at, e.source, e.ring_ms, e.connect_ms
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
/// from what the rows held before to what they hold now. Returns the calls that became
/// terminal ([`call::ended`]).
pub(in crate::store) async fn upsert_calls(
    db: &mut PgConnection,
    calls: &[Call],
) -> Result<Vec<Ended>> {
    // One statement: `old` reads the snapshot the statement started with, before the
    // upsert's changes. One primary-key look-up per call, as in `refold_calls`: callers
    // write in `PgStore::begin_write`'s transactions, whose plans scan no table whole.
    let old: Vec<CallRow> = bind_calls(sqlx::query_as(UPSERT_CALLS.as_str()), calls)
        .bind(Utc::now())
        .fetch_all(&mut *db)
        .await?;
    let old = old
        .into_iter()
        .map(Call::try_from)
        .collect::<Result<Vec<_>>>()?;
    apply_counts(db, &Deltas::between(&old, calls)).await?;
    Ok(call::ended(&old, calls))
}

/// Adds the deltas to the statistics tables, in key order (see [`Deltas`]).
async fn apply_counts(db: &mut PgConnection, deltas: &Deltas) -> Result<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let query = sqlx::query(
        "with slots as (
             insert into call_slot_counts as t
                 (slot, state, outcome, amd_result, reason_code, answered, source, calls)
             select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::integer[], $7::text[], $8::bigint[])
             on conflict (slot, state, outcome, amd_result, reason_code, answered, source)
             do update set calls = t.calls + excluded.calls
         ),
         durations as (
             insert into call_day_durations as t
                 (day, state, outcome, amd_result, reason_code, duration_s, source, calls)
             select * from unnest($9::bigint[], $10::text[], $11::text[], $12::text[],
                                  $13::text[], $14::bigint[], $15::text[], $16::bigint[])
             on conflict (day, state, outcome, amd_result, reason_code, duration_s, source)
             do update set calls = t.calls + excluded.calls
         )
         insert into call_day_ring_times as t
             (day, state, outcome, amd_result, reason_code, ring_ms, source, calls)
         select * from unnest($17::bigint[], $18::text[], $19::text[], $20::text[], $21::text[],
                              $22::bigint[], $23::text[], $24::bigint[])
         on conflict (day, state, outcome, amd_result, reason_code, ring_ms, source)
         do update set calls = t.calls + excluded.calls",
    );
    bind_counts(query, deltas).execute(db).await?;
    Ok(())
}
