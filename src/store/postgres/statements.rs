//! The text of PostgreSQL's one-statement batch write, and how the batch's columns are bound
//! onto it and onto the other `unnest` statements of [`super::write`], each as one array.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::types::Json;

use crate::call::Call;
use crate::notification::Notification;
use crate::store::batch::Pending;
use crate::store::columns::CALL_COLUMNS;
use crate::store::rollup::Deltas;
use crate::store::rows::{DeliveryOutcome, sip_code_to_column};

/// See `write::write_batch`. Every data-modifying part that must wait for the calls' locks
/// reads `locks`, so it cannot write a row before they are held; the statement's snapshot
/// may be older than the locks, which is why the record update checks, on the newest
/// version of each row, that the record is the one read (`event_count`, `updated_at`),
/// and why an event or call insert that finds its row already there makes the whole
/// statement fail (`calltrail_batch_conflict()`). A delivery's `event_ref` is the id of
/// a stored event, or -N for the Nth new one.
pub(super) const WRITE_BATCH: &str = "
    with locks as materialized (
        select count(pg_advisory_xact_lock(keys.key)) as taken
        from (select distinct hashtextextended(id, 0) as key
              from unnest($1::text[]) as id
              order by key) as keys
    ),
    new_events as materialized (
        select nextval(pg_get_serial_sequence('events', 'id')) as id, i.*
        from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                    $8::integer[], $9::text[], $10::text[], $11::text[], $12::bigint[],
                    $13::timestamptz[], $14::timestamptz[], $15::jsonb[], $16::jsonb[],
                    $17::timestamptz[], $18::text[], $19::bigint[], $20::bigint[])
             with ordinality
             as i (conversation_id, content_hash, status, reason_code, reason_code_raw, reason,
                   sip_code, sip_reason, amd_mode, amd_result, duration_s, connect_time,
                   disconnect_time, warnings, payload, received_at, source, ring_ms,
                   connect_ms, position)
    ),
    inserted_events as (
        insert into events (id, conversation_id, content_hash, status, reason_code,
                            reason_code_raw, reason, sip_code, sip_reason, amd_mode, amd_result,
                            duration_s, connect_time, disconnect_time, warnings, payload,
                            received_at, source, ring_ms, connect_ms)
        overriding system value
        select e.id, e.conversation_id, e.content_hash, e.status, e.reason_code,
               e.reason_code_raw, e.reason, e.sip_code, e.sip_reason, e.amd_mode, e.amd_result,
               e.duration_s, e.connect_time, e.disconnect_time, e.warnings, e.payload,
               e.received_at, e.source, e.ring_ms, e.connect_ms
        from new_events as e
        cross join locks
        on conflict on constraint events_one_per_content do nothing
        returning 1
    ),
    calls_in as materialized (
        select *
        from unnest($21::text[], $22::text[], $23::text[], $24::text[], $25::text[],
                    $26::text[], $27::integer[], $28::text[], $29::bigint[],
                    $30::timestamptz[], $31::timestamptz[], $32::text[], $33::text[],
                    $34::timestamptz[], $35::timestamptz[], $36::timestamptz[], $37::bigint[],
                    $38::text[], $39::bigint[], $40::bigint[], $41::bigint[],
                    $42::timestamptz[])
             as c (conversation_id, state, status, outcome, reason_code, reason, sip_code,
                   sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                   occurred_at, first_seen_at, last_seen_at, event_count, source, ring_ms,
                   connect_ms, read_event_count, read_updated_at)
    ),
    updated_calls as (
        update calls set
            state = c.state,
            status = c.status,
            outcome = c.outcome,
            reason_code = c.reason_code,
            reason = c.reason,
            sip_code = c.sip_code,
            sip_reason = c.sip_reason,
            duration_s = c.duration_s,
            connected_at = c.connected_at,
            ended_at = c.ended_at,
            amd_mode = c.amd_mode,
            amd_result = c.amd_result,
            occurred_at = c.occurred_at,
            first_seen_at = c.first_seen_at,
            last_seen_at = c.last_seen_at,
            event_count = c.event_count,
            source = c.source,
            ring_ms = c.ring_ms,
            connect_ms = c.connect_ms,
            updated_at = $43::timestamptz
        from calls_in as c
        cross join locks
        where c.read_event_count is not null
          and calls.conversation_id = c.conversation_id
          and calls.event_count = c.read_event_count
          and calls.updated_at = c.read_updated_at
        returning 1
    ),
    inserted_calls as (
        insert into calls (conversation_id, state, status, outcome, reason_code, reason,
                           sip_code, sip_reason, duration_s, connected_at, ended_at, amd_mode,
                           amd_result, occurred_at, first_seen_at, last_seen_at, event_count,
                           source, ring_ms, connect_ms, updated_at)
        select c.conversation_id, c.state, c.status, c.outcome, c.reason_code, c.reason,
               c.sip_code, c.sip_reason, c.duration_s, c.connected_at, c.ended_at, c.amd_mode,
               c.amd_result, c.occurred_at, c.first_seen_at, c.last_seen_at, c.event_count,
               c.source, c.ring_ms, c.connect_ms, $43::timestamptz
        from calls_in as c
        cross join locks
        where c.read_event_count is null
        on conflict (conversation_id) do nothing
        returning 1
    ),
    written as (
        select (select count(*) from inserted_events) = cardinality($2::text[])
           and (select count(*) from updated_calls) + (select count(*) from inserted_calls)
               = cardinality($21::text[])
           as complete
    ),
    new_event_ids as (
        select coalesce(array_agg(id order by position), '{}') as ids from new_events
    ),
    resolved as materialized (
        select nextval(pg_get_serial_sequence('deliveries', 'id')) as id, d.received_at,
               d.content_type, d.body, d.result, d.error, d.errors, d.conversation_id,
               case when d.event_ref < 0 then n.ids[-d.event_ref] else d.event_ref end
                   as event_id,
               d.source, d.position
        from unnest($44::timestamptz[], $45::text[], $46::bytea[], $47::text[], $48::text[],
                    $49::jsonb[], $50::text[], $51::bigint[], $52::text[])
             with ordinality
             as d (received_at, content_type, body, result, error, errors, conversation_id,
                   event_ref, source, position)
        cross join new_event_ids as n
    ),
    inserted_deliveries as (
        insert into deliveries (id, received_at, content_type, body, result, error, errors,
                                conversation_id, event_id, source)
        overriding system value
        select id, received_at, content_type, body, result, error, errors, conversation_id,
               event_id, source
        from resolved
    ),
    slots as (
        insert into call_slot_counts as t
            (slot, state, outcome, amd_result, reason_code, answered, source, calls)
        select * from unnest($53::bigint[], $54::text[], $55::text[], $56::text[], $57::text[],
                             $58::integer[], $59::text[], $60::bigint[])
        on conflict (slot, state, outcome, amd_result, reason_code, answered, source)
        do update set calls = t.calls + excluded.calls
    ),
    durations as (
        insert into call_day_durations as t
            (day, state, outcome, amd_result, reason_code, duration_s, source, calls)
        select * from unnest($61::bigint[], $62::text[], $63::text[], $64::text[], $65::text[],
                             $66::bigint[], $67::text[], $68::bigint[])
        on conflict (day, state, outcome, amd_result, reason_code, duration_s, source)
        do update set calls = t.calls + excluded.calls
    ),
    ring_times as (
        insert into call_day_ring_times as t
            (day, state, outcome, amd_result, reason_code, ring_ms, source, calls)
        select * from unnest($69::bigint[], $70::text[], $71::text[], $72::text[], $73::text[],
                             $74::bigint[], $75::text[], $76::bigint[])
        on conflict (day, state, outcome, amd_result, reason_code, ring_ms, source)
        do update set calls = t.calls + excluded.calls
    )
    select r.id, r.event_id
    from resolved as r
    where (select case when complete then true else calltrail_batch_conflict() end
           from written)
    order by r.position";

