//! The SQLite backend: one file, write-ahead log, every commit synced to disk.
//!
//! Timestamps are written as fixed-width UTC text (see [`utc_text`]) so that text order is
//! time order; JSON is text; bodies are blobs.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteExecutor, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::types::Json;

use super::rows::{CallRow, DeliveryOutcome, DeliveryRow, EventRow, sip_code_to_column};
use super::{
    Committed, Delivery, DeliveryResult, NewDelivery, Pending, Recorded, Result, StoreError,
    StoredEvent,
};
use crate::call::{self, Call, RecordedEvent};
use crate::notification::{Notification, Rejection};

use super::query;

mod dialouts;
mod reads;
mod spooled;
mod write;
mod writer;

use writer::Writer;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another writer's transaction before giving up (as
/// [`StoreError::Unavailable`]).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection before giving up.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A pool of connections to one SQLite file, and the group-commit writer's thread.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Arc<Writer>,
}

impl SqliteStore {
    /// Prepares a pool for `url` (`sqlite://PATH`); the file is created on first use.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::BadUrl)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A 200 promises the delivery is on disk: sync every commit, not only checkpoints.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Statement journals and sorts in memory, not in temporary files.
            .pragma("temp_store", "memory");
        let vfs = writable_file(url, &options)?;
        let writer = Writer::start(options.get_filename().to_owned(), vfs)
            .map(Arc::new)
            .map_err(StoreError::WriterThread)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before each use: a connection to a local file does not go stale, and
            // the ping was a hop to the connection's thread for every batch.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        Ok(Self { pool, writer })
    }

    /// Records a batch of deliveries in one transaction, on the writer's thread (see
    /// [`writer`]); the answers are in batch order, to be given once
    /// [`Committed::durable`] says the commit is on disk.
    #[tracing::instrument(name = "sqlite.commit_batch", skip_all, fields(size = pending.len()))]
    pub async fn commit_batch(&self, pending: &[Pending<'_>]) -> Result<Committed> {
        if pending.is_empty() {
            return Ok(Committed::on_disk(Vec::new()));
        }
        self.writer.commit_batch(pending).await
    }

    /// Applies the migrations in `migrations/sqlite/`.
    #[tracing::instrument(name = "sqlite.migrate", skip_all)]
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
        let mut tx = self.pool.begin_with("begin immediate").await?;
        let wrong: bool = sqlx::query_scalar(query::COUNTS_WRONG)
            .fetch_one(&mut *tx)
            .await?;
        if wrong {
            for statement in query::rebuild_counts(query::Dialect::Sqlite) {
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
    #[tracing::instrument(name = "sqlite.ping", skip_all)]
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Stores the delivery and, for a notification, its event and re-folded call, in one
    /// transaction.
    #[tracing::instrument(name = "sqlite.record", skip_all)]
    pub async fn record(
        &self,
        delivery: NewDelivery<'_>,
        parsed: &Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        // `begin immediate` takes the write lock up front: a writer waiting for another one
        // waits in busy_timeout, instead of failing when a read lock cannot be upgraded.
        let mut tx = self.pool.begin_with("begin immediate").await?;
        let recorded = match parsed {
            Err(rejection) => {
                let outcome = DeliveryOutcome::rejected(rejection);
                let delivery_id = insert_delivery(&mut *tx, &delivery, &outcome).await?;
                Recorded::Rejected { delivery_id }
            }
            Ok(notification) => {
                let conversation_id = notification.event.conversation_id.as_str();
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
    #[tracing::instrument(name = "sqlite.call", skip(self))]
    pub async fn call(&self, conversation_id: &str) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        // One read transaction: the record and its events come from the same snapshot.
        let mut tx = self.pool.begin().await?;
        let Some(call) = select_call(&mut *tx, conversation_id).await? else {
            return Ok(None);
        };
        let events = select_events(&mut *tx, conversation_id).await?;
        tx.commit().await?;
        let events = events
            .into_iter()
            .map(StoredEvent::try_from)
            .collect::<Result<_>>()?;
        Ok(Some((Call::try_from(call)?, events)))
    }

    /// One entry of the delivery log.
    #[tracing::instrument(name = "sqlite.delivery", skip(self))]
    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        let row: Option<DeliveryRow> = sqlx::query_as(
            "select id, received_at, content_type, body, result, error, errors, conversation_id,
                    event_id, spooled_at
             from deliveries
             where id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Delivery::try_from).transpose()
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Checks that `url`, parsed as `options`, names a file calltrail can write, and returns
/// the VFS it names, which the writer's connection opens the file with too. The settings
/// are read from the URL's query as the driver reads them (form-encoded pairs); a URL
/// that the pool and the writer could read differently is refused.
fn writable_file(url: &str, options: &SqliteConnectOptions) -> Result<Option<String>> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let mut settings = std::collections::HashMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        if settings.insert(key.clone(), value).is_some() {
            return Err(StoreError::AmbiguousUrl(format!(
                "it gives `{key}` more than once"
            )));
        }
    }
    let setting = |key: &str| settings.get(key).map(String::as_str);
    let (mode, vfs) = (setting("mode"), setting("vfs"));
    let filename = options.get_filename().to_string_lossy();
    // A 200 promises the delivery is on disk.
    if filename.is_empty()
        || filename == ":memory:"
        || filename.starts_with("file:sqlx-in-memory")
        || mode == Some("memory")
        || vfs == Some("memdb")
    {
        return Err(StoreError::InMemory);
    }
    if filename.starts_with("file:") {
        // SQLite would read the name as a URI of its own, and the driver does not.
        return Err(StoreError::AmbiguousUrl(
            "its file name starts with `file:`; name the file by its path".into(),
        ));
    }
    if mode == Some("ro") || matches!(setting("immutable"), Some("true" | "1")) {
        return Err(StoreError::ReadOnly);
    }
    Ok(vfs.map(str::to_owned))
}

/// The one way a timestamp is written to SQLite: UTC, microseconds, fixed width
/// (`2023-05-08T11:32:49.000000Z`), so that comparing the text compares the instants.
fn utc_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Inserts an event unless the same content is stored for its call, returning its id (no
/// row if it is stored). Both writers bind the same sixteen values.
const INSERT_EVENT: &str = "insert into events (conversation_id, content_hash, status,
        reason_code, reason_code_raw, reason, sip_code, sip_reason, amd_mode, amd_result,
        duration_s, connect_time, disconnect_time, warnings, payload, received_at)
    values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
    on conflict (conversation_id, content_hash) do nothing
    returning id";

/// Inserts a delivery, returning its id.
const INSERT_DELIVERY: &str = "insert into deliveries (received_at, content_type, body, result,
        error, errors, conversation_id, event_id)
    values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    returning id";

/// Inserts the event unless the same content is stored for this call; `None` if it is.
async fn insert_event(
    db: impl SqliteExecutor<'_>,
    notification: &Notification,
    received_at: DateTime<Utc>,
) -> Result<Option<i64>> {
    let event = &notification.event;
    let id = sqlx::query_scalar(INSERT_EVENT)
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
        .bind(event.connect_time.map(utc_text))
        .bind(event.disconnect_time.map(utc_text))
        .bind(Json(&event.warnings))
        .bind(Json(&notification.payload))
        .bind(utc_text(received_at))
        .fetch_optional(db)
        .await?;
    Ok(id)
}

/// The id of the stored event with this content.
async fn event_id(
    db: impl SqliteExecutor<'_>,
    conversation_id: &str,
    content_hash: &str,
) -> Result<i64> {
    let id = sqlx::query_scalar(
        "select id from events where conversation_id = ?1 and content_hash = ?2",
    )
    .bind(conversation_id)
    .bind(content_hash)
    .fetch_one(db)
    .await?;
    Ok(id)
}

async fn insert_delivery(
    db: impl SqliteExecutor<'_>,
    delivery: &NewDelivery<'_>,
    outcome: &DeliveryOutcome<'_>,
) -> Result<i64> {
    let id = sqlx::query_scalar(INSERT_DELIVERY)
        .bind(utc_text(delivery.received_at))
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
async fn refold_call(db: &mut SqliteConnection, conversation_id: &str) -> Result<()> {
    let events = select_events(&mut *db, conversation_id)
        .await?
        .into_iter()
        .map(|row| StoredEvent::try_from(row).map(|stored| stored.recorded))
        .collect::<Result<Vec<RecordedEvent>>>()?;
    let call = call::fold(&events)
        .ok_or_else(|| StoreError::Corrupt(format!("call {conversation_id:?} has no events")))?;
    write::upsert_calls(db, std::slice::from_ref(&call)).await
}

async fn select_events(
    db: impl SqliteExecutor<'_>,
    conversation_id: &str,
) -> Result<Vec<EventRow>> {
    let rows = sqlx::query_as(
        "select id, conversation_id, content_hash, status, reason_code, reason_code_raw, reason,
                sip_code, sip_reason, amd_mode, amd_result, duration_s, connect_time,
                disconnect_time, warnings, payload, received_at
         from events
         where conversation_id = ?1
         order by received_at, id",
    )
    .bind(conversation_id)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

async fn select_call(
    db: impl SqliteExecutor<'_>,
    conversation_id: &str,
) -> Result<Option<CallRow>> {
    let row = sqlx::query_as(
        "select conversation_id, state, status, outcome, reason_code, reason, sip_code,
                sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                occurred_at, first_seen_at, last_seen_at, event_count
         from calls
         where conversation_id = ?1",
    )
    .bind(conversation_id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_in_memory_database_is_refused_with_the_reason() {
        for url in [
            "sqlite://:memory:",
            "sqlite::memory:",
            "sqlite://calltrail.db?mode=memory",
            "sqlite://calltrail.db?vfs=memdb",
            "sqlite://",
        ] {
            let err = SqliteStore::connect_lazy(url, 1).unwrap_err();
            assert!(matches!(err, StoreError::InMemory), "{url}: {err:?}");
            assert!(err.to_string().contains("needs a file"), "{err}");
        }
    }

    #[test]
    fn a_url_the_pool_and_the_writer_could_read_differently_is_refused() {
        for url in [
            "sqlite://calltrail.db?mode=rwc&mode=memory",
            "sqlite://calltrail.db?vfs=unix&vfs=memdb",
            "sqlite://calltrail.db?immutable=0&immutable=1",
            "sqlite://file:calltrail.db",
            "sqlite://file:calltrail.db?vfs=unix",
        ] {
            let err = SqliteStore::connect_lazy(url, 1).unwrap_err();
            assert!(matches!(err, StoreError::AmbiguousUrl(_)), "{url}: {err:?}");
            assert!(err.to_string().starts_with("database.url"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_read_only_database_is_refused_with_the_reason() {
        for url in [
            "sqlite://calltrail.db?mode=ro",
            "sqlite://calltrail.db?immutable=true",
            "sqlite://calltrail.db?immutable=1",
        ] {
            let err = SqliteStore::connect_lazy(url, 1).unwrap_err();
            assert!(matches!(err, StoreError::ReadOnly), "{url}: {err:?}");
            assert!(err.to_string().contains("read-only"), "{err}");
        }
        for url in [
            "sqlite://calltrail.db",
            "sqlite://calltrail.db?mode=rwc",
            "sqlite://calltrail.db?immutable=false",
            "sqlite://calltrail.db?vfs=unix",
        ] {
            assert!(SqliteStore::connect_lazy(url, 1).is_ok(), "{url}");
        }
    }

    #[test]
    fn timestamps_are_fixed_width_utc_with_microseconds() {
        let at = Utc.with_ymd_and_hms(2023, 5, 8, 11, 32, 49).unwrap();
        assert_eq!(utc_text(at), "2023-05-08T11:32:49.000000Z");
        let at = at + chrono::TimeDelta::nanoseconds(1_234_567);
        assert_eq!(utc_text(at), "2023-05-08T11:32:49.001234Z");
    }
}
