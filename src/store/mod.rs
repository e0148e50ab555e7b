//! The storage boundary: one [`Store`] with a SQLite and a PostgreSQL implementation.
//!
//! Each backend keeps its SQL beside it and its migrations in `migrations/<backend>/`.
//! Everything a backend returns is already in domain types; nothing above this module
//! sees `sqlx`.

mod batch;
pub mod dialouts;
mod error;
mod postgres;
pub mod query;
mod rollup;
mod rows;
mod sqlite;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::call::{Call, RecordedEvent};
use crate::dialout::Dialout;
use crate::notification::{FieldError, Notification, Rejection};
use crate::stats::Aggregates;
use dialouts::{DialoutCursor, DialoutFilter, DialoutFinish, Inserted, NewDialout};
use query::{CallCursor, CallFilter, DeliveryCursor, DeliveryFilter, Page};

pub use batch::{Committed, Pending};
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
            Store::Postgres(s) => s.record_batch(pending).await.map(Committed::on_disk),
        }
    }

    /// The call record and its events in received order; `None` for an unknown id.
    /// The call carries the dial-out it came from, if any (see [`Store::attach_dialouts`]).
    pub async fn call(&self, conversation_id: &str) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        let found = match self {
            Store::Sqlite(s) => s.call(conversation_id).await,
            Store::Postgres(s) => s.call(conversation_id).await,
        }?;
        let Some((call, events)) = found else {
            return Ok(None);
        };
        let mut calls = [call];
        self.attach_dialouts(&mut calls).await?;
        let [call] = calls;
        Ok(Some((call, events)))
    }

    /// One entry of the delivery log.
    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        match self {
            Store::Sqlite(s) => s.delivery(id).await,
            Store::Postgres(s) => s.delivery(id).await,
        }
    }

    /// A page of calls, newest `occurred_at` first.
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        after: Option<&CallCursor>,
        limit: u32,
    ) -> Result<Page<Call, CallCursor>> {
        let mut page = match self {
            Store::Sqlite(s) => s.list_calls(filter, after, limit).await,
            Store::Postgres(s) => s.list_calls(filter, after, limit).await,
        }?;
        self.attach_dialouts(&mut page.items).await?;
        Ok(page)
    }

    /// The aggregates behind `GET /v1/stats`; quarter-hour slots only when `with_slots`.
    pub async fn aggregates(&self, filter: &CallFilter, with_slots: bool) -> Result<Aggregates> {
        match self {
            Store::Sqlite(s) => s.aggregates(filter, with_slots).await,
            Store::Postgres(s) => s.aggregates(filter, with_slots).await,
        }
    }

    /// A page of the delivery log, newest first.
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        after: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Page<Delivery, DeliveryCursor>> {
        match self {
            Store::Sqlite(s) => s.list_deliveries(filter, after, limit).await,
            Store::Postgres(s) => s.list_deliveries(filter, after, limit).await,
        }
    }

    /// Applies a new parse of a stored delivery, as if it had arrived now under today's
    /// rules: its event is stored or updated in place, its call re-folded, and its outcome
    /// rewritten, in one transaction.
    pub async fn reprocess(
        &self,
        delivery: &Delivery,
        parsed: &Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        match self {
            Store::Sqlite(s) => s.reprocess(delivery, parsed).await,
            Store::Postgres(s) => s.reprocess(delivery, parsed).await,
        }
    }

    /// `(id, received_at, body)` of the deliveries received at any of `times`: how the
    /// spool's replay recognizes a body that is already stored.
    pub async fn deliveries_received_at(
        &self,
        times: &[DateTime<Utc>],
    ) -> Result<Vec<(i64, DateTime<Utc>, Vec<u8>)>> {
        match self {
            Store::Sqlite(s) => s.deliveries_received_at(times).await,
            Store::Postgres(s) => s.deliveries_received_at(times).await,
        }
    }

    /// Sets `spooled_at` of deliveries replayed from the spool: `(delivery id, spooled at)`.
    pub async fn mark_spooled(&self, marks: &[(i64, DateTime<Utc>)]) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        match self {
            Store::Sqlite(s) => s.mark_spooled(marks).await,
            Store::Postgres(s) => s.mark_spooled(marks).await,
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

/// Dial-outs (`POST /v1/dialouts`) and their correlation with calls.
impl Store {
    /// Stores a pending dial-out before it is sent, or finds the one stored under the same
    /// idempotency key (a unique constraint: concurrent requests with one key make one row).
    pub async fn insert_dialout(&self, new: &NewDialout<'_>) -> Result<Inserted> {
        match self {
            Store::Sqlite(s) => s.insert_dialout(new).await,
            Store::Postgres(s) => s.insert_dialout(new).await,
        }
    }

    /// Records the gateway's answer to dial-out `id`, or its failure.
    pub async fn finish_dialout(&self, id: i64, finish: &DialoutFinish) -> Result<Dialout> {
        match self {
            Store::Sqlite(s) => s.finish_dialout(id, finish).await,
            Store::Postgres(s) => s.finish_dialout(id, finish).await,
        }
    }

    /// One dial-out; `None` for an unknown id.
    pub async fn dialout(&self, id: i64) -> Result<Option<Dialout>> {
        match self {
            Store::Sqlite(s) => s.dialout(id).await,
            Store::Postgres(s) => s.dialout(id).await,
        }
    }

    /// A page of dial-outs, newest `requested_at` first.
    pub async fn list_dialouts(
        &self,
        filter: &DialoutFilter,
        after: Option<&DialoutCursor>,
        limit: u32,
    ) -> Result<Page<Dialout, DialoutCursor>> {
        match self {
            Store::Sqlite(s) => s.list_dialouts(filter, after, limit).await,
            Store::Postgres(s) => s.list_dialouts(filter, after, limit).await,
        }
    }

    /// Sets each call's `dialout`: the dial-out whose `callId` (else `sid`) is the call's
    /// conversation id. Done when calls are read, so a call is correlated whichever of its
    /// notifications and its dial-out was stored first.
    pub async fn attach_dialouts(&self, calls: &mut [Call]) -> Result<()> {
        if calls.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = calls.iter().map(|c| c.conversation_id.as_str()).collect();
        let found = match self {
            Store::Sqlite(s) => s.dialouts_of_calls(&ids).await,
            Store::Postgres(s) => s.dialouts_of_calls(&ids).await,
        }?;
        let mut links = dialouts::link_map(&ids, &found);
        for call in calls.iter_mut() {
            call.dialout = links.remove(&call.conversation_id);
        }
        Ok(())
    }
}

/// The outcome a reprocessed delivery gets when its event `event_id` is stored: accepted if
/// it was the delivery that stored it, else a duplicate of it.
fn reprocessed_result(delivery: &Delivery, event_id: i64) -> DeliveryResult {
    if delivery.result == DeliveryResult::Accepted && delivery.event_id == Some(event_id) {
        DeliveryResult::Accepted
    } else {
        DeliveryResult::Duplicate
    }
}