/// Writes call records over the calls' rows, returning what the rows held before (see
/// `write::upsert_calls`).
pub(super) static UPSERT_CALLS: LazyLock<String> = LazyLock::new(|| {
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
                            source, ring_ms, connect_ms, updated_at)
         select *, $21::timestamptz
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::integer[], $8::text[], $9::bigint[], $10::timestamptz[],
                     $11::timestamptz[], $12::text[], $13::text[], $14::timestamptz[],
                     $15::timestamptz[], $16::timestamptz[], $17::bigint[], $18::text[],
                     $19::bigint[], $20::bigint[])
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
             source = excluded.source,
             ring_ms = excluded.ring_ms,
             connect_ms = excluded.connect_ms,
             updated_at = excluded.updated_at
     )
     select * from old"
    )
});

/// Binds the columns of new events, in the order of `events`' columns from
/// `conversation_id` to `connect_ms` (19 parameters).
pub(super) fn bind_events<'q, Q: Bind<'q>>(
    query: Q,
    events: &'q [(&Notification, DateTime<Utc>)],
) -> Q {
    query
        .add(map(events, |(n, _)| n.event.conversation_id.as_str()))
        .add(map(events, |(n, _)| n.content_hash.as_str()))
        .add(map(events, |(n, _)| n.event.status.as_str()))
        .add(map(events, |(n, _)| n.event.reason_code.as_deref()))
        .add(map(events, |(n, _)| n.event.reason_code_raw.as_deref()))
        .add(map(events, |(n, _)| n.event.reason.as_deref()))
        .add(map(events, |(n, _)| sip_code_to_column(n.event.sip_code)))
        .add(map(events, |(n, _)| n.event.sip_reason.as_deref()))
        .add(map(events, |(n, _)| {
            n.event.amd_mode.map(|mode| mode.as_str())
        }))
        .add(map(events, |(n, _)| {
            n.event.amd_result.map(|result| result.as_str())
        }))
        .add(map(events, |(n, _)| n.event.duration_s))
        .add(map(events, |(n, _)| n.event.connect_time))
        .add(map(events, |(n, _)| n.event.disconnect_time))
        .add(map(events, |(n, _)| Json(&n.event.warnings)))
        .add(map(events, |(n, _)| Json(&n.payload)))
        .add(map(events, |(_, received_at)| *received_at))
        .add(map(events, |(n, _)| n.event.source.source()))
        .add(map(events, |(n, _)| n.event.ring_ms))
        .add(map(events, |(n, _)| n.event.connect_ms))
}

