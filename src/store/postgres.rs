//! The PostgreSQL backend, the production store: native `timestamptz`, `jsonb`, `bytea`.
//!
//! Several calltrail instances may share one database. Writes of one call are serialized
//! by a transaction-scoped advisory lock on its conversation id (see [`lock_call`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgExecutor, PgPool, PgPoolOptions};

use super::{Result, StoreError};

mod statements;
mod write;

pub(super) use write::upsert_calls;

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
/// a statement also run outside these transactions is planned at each run,
/// `Sql::planned_per_run`.) (Planning each batch's statements anew instead cost a
/// quarter of the throughput: docs/design.md, "PostgreSQL: two round trips per batch".)
pub(super) const BEGIN_WRITE: &str = "begin; set local enable_seqscan = off";

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
    pub(super) pool: PgPool,
    /// Connections for the group-commit writers' statements that run outside a
    /// transaction (`write::record_batch`): their sessions plan no sequential scan, for the
    /// reason [`BEGIN_WRITE`] gives.
    writes: PgPool,
}

impl PgStore {
    /// Prepares the pools for `url` (`postgres://…`) without connecting.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(StoreError::BadUrl)?;
        let writes = pool_options(super::MAX_WRITERS as u32)
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
        Ok(())
    }

    /// Answers when the database does.
    #[tracing::instrument(name = "postgres.ping", skip_all)]
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
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
        // ping was a round trip to a busy server each time (docs/design.md, "PostgreSQL:
        // two round trips per batch"). One idle for longer — as after a server restart — is pinged,
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
pub(super) async fn lock_call(db: impl PgExecutor<'_>, conversation_id: &str) -> Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(conversation_id)
        .execute(db)
        .await?;
    Ok(())
}

/// [`lock_call`] for several calls at once, sorted by lock key as the group-commit
/// writers take them (`statements::WRITE_BATCH`).
pub(super) async fn lock_calls(db: impl PgExecutor<'_>, conversation_ids: &[String]) -> Result<()> {
    sqlx::query(
        "select count(pg_advisory_xact_lock(keys.key))
         from (select distinct hashtextextended(id, 0) as key
               from unnest($1::text[]) as id
               order by key) as keys",
    )
    .bind(conversation_ids)
    .execute(db)
    .await?;
    Ok(())
}
