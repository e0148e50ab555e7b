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
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Committed, Pending, Result, StoreError};

mod write;
mod writer;

pub(super) use write::upsert_calls;
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
    pub(super) pool: SqlitePool,
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
            return Ok(Committed::on_disk(Vec::new(), Vec::new()));
        }
        self.writer.commit_batch(pending).await
    }

    /// Applies the migrations in `migrations/sqlite/`.
    #[tracing::instrument(name = "sqlite.migrate", skip_all)]
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Answers when the database does.
    #[tracing::instrument(name = "sqlite.ping", skip_all)]
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
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
pub(super) fn utc_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
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
