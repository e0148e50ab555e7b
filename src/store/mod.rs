//! The storage boundary: one [`Store`] with a SQLite and a PostgreSQL implementation.
//!
//! Each backend keeps its SQL beside it and its migrations in `migrations/<backend>/`.
//! Everything a backend returns is already in domain types; nothing above this module
//! sees `sqlx`.

mod batch;
pub mod columns;
mod db;
pub mod dialouts;
mod error;
mod page;
mod postgres;
pub mod query;
mod reads;
mod recount;
mod reprocess;
mod retention;
mod rollup;
mod rows;
mod spooled;
pub mod sql;
mod sqlite;
mod statistics;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::call::RecordedEvent;
use crate::notification::{FieldError, Format, Notification, Rejection};

pub use batch::{Committed, Pending};
pub use error::StoreError;
pub use retention::Purged;
pub use spooled::StoredBody;

/// The most group-commit writers one store serves at once: PostgreSQL keeps a connection
/// for each.
pub const MAX_WRITERS: usize = 16;

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A connection pool to one of the supported databases.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// What arrived at `/notify`, before anything was decided about it.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub received_at: DateTime<Utc>,
    /// The source whose endpoint received it, whose normalizer reads it.
    pub source: Format,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// What recording a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new event was stored and its call re-folded.
    Accepted { delivery_id: i64, event_id: i64 },
    /// The same notification had been stored before; `event_id` is the first one's.
    Duplicate { delivery_id: i64, event_id: i64 },
    /// The body could not be used; it is kept in the delivery log with its errors.
    Rejected { delivery_id: i64 },
}

/// The outcome of a delivery as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    Accepted,
    Duplicate,
    Rejected,
}

impl DeliveryResult {
    /// The storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::Accepted => "accepted",
            DeliveryResult::Duplicate => "duplicate",
            DeliveryResult::Rejected => "rejected",
        }
    }

    /// Reads the storage spelling back.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Accepted, Self::Duplicate, Self::Rejected]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// One entry of the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    /// The source whose endpoint received it, whose normalizer reads it (again).
    pub source: Format,
    pub content_type: Option<String>,
    /// The request body, byte for byte.
    pub body: Vec<u8>,
    pub result: DeliveryResult,
    /// For a rejected body: why (the problem's `detail`).
    pub error: Option<String>,
    /// For a rejected JSON object: the fields that failed.
    pub errors: Vec<FieldError>,
    pub conversation_id: Option<String>,
    pub event_id: Option<i64>,
    /// When it was synced to the spool, for a delivery replayed from it (the database was
    /// away when it arrived).
    pub spooled_at: Option<DateTime<Utc>>,
}

/// A stored event with the JSON object it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub recorded: RecordedEvent,
    pub payload: serde_json::Value,
}

impl Store {
    /// Creates a pool for `url` (`sqlite://PATH` or `postgres://…`) without connecting yet,
    /// so that the service can start while its database is still down.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self> {
        if url.starts_with("sqlite:") {
            sqlite::SqliteStore::connect_lazy(url, max_connections).map(Store::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            postgres::PgStore::connect_lazy(url, max_connections).map(Store::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Which backend this is, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.migrate().await?,
            Store::Postgres(s) => s.migrate().await?,
        }
        self.count_calls_if_uncounted().await
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.ping().await,
        }
    }

    /// Stores a delivery and, for a usable notification, its event and the re-folded call,
    /// all in one transaction: a batch of one through the group-commit writer. Returns only
    /// once the commit is on disk.
    pub async fn record(
        &self,
        delivery: NewDelivery<'_>,
        parsed: &Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        let mut recorded = self.record_batch(&[Pending { delivery, parsed }]).await?;
        recorded
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a batch of one was answered with nothing".into()))
    }

    /// Records a batch of deliveries as [`Store::record`] records one, all in one
    /// transaction (group commit), and answers for each in batch order. Copies of one
    /// notification within the batch are one event, the first copy accepted and the others
    /// duplicates, as if they had been recorded one after the other. Returns only once the
    /// commit is on disk; if the commit fails, none of the batch is stored (if only the sync
    /// after it fails, [`StoreError::Sync`], it is stored but not known to be on disk).
    pub async fn record_batch(&self, pending: &[Pending<'_>]) -> Result<Vec<Recorded>> {
        self.commit_batch(pending).await?.durable().await
    }

    /// [`Store::record_batch`] in two steps: returns once the batch is committed, and
    /// [`Committed::durable`] once the commit is on disk, when the answers may be given.
    /// A group-commit writer takes its next batch in between: on SQLite, where one writer
    /// thread records every batch, the disk then syncs one batch while the next is written.
    pub async fn commit_batch(&self, pending: &[Pending<'_>]) -> Result<Committed> {
        match self {
            Store::Sqlite(s) => s.commit_batch(pending).await,
            Store::Postgres(s) => s.record_batch(pending).await,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}
