//! The storage boundary: one [`Store`] with a SQLite and a PostgreSQL implementation.
//!
//! Each backend keeps its SQL beside it and its migrations in `migrations/<backend>/`.
//! Everything a backend returns is already in domain types; nothing above this module
//! sees `sqlx`.

mod error;
mod postgres;
mod rows;
mod sqlite;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::call::{Call, RecordedEvent};
use crate::notification::{FieldError, Notification, Rejection};

pub use error::StoreError;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
            Store::Sqlite(s) => s.migrate().await,
            Store::Postgres(s) => s.migrate().await,
        }
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.ping().await,
        }
    }

    /// Stores a delivery and, for a usable notification, its event and the re-folded call,
    /// all in one transaction. Returns only after the commit.
    pub async fn record(
        &self,
        delivery: NewDelivery<'_>,
        parsed: &Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        match self {
            Store::Sqlite(s) => s.record(delivery, parsed).await,
            Store::Postgres(s) => s.record(delivery, parsed).await,
        }
    }

    /// The call record and its events in received order; `None` for an unknown id.
    pub async fn call(&self, conversation_id: &str) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        match self {
            Store::Sqlite(s) => s.call(conversation_id).await,
            Store::Postgres(s) => s.call(conversation_id).await,
        }
    }

    /// One entry of the delivery log.
    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        match self {
            Store::Sqlite(s) => s.delivery(id).await,
            Store::Postgres(s) => s.delivery(id).await,
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
