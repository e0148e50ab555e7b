//! The replay: drains the spool into the store, oldest first, through the same pipeline as
//! `/notify`, keeping each body's received time (docs/design.md#the-spool).
//!
//! A record leaves the spool only after its store commit. A crash between the two leaves
//! it in both; the next run finds it in the store (same received time, same bytes) and
//! only removes it from the spool, so no delivery is recorded twice.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::file::{Record, Spool};
use super::intake::Intake;
use crate::metrics::SPOOL_REPLAYED;
use crate::notification::Format;
use crate::store::{NewDelivery, Recorded, Store, StoreError};

/// Records replayed in one store transaction.
const BATCH: usize = 512;
/// How often an idle replay checks for work it was not woken for.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// The first and the longest wait after the store failed.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The wait for requests still on their way to the store or the spool.
const IN_FLIGHT_WAIT: Duration = Duration::from_millis(5);

/// Starts the replay of `intake`'s spool, if it has one. Aborting the task is safe at any
/// point.
pub fn start(intake: &Intake, store: Store) -> Option<JoinHandle<()>> {
    let spool = intake.spool()?.clone();
    Some(tokio::spawn(run(intake.clone(), spool, store)))
}

async fn run(intake: Intake, spool: Spool, store: Store) {
    let mut store_ready = intake.store_ready();
    if store_ready.wait_for(|ready| *ready).await.is_err() {
        return;
    }
    let gate = intake.gate().clone();
    let mut backoff = FIRST_BACKOFF;
    let mut batch_size = BATCH;
    loop {
        let _ = tokio::time::timeout(IDLE_CHECK, gate.spooling()).await;
        if !gate.is_spooling() {
            continue;
        }
        // A write to the store that started before spooling did is waited for: it may
        // still commit, and the replay must see it to leave its spooled copy out.
        if gate.direct_in_flight() > 0 {
            tokio::time::sleep(IN_FLIGHT_WAIT).await;
            continue;
        }
        let records = match spool.oldest(batch_size).await {
            Ok(records) => records,
            Err(err) => {
                gate.open();
                tracing::error!(%err, "cannot read the spool; replay waits");
                tokio::time::sleep(MAX_BACKOFF).await;
                continue;
            }
        };
        if records.is_empty() {
            if gate.resume_direct(|| spool.depth().records) {
                tracing::info!("spool drained: notifications go to the database again");
            } else {
                tokio::time::sleep(IN_FLIGHT_WAIT).await;
            }
            continue;
        }
        match replay(&intake, &store, &spool, &records).await {
            Ok(()) => {
                backoff = FIRST_BACKOFF;
                batch_size = BATCH;
                let depth = spool.depth();
                // The rest fits in one batch: new requests wait for it rather than join it,
                // so that steady traffic cannot keep the spool from emptying.
                if depth.records <= BATCH as u64 {
                    gate.close();
                }
                tracing::debug!(
                    replayed = records.len(),
                    left = depth.records,
                    "spooled notifications replayed"
                );
            }
            Err(Failure::Store(err)) if err.is_unavailable() => {
                gate.open();
                tracing::debug!(error = %err, retry_in_ms = backoff.as_millis(), "replay waits for the database");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(failure) => {
                gate.open();
                // Not the database being away: something about these records. One at a
                // time, so that one record that cannot be stored holds up only itself.
                tracing::error!(
                    error = %failure,
                    spool_id = records[0].id,
                    "cannot replay spooled notifications; they stay in the spool"
                );
                if batch_size == 1 {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                batch_size = 1;
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Spool(#[from] super::SpoolError),
    #[error("spooled record {0} names source {1:?}, which this calltrail does not read")]
    Format(i64, String),
}

/// Records `records` in the store (those not already there), marks their deliveries as
/// spooled, then removes them from the spool.
async fn replay(
    intake: &Intake,
    store: &Store,
    spool: &Spool,
    records: &[Record],
) -> Result<(), Failure> {
    let deliveries = records
        .iter()
        .map(delivery)
        .collect::<Result<Vec<NewDelivery<'_>>, Failure>>()?;
    let stored = already_stored(store, &deliveries).await?;
    let missing: Vec<NewDelivery<'_>> = deliveries
        .iter()
        .zip(&stored)
        .filter(|(_, stored)| stored.is_none())
        .map(|(delivery, _)| *delivery)
        .collect();
    let recorded = if missing.is_empty() {
        Vec::new()
    } else {
        intake
            .ingest()
            .record_received(&missing, intake.metrics())
            .await?
    };
    let mut recorded = recorded.into_iter();
    let mut marks = Vec::with_capacity(records.len());
    let mut results = Vec::with_capacity(records.len());
    for ((record, delivery), stored) in records.iter().zip(&deliveries).zip(stored) {
        let (delivery_id, result) = match stored {
            Some(id) => (id, "already_stored"),
            None => match recorded.next() {
                Some(recorded) => outcome(recorded),
                None => return Err(StoreError::Corrupt("a batch answered too few".into()).into()),
            },
        };
        marks.push((delivery_id, record.spooled_at));
        results.push((delivery.source.source(), result));
    }
    store.mark_spooled(&marks).await?;
    spool.remove(records.iter().map(|r| r.id).collect()).await?;
    for (source, result) in results {
        intake
            .metrics()
            .add(SPOOL_REPLAYED, &[("source", source), ("result", result)], 1);
    }
    Ok(())
}

/// For each delivery, the id of the one stored with the same received time and bytes, if
/// any; each stored delivery stands for one spooled record at most.
async fn already_stored(
    store: &Store,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<Option<i64>>, StoreError> {
    let times: Vec<DateTime<Utc>> = deliveries.iter().map(|d| d.received_at).collect();
    let mut found: HashMap<(DateTime<Utc>, Vec<u8>), Vec<i64>> = HashMap::new();
    for stored in store.deliveries_received_at(&times).await? {
        found
            .entry((stored.received_at, stored.body))
            .or_default()
            .push(stored.delivery_id);
    }
    Ok(deliveries
        .iter()
        .map(|d| {
            found
                .get_mut(&(d.received_at, d.body.to_vec()))
                .and_then(Vec::pop)
        })
        .collect())
}

/// The delivery a spooled record is, read by the normalizer of the source that received it.
fn delivery(record: &Record) -> Result<NewDelivery<'_>, Failure> {
    let source = Format::parse_name(&record.source)
        .ok_or_else(|| Failure::Format(record.id, record.source.clone()))?;
    Ok(NewDelivery {
        received_at: record.received_at,
        source,
        content_type: record.content_type.as_deref(),
        body: &record.body,
    })
}

/// The delivery a replayed record became, and the `result` it is counted by.
fn outcome(recorded: Recorded) -> (i64, &'static str) {
    match recorded {
        Recorded::Accepted { delivery_id, .. } => (delivery_id, "accepted"),
        Recorded::Duplicate { delivery_id, .. } => (delivery_id, "duplicate"),
        Recorded::Rejected { delivery_id } => (delivery_id, "rejected"),
    }
}
