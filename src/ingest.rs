//! The receiving pipeline shared by `POST /notify` and `calltrail import`: parse and
//! normalize (pure), then record (I/O) — through the group-commit writer
//! ([`group_commit`]) when there is one, else in a transaction of its own.

mod group_commit;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use group_commit::{GroupCommitSettings, Writer};

use crate::metrics::Metrics;
use crate::notification::{Format, NormalizeSettings, Notification, Rejection};
use crate::store::{self, NewDelivery, Recorded, Store, StoreError};

/// The most group-commit writers: each holds a database connection while it writes.
pub use crate::store::MAX_WRITERS;

/// How many group-commit writers `store` gets unless configured: two on PostgreSQL, where
/// one batch is worked on while the other commits; one on SQLite, which admits one writer
/// at a time, so that a second one only waits for the lock (docs/design.md).
pub fn default_writers(store: &Store) -> usize {
    match store {
        Store::Postgres(_) => 2,
        Store::Sqlite(_) => 1,
    }
}

/// What became of one body.
#[derive(Debug)]
pub struct Ingested {
    /// What the store did.
    pub recorded: Recorded,
    /// The parse result the store acted on.
    pub parsed: Result<Notification, Rejection>,
}

/// Why a body was not recorded. Nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The group-commit queue is full: calltrail is taking bodies faster than the database
    /// commits them. Retrying shortly may succeed.
    #[error("the write queue is full")]
    QueueFull,
    /// The writer has stopped (calltrail is shutting down).
    #[error("the writer has stopped")]
    Stopped,
    /// The store failed; every body of the batch gets the same error.
    #[error("the store failed")]
    Store(#[source] Arc<StoreError>),
}

/// Parses, normalizes and durably records notification bodies.
#[derive(Debug, Clone)]
pub struct Ingest {
    store: Store,
    format: Format,
    settings: NormalizeSettings,
    queue: Option<group_commit::Queue>,
}

impl Ingest {
    /// A pipeline for one gateway format that records each body in a transaction of its
    /// own.
    pub fn new(store: Store, format: Format, settings: NormalizeSettings) -> Self {
        Self {
            store,
            format,
            settings,
            queue: None,
        }
    }

    /// A pipeline whose [`Ingest::submit`] goes through one group-commit writer, which
    /// this starts and which records its batches in `metrics`. Keep the [`Writer`] to wait
    /// for it to drain on shutdown: it stops once every clone of this pipeline is dropped.
    pub fn with_group_commit(
        store: Store,
        format: Format,
        settings: NormalizeSettings,
        group_commit: GroupCommitSettings,
        metrics: Metrics,
    ) -> (Self, Writer) {
        let (queue, writer) = group_commit::start(store.clone(), group_commit, metrics);
        let ingest = Self {
            queue: Some(queue),
            ..Self::new(store, format, settings)
        };
        (ingest, writer)
    }

    /// The gateway format this pipeline reads.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Bodies waiting for the group-commit writer and how many may wait; `None` without one.
    pub fn queue_depth(&self) -> Option<(usize, usize)> {
        self.queue.as_ref().map(group_commit::Queue::depth)
    }

    /// The same pipeline (store, settings, group-commit writer) for another gateway format.
    pub fn with_format(&self, format: Format) -> Self {
        Self {
            format,
            ..self.clone()
        }
    }

    /// Records one body, received now, in a transaction of its own. Returns after the
    /// commit.
    #[tracing::instrument(skip_all, fields(bytes = body.len()))]
    pub async fn ingest(&self, body: &[u8], content_type: Option<&str>) -> store::Result<Ingested> {
        let received_at = Utc::now();
        let parsed = self.format.parse(body, &self.settings);
        let delivery = NewDelivery {
            received_at,
            source: self.format,
            content_type,
            body,
        };
        let recorded = self.store.record(delivery, &parsed).await?;
        Ok(Ingested { recorded, parsed })
    }

    /// Records one body, received now, together with whatever other bodies are waiting
    /// (group commit) when this pipeline has a writer, else as [`Ingest::ingest`]. Returns
    /// after the commit that holds it; a full queue is refused at once.
    pub async fn submit(
        &self,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<Ingested, IngestError> {
        self.submit_received(Utc::now(), body, content_type).await
    }

    /// [`Ingest::submit`] for a body received at `received_at`.
    #[tracing::instrument(skip_all, fields(bytes = body.len()))]
    pub async fn submit_received(
        &self,
        received_at: DateTime<Utc>,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<Ingested, IngestError> {
        let parsed = self.parse(&body);
        let Some(queue) = &self.queue else {
            let delivery = NewDelivery {
                received_at,
                source: self.format,
                content_type,
                body: &body,
            };
            let recorded = self
                .store
                .record(delivery, &parsed)
                .await
                .map_err(|err| IngestError::Store(Arc::new(err)))?;
            return Ok(Ingested { recorded, parsed });
        };
        queue
            .submit(received_at, self.format, content_type, body, parsed)
            .await
    }

    /// Records bodies received earlier (replayed from the spool) in one transaction, each
    /// with its own received time, through the same parsing, deduplication and folding as
    /// [`Ingest::submit`], each read by its own source's normalizer. Returns after the
    /// commit is on disk, in the order given; the calls it ended are counted in `metrics`,
    /// as the group-commit writer counts them.
    #[tracing::instrument(skip_all, fields(bodies = deliveries.len()))]
    pub async fn record_received(
        &self,
        deliveries: &[NewDelivery<'_>],
        metrics: &Metrics,
    ) -> store::Result<Vec<Recorded>> {
        let parsed: Vec<_> = deliveries
            .iter()
            .map(|d| d.source.parse(d.body, &self.settings))
            .collect();
        let pending: Vec<store::Pending<'_>> = deliveries
            .iter()
            .zip(&parsed)
            .map(|(delivery, parsed)| store::Pending {
                delivery: *delivery,
                parsed,
            })
            .collect();
        let committed = self.store.commit_batch(&pending).await?;
        let ended = committed.ended().to_vec();
        let recorded = committed.durable().await?;
        group_commit::count_ended(metrics, &ended);
        Ok(recorded)
    }

    /// What this pipeline makes of a body (pure).
    pub fn parse(&self, body: &[u8]) -> Result<Notification, Rejection> {
        self.format.parse(body, &self.settings)
    }
}
