//! The PostgreSQL backend, the production store: native `timestamptz`, `jsonb`, `bytea`.
//!
//! Several calltrail instances may share one database. Writes of one call are serialized
//! by a transaction-scoped advisory lock on its conversation id (see [`lock_call`]).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgExecutor, PgPool, PgPoolOptions};
use sqlx::types::Json;

use super::rows::{CallRow, DeliveryOutcome, DeliveryRow, EventRow, sip_code_to_column};
use super::{Delivery, DeliveryResult, NewDelivery, Recorded, Result, StoreError, StoredEvent};
use crate::call::{self, Call, RecordedEvent};
use crate::notification::{Notification, Rejection};

use super::query;

mod dialouts;
mod reads;
mod spooled;
mod write;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a pooled connection (including connecting) before giving
/// up, so that requests fail fast with [`StoreError::Unavailable`] while the server is down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How every transaction that records notifications begins. The write path's statements
/// are prepared once per connection and their plans cached, and each reads rows by key
/// (a call's events, its record, an event by content); a plan made while a table was
/// small — where a sequential scan is cheapest — must not keep scanning the whole table as
/// it grows, as it once did on every batch. With sequential scans off for the transaction,
/// the plans made in it are index plans. (A cached plan does not change with the setting:
/// a statement also run outside these transactions is planned at each run, [`Planned`].) (Planning each batch's statements anew instead cost a
/// quarter of the throughput: README, "Ingest throughput".)
const BEGIN_WRITE: &str = "begin; set local enable_seqscan = off";

/// The session settings of the `writes` pool, whose statements read and write rows by
/// key (see [`BEGIN_WRITE`]): with sequential scans, merge joins and hash joins off, even a
/// plan cached while the tables were nearly empty probes indexes row by row. (With merge
/// joins allowed, such a plan once walked the whole primary key of `calls` to update a few
/// records.)
const WRITES_PLAN_KEY_LOOKUPS: [(&str, &str); 3] = [
    ("enable_seqscan", "off"),
    ("enable_mergejoin", "off"),
    ("enable_hashjoin", "off"),
];

/// How long a pooled connection may sit idle before it is pinged on its next use.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Pools of connections to one PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Connections for the group-commit writers' statements that run outside a
    /// transaction (`write::record_batch`): their sessions plan no sequential scan, for the
    /// reason [`BEGIN_WRITE`] gives.
    writes: PgPool,
}