/// Binds the columns of call records, in the order of `calls`' columns from
/// `conversation_id` to `connect_ms` (20 parameters).
pub(super) fn bind_calls<'q, Q: Bind<'q>>(query: Q, calls: &'q [Call]) -> Q {
    query
        .add(map(calls, |c| c.conversation_id.as_str()))
        .add(map(calls, |c| c.state.as_str()))
        .add(map(calls, |c| c.status.as_deref()))
        .add(map(calls, |c| c.outcome.as_str()))
        .add(map(calls, |c| c.reason_code.as_deref()))
        .add(map(calls, |c| c.reason.as_deref()))
        .add(map(calls, |c| sip_code_to_column(c.sip_code)))
        .add(map(calls, |c| c.sip_reason.as_deref()))
        .add(map(calls, |c| c.duration_s))
        .add(map(calls, |c| c.connected_at))
        .add(map(calls, |c| c.ended_at))
        .add(map(calls, |c| c.amd_mode.map(|mode| mode.as_str())))
        .add(map(calls, |c| c.amd_result.map(|result| result.as_str())))
        .add(map(calls, |c| c.occurred_at))
        .add(map(calls, |c| c.first_seen_at))
        .add(map(calls, |c| c.last_seen_at))
        .add(map(calls, |c| c.event_count))
        .add(map(calls, |c| c.source.source()))
        .add(map(calls, |c| c.ring_ms))
        .add(map(calls, |c| c.connect_ms))
}

/// Binds the columns of one delivery per body, from `received_at` to the event's id
/// and its source (9 parameters).
pub(super) fn bind_deliveries<'q, Q: Bind<'q>>(
    query: Q,
    pending: &'q [Pending<'_>],
    outcomes: &'q [DeliveryOutcome<'_>],
) -> Q {
    query
        .add(map(pending, |p| p.delivery.received_at))
        .add(map(pending, |p| p.delivery.content_type))
        .add(map(pending, |p| p.delivery.body))
        .add(map(outcomes, |o| o.result.as_str()))
        .add(map(outcomes, |o| o.error.as_deref()))
        .add(map(outcomes, |o| o.errors))
        .add(map(outcomes, |o| o.conversation_id))
        .add(map(outcomes, |o| o.event_id))
        .add(map(pending, |p| p.delivery.source.source()))
}

/// Binds the statistics deltas: the keys and changes of `call_slot_counts` (8 parameters),
/// then of `call_day_durations` (8), then of `call_day_ring_times` (8).
pub(super) fn bind_counts<'q, Q: Bind<'q>>(query: Q, deltas: &'q Deltas) -> Q {
    deltas.tables().into_iter().fold(query, |query, changes| {
        let rows: Vec<_> = changes.iter().collect();
        query
            .add(map(&rows, |(k, _)| k.time))
            .add(map(&rows, |(k, _)| k.state))
            .add(map(&rows, |(k, _)| k.outcome))
            .add(map(&rows, |(k, _)| k.amd_result))
            .add(map(&rows, |(k, _)| k.reason_code.as_str()))
            .add(map(&rows, |(k, _)| k.value))
            .add(map(&rows, |(k, _)| k.source))
            .add(map(&rows, |(_, n)| **n))
    })
}

/// A query that takes parameters: `sqlx::query` and `sqlx::query_as` alike, so that the
/// column groups above bind onto either.
pub(super) trait Bind<'q>: Sized {
    fn add<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self;
}

impl<'q> Bind<'q> for Query<'q, Postgres, PgArguments> {
    fn add<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, O> Bind<'q> for QueryAs<'q, Postgres, O, PgArguments> {
    fn add<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, O> Bind<'q> for QueryScalar<'q, Postgres, O, PgArguments> {
    fn add<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

/// One column of an `unnest` insert.
pub(super) fn map<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}
