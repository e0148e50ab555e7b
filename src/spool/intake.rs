//! Where `/notify` hands a body: to the store when it can commit promptly, else to the
//! spool (docs/design.md#the-spool).
//!
//! A body goes to the spool only when its store write did not happen, or is not known to
//! have happened: the store was not ready, the write failed as unavailable, the write queue
//! was full, or the commit took longer than `spool.commit_timeout_ms`. In the last case
//! the write goes on; the replay waits for it to end and then finds it in the store (same
//! received time, same bytes) instead of recording it a second time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::watch;

use super::file::{NewRecord, Spool, SpoolError};
use super::gate::{Appending, Gate, Route};
use crate::ingest::{Ingest, IngestError, Ingested};
use crate::metrics::{Metrics, SPOOL_WRITE_FAILURES};
use crate::notification::{Format, Notification, Rejection};

/// How long a notification waits for the store to become ready at startup when there is
/// no spool to take it.
const STARTUP_WAIT: Duration = Duration::from_secs(3);
/// The longest a notification waits at the gate the replay closed to take the last of the
/// backlog; after it, it is spooled behind the backlog.
const CLOSED_GATE_WAIT: Duration = Duration::from_millis(500);

/// What became of a body.
#[derive(Debug)]
pub enum Received {
    /// Committed to the store.
    Stored(Ingested),
    /// Synced to the spool, to be replayed into the store.
    Spooled {
        spool_id: i64,
        /// What replaying it will find (the parse is pure, so it is the same then).
        parsed: Result<Notification, Rejection>,
    },
}

/// Why a body was neither stored nor spooled. Nothing of it was kept.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Store(IngestError),
    #[error(transparent)]
    Spool(SpoolError),
    /// The store is not ready and there is no spool.
    #[error("the database is not ready")]
    NotReady,
}

/// The front of the receiving pipeline: the store, with the spool behind it.
#[derive(Debug, Clone)]
pub struct Intake {
    ingest: Ingest,
    spool: Option<Spool>,
    gate: Arc<Gate>,
    store_ready: watch::Receiver<bool>,
    commit_timeout: Duration,
    metrics: Metrics,
}

impl Intake {
    /// `spool`: `None` when `spool.enabled` is off. A spool left with records by an
    /// earlier run is drained before any new notification goes to the store. The spool's
    /// refusals and replays are counted in `metrics`.
    pub fn new(
        ingest: Ingest,
        spool: Option<Spool>,
        store_ready: watch::Receiver<bool>,
        commit_timeout: Duration,
        metrics: Metrics,
    ) -> Self {
        let gate = Arc::new(Gate::default());
        if spool.as_ref().is_some_and(|s| s.depth().records > 0) {
            gate.spooling_from_start();
        }
        Self {
            ingest,
            spool,
            gate,
            store_ready,
            commit_timeout,
            metrics,
        }
    }

    /// Commits `body`, received at `format`'s endpoint, to the store, or syncs it to the
    /// spool with its format; returns once it is durable.
    pub async fn receive(
        &self,
        format: Format,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<Received, IntakeError> {
        // Microseconds, as both stores keep them: the replay finds a write by this time.
        let received_at = Utc::now().trunc_subsecs(6);
        let ingest = self.ingest.with_format(format);
        let Some(spool) = &self.spool else {
            self.wait_ready().await?;
            return ingest
                .submit_received(received_at, body, content_type)
                .await
                .map(Received::Stored)
                .map_err(IntakeError::Store);
        };
        let mut may_wait = true;
        let direct = loop {
            let store_ready = *self.store_ready.borrow();
            match self.gate.route(store_ready, may_wait) {
                Route::Spool(appending) => {
                    return self
                        .spool_it(spool, appending, &ingest, received_at, body, content_type)
                        .await;
                }
                Route::Store(direct) => break direct,
                Route::Wait => {
                    let _ = tokio::time::timeout(CLOSED_GATE_WAIT, self.gate.reopened()).await;
                    may_wait = false;
                }
            }
        };
        let write = {
            let (ingest, body, content_type) = (
                ingest.clone(),
                body.clone(),
                content_type.map(str::to_owned),
            );
            let counted = self.gate.also_direct();
            tokio::spawn(async move {
                let _counted = counted;
                ingest
                    .submit_received(received_at, body, content_type.as_deref())
                    .await
            })
        };
        let failure = match tokio::time::timeout(self.commit_timeout, write).await {
            Ok(Ok(Ok(ingested))) => return Ok(Received::Stored(ingested)),
            Ok(Ok(Err(err))) if spoolable(&err) => err.to_string(),
            Ok(Ok(Err(err))) => return Err(IntakeError::Store(err)),
            Ok(Err(_panicked)) => return Err(IntakeError::Store(IngestError::Stopped)),
            Err(_) => format!(
                "the commit took longer than spool.commit_timeout_ms = {} ms",
                self.commit_timeout.as_millis()
            ),
        };
        tracing::debug!(reason = %failure, "spooling a notification the database did not take");
        let appending = self.gate.fall_back();
        let spooled = self
            .spool_it(spool, appending, &ingest, received_at, body, content_type)
            .await;
        // Counted until now so that the replay, which waits for every write to the store to
        // end, finds this record in the spool.
        drop(direct);
        spooled
    }

    async fn spool_it(
        &self,
        spool: &Spool,
        appending: Appending,
        ingest: &Ingest,
        received_at: DateTime<Utc>,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<Received, IntakeError> {
        let parsed = ingest.parse(&body);
        let record = NewRecord {
            received_at,
            source: ingest.format(),
            content_type: content_type.map(str::to_owned),
            body,
        };
        let spooled = spool.append(record).await;
        drop(appending);
        match spooled {
            Ok(spool_id) => Ok(Received::Spooled { spool_id, parsed }),
            Err(err) => {
                let reason = match err {
                    SpoolError::Full { .. } => "full",
                    SpoolError::Unusable { .. } | SpoolError::Stopped => "unwritable",
                };
                self.metrics.add(
                    SPOOL_WRITE_FAILURES,
                    &[("source", ingest.format().source()), ("reason", reason)],
                    1,
                );
                tracing::error!(
                    error = %err,
                    "NOTIFICATION REFUSED (503): the database cannot take it and the spool cannot either"
                );
                Err(IntakeError::Spool(err))
            }
        }
    }

    /// Waits (bounded) for the store to be ready.
    async fn wait_ready(&self) -> Result<(), IntakeError> {
        if *self.store_ready.borrow() {
            return Ok(());
        }
        let mut ready = self.store_ready.clone();
        match tokio::time::timeout(STARTUP_WAIT, ready.wait_for(|ready| *ready)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(IntakeError::NotReady),
        }
    }

    /// The spool, when there is one.
    pub fn spool(&self) -> Option<&Spool> {
        self.spool.as_ref()
    }

    pub(super) fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    pub(super) fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(super) fn store_ready(&self) -> watch::Receiver<bool> {
        self.store_ready.clone()
    }

    /// True while new notifications go to the spool.
    pub fn is_spooling(&self) -> bool {
        self.spool.is_some() && self.gate.is_spooling()
    }
}

/// True when the write did not happen (or is not known to have): worth spooling.
fn spoolable(err: &IngestError) -> bool {
    match err {
        IngestError::QueueFull | IngestError::Stopped => true,
        IngestError::Store(err) => err.is_unavailable(),
    }
}