impl PgStore {
    /// Prepares the pools for `url` (`postgres://…`) without connecting.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::BadUrl)?;
        let writes = pool_options(crate::config::MAX_WRITERS as u32)
            .connect_lazy_with(options.clone().options(WRITES_PLAN_KEY_LOOKUPS));
        let pool = pool_options(max_connections.max(1)).connect_lazy_with(options);
        Ok(Self { pool, writes })
    }

    /// A transaction for recording notifications: see [`BEGIN_WRITE`].
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin_with(BEGIN_WRITE).await?)
    }

    /// Applies the migrations in `migrations/postgres/`.
    #[tracing::instrument(name = "postgres.migrate", skip_all)]
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        self.count_calls_if_uncounted().await
    }

    /// Refills the statistics tables from `calls` when they do not count every call (see
    /// [`query::COUNTS_WRONG`]), in one transaction.
    async fn count_calls_if_uncounted(&self) -> Result<()> {
        let wrong: bool = sqlx::query_scalar(query::COUNTS_WRONG)
            .fetch_one(&self.pool)
            .await?;
        if !wrong {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        // Self-exclusive, and excludes writers of calls: one instance counts, the others
        // (and any write) wait, then find the counts there.
        sqlx::query("lock table calls in share row exclusive mode")
            .execute(&mut *tx)
            .await?;
        let wrong: bool = sqlx::query_scalar(query::COUNTS_WRONG)
            .fetch_one(&mut *tx)
            .await?;
        if wrong {
            for statement in query::rebuild_counts(query::Dialect::Postgres) {
                sqlx::query(&statement).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "refilled the statistics tables from the stored calls"
            );
        }
        Ok(())
    }

    /// Answers when the database does.
    #[tracing::instrument(name = "postgres.ping", skip_all)]
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores the delivery and, for a notification, its event and re-folded call, in one
    /// transaction.
    #[tracing::instrument(name = "postgres.record", skip_all)]
    pub async fn record(
        &self,
        delivery: NewDelivery<'_>,
        parsed: &Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        let mut tx = self.begin_write().await?;
        let recorded = match parsed {
            Err(rejection) => {
                let outcome = DeliveryOutcome::rejected(rejection);
                let delivery_id = insert_delivery(&mut *tx, &delivery, &outcome).await?;
                Recorded::Rejected { delivery_id }
            }
            Ok(notification) => {
                let conversation_id = notification.event.conversation_id.as_str();
                lock_call(&mut *tx, conversation_id).await?;
                let new_event = insert_event(&mut *tx, notification, delivery.received_at).await?;
                let (result, event_id) = match new_event {
                    Some(id) => (DeliveryResult::Accepted, id),
                    None => {
                        let id =
                            event_id(&mut *tx, conversation_id, &notification.content_hash).await?;
                        (DeliveryResult::Duplicate, id)
                    }
                };
                let outcome = DeliveryOutcome::stored(result, conversation_id, event_id);
                let delivery_id = insert_delivery(&mut *tx, &delivery, &outcome).await?;
                if new_event.is_some() {
                    refold_call(&mut tx, conversation_id).await?;
                    Recorded::Accepted {
                        delivery_id,
                        event_id,
                    }
                } else {
                    Recorded::Duplicate {
                        delivery_id,
                        event_id,
                    }
                }
            }
        };
        tx.commit().await?;
        Ok(recorded)
    }

    /// The call record and its events in received order.
    #[tracing::instrument(name = "postgres.call", skip(self))]
    pub async fn call(&self, conversation_id: &str) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        // One snapshot for the record and its events.
        let mut tx = self
            .pool
            .begin_with("begin transaction isolation level repeatable read, read only")
            .await?;
        let Some(call) = select_call(&mut *tx, conversation_id).await? else {
            return Ok(None);
        };
        let events = select_events(&mut *tx, conversation_id, Planned::Cached).await?;
        tx.commit().await?;
        let events = events
            .into_iter()
            .map(StoredEvent::try_from)
            .collect::<Result<_>>()?;
        Ok(Some((Call::try_from(call)?, events)))
    }

    /// One entry of the delivery log.
    #[tracing::instrument(name = "postgres.delivery", skip(self))]
    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        let row: Option<DeliveryRow> = sqlx::query_as(
            "select id, received_at, content_type, body, result, error, errors, conversation_id,
                    event_id, spooled_at
             from deliveries
             where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Delivery::try_from).transpose()
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writes.close().await;
    }
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A connection handed out again within `PING_IF_IDLE_FOR` is used without a
        // ping: under load the group-commit writer takes one for every batch, and the
        // ping was a round trip to a busy server each time (README, "Ingest
        // throughput"). One idle for longer — as after a server restart — is pinged,
        // and replaced if it is dead.
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Waits until no other transaction, in this or another calltrail instance, is writing
/// this call, and keeps others waiting until this transaction ends. Without it, two events
/// of one call committed at the same time could each fold the call without the other.
async fn lock_call(db: impl PgExecutor<'_>, conversation_id: &str) -> Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(conversation_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Inserts the event unless the same content is stored for this call; `None` if it is.
async fn insert_event(
    db: impl PgExecutor<'_>,
    notification: &Notification,
    received_at: DateTime<Utc>,
) -> Result<Option<i64>> {
    let event = &notification.event;
    let id = sqlx::query_scalar(
        "insert into events (conversation_id, content_hash, status, reason_code, reason_code_raw,
                             reason, sip_code, sip_reason, amd_mode, amd_result, duration_s,
                             connect_time, disconnect_time, warnings, payload, received_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         on conflict on constraint events_one_per_content do nothing
         returning id",
    )
    .bind(&event.conversation_id)
    .bind(&notification.content_hash)
    .bind(&event.status)
    .bind(&event.reason_code)
    .bind(&event.reason_code_raw)
    .bind(&event.reason)
    .bind(sip_code_to_column(event.sip_code))
    .bind(&event.sip_reason)
    .bind(event.amd_mode.map(|mode| mode.as_str()))
    .bind(event.amd_result.map(|result| result.as_str()))
    .bind(event.duration_s)
    .bind(event.connect_time)
    .bind(event.disconnect_time)
    .bind(Json(&event.warnings))
    .bind(Json(&notification.payload))
    .bind(received_at)
    .fetch_optional(db)
    .await?;
    Ok(id)
}

/// The id of the stored event with this content.
async fn event_id(
    db: impl PgExecutor<'_>,
    conversation_id: &str,
    content_hash: &str,
) -> Result<i64> {
    let id = sqlx::query_scalar(
        "select id from events where conversation_id = $1 and content_hash = $2",
    )
    .bind(conversation_id)
    .bind(content_hash)
    .fetch_one(db)
    .await?;
    Ok(id)
}

async fn insert_delivery(
    db: impl PgExecutor<'_>,
    delivery: &NewDelivery<'_>,
    outcome: &DeliveryOutcome<'_>,
) -> Result<i64> {
    let id = sqlx::query_scalar(
        "insert into deliveries (received_at, content_type, body, result, error, errors,
                                 conversation_id, event_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         returning id",
    )
    .bind(delivery.received_at)
    .bind(delivery.content_type)
    .bind(delivery.body)
    .bind(outcome.result.as_str())
    .bind(&outcome.error)
    .bind(outcome.errors)
    .bind(outcome.conversation_id)
    .bind(outcome.event_id)
    .fetch_one(db)
    .await?;
    Ok(id)
}

/// Folds all events of the call again and writes the result over its record.
async fn refold_call(db: &mut PgConnection, conversation_id: &str) -> Result<()> {
    let events = select_events(&mut *db, conversation_id, Planned::PerRun)
        .await?
        .into_iter()
        .map(|row| StoredEvent::try_from(row).map(|stored| stored.recorded))
        .collect::<Result<Vec<RecordedEvent>>>()?;
    let call = call::fold(&events)
        .ok_or_else(|| StoreError::Corrupt(format!("call {conversation_id:?} has no events")))?;
    write::upsert_calls(db, std::slice::from_ref(&call)).await
}

/// Whether a statement's plan may be cached on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planned {
    Cached,
    /// Planned at each run: the statement is also run outside write transactions, where a
    /// cached plan may have been made with sequential scans allowed (see [`BEGIN_WRITE`]).
    PerRun,
}

async fn select_events(
    db: impl PgExecutor<'_>,
    conversation_id: &str,
    planned: Planned,
) -> Result<Vec<EventRow>> {
    let rows = sqlx::query_as(
        "select id, conversation_id, content_hash, status, reason_code, reason_code_raw, reason,
                sip_code, sip_reason, amd_mode, amd_result, duration_s, connect_time,
                disconnect_time, warnings, payload, received_at
         from events
         where conversation_id = $1
         order by received_at, id",
    )
    .bind(conversation_id)
    .persistent(planned == Planned::Cached)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

async fn select_call(db: impl PgExecutor<'_>, conversation_id: &str) -> Result<Option<CallRow>> {
    let row = sqlx::query_as(
        "select conversation_id, state, status, outcome, reason_code, reason, sip_code,
                sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                occurred_at, first_seen_at, last_seen_at, event_count
         from calls
         where conversation_id = $1",
    )
    .bind(conversation_id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}
