//! Group commit: requests hand their parsed bodies to a writer task through a bounded
//! queue; the writer takes whatever is waiting (up to `batch_max`, after at most
//! `batch_wait`), records it in one transaction, and only then answers each request. With
//! more than one writer, the next takes a batch while the previous one commits.
//!
//! One commit (one fsync) then serves many requests, which is what lets a small machine
//! absorb a burst without weakening "200 means stored". A full queue is refused at once
//! ([`IngestError::QueueFull`]) rather than letting memory and latency pile up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::{IngestError, Ingested};
use crate::call::Ended;
use crate::metrics::{BATCH_SIZE, CALLS_ENDED, Metrics, STORE_ERRORS, WRITER_COMMITS};
use crate::notification::{Format, Notification, Rejection};
use crate::store::{Committed, NewDelivery, Pending, Recorded, Store, StoreError};

/// Committed batches a writer lets wait for the disk before it takes the next.
const MAX_AWAITING_DISK: usize = 4;

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitSettings {
    /// Bodies that may wait for the writer; one more is refused with `QueueFull`.
    pub queue_capacity: usize,
    /// The most bodies one transaction records.
    pub batch_max: usize,
    /// How long the writer waits for more bodies before writing a batch that is not full.
    /// Zero writes whatever is waiting at once: the batch grows by itself while the previous
    /// commit is in flight.
    pub batch_wait: Duration,
    /// Writers taking batches from the one queue, each with its own transaction. More than
    /// one lets the database work on one batch while another is being committed.
    pub writers: usize,
}

/// One body waiting for the writer.
struct Job {
    received_at: DateTime<Utc>,
    source: Format,
    content_type: Option<String>,
    body: Bytes,
    parsed: Result<Notification, Rejection>,
    reply: oneshot::Sender<Result<Ingested, IngestError>>,
}

/// The sending side: cheap to clone, one per request handler.
#[derive(Debug, Clone)]
pub(super) struct Queue {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("received_at", &self.received_at)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The running writers. They stop once every [`Queue`] is dropped and the queue is drained.
#[derive(Debug)]
pub struct Writer {
    tasks: Vec<JoinHandle<()>>,
}

impl Writer {
    /// Waits until the writers have recorded and answered everything queued before every
    /// sender was dropped, or until `timeout`. Returns false on a timeout.
    pub async fn finish(self, timeout: Duration) -> bool {
        let all = join_all(self.tasks);
        match tokio::time::timeout(timeout, all).await {
            Ok(results) => {
                for err in results.into_iter().filter_map(Result::err) {
                    tracing::error!(%err, "a group-commit writer failed");
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// Awaits every task, in order.
async fn join_all(tasks: Vec<JoinHandle<()>>) -> Vec<Result<(), tokio::task::JoinError>> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await);
    }
    results
}

/// The receiving side, shared by the writers: one at a time takes a batch from it.
type Jobs = Arc<Mutex<mpsc::Receiver<Job>>>;

/// Starts the writers for `store`.
pub(super) fn start(
    store: Store,
    settings: GroupCommitSettings,
    metrics: Metrics,
) -> (Queue, Writer) {
    let (jobs, receiver) = mpsc::channel(settings.queue_capacity.max(1));
    let receiver: Jobs = Arc::new(Mutex::new(receiver));
    let tasks = (0..settings.writers.max(1))
        .map(|_| {
            let writer = run(store.clone(), receiver.clone(), settings, metrics.clone());
            tokio::spawn(writer)
        })
        .collect();
    (Queue { jobs }, Writer { tasks })
}

impl Queue {
    /// Bodies waiting (or being handed over) and the most that may.
    pub(super) fn depth(&self) -> (usize, usize) {
        let capacity = self.jobs.max_capacity();
        (capacity - self.jobs.capacity(), capacity)
    }

    /// Queues one parsed body and waits for the commit that holds it.
    pub(super) async fn submit(
        &self,
        received_at: DateTime<Utc>,
        source: Format,
        content_type: Option<&str>,
        body: Bytes,
        parsed: Result<Notification, Rejection>,
    ) -> Result<Ingested, IngestError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            received_at,
            source,
            content_type: content_type.map(str::to_owned),
            body,
            parsed,
            reply,
        };
        self.jobs.try_send(job).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => IngestError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => IngestError::Stopped,
        })?;
        // The writer answers every job it takes; a dropped reply means it died mid-batch.
        answer.await.unwrap_or(Err(IngestError::Stopped))
    }
}

/// A writer's loop: take a batch, commit it, and answer it once the commit is on disk;
/// until the queue closes. The next batch is taken as soon as the commit returns, so that
/// on a store that syncs commits apart from making them (SQLite), one batch is written
/// while the disk syncs the last.
async fn run(store: Store, jobs: Jobs, settings: GroupCommitSettings, metrics: Metrics) {
    let mut answering = JoinSet::new();
    loop {
        let batch = take_batch(&mut *jobs.lock().await, settings).await;
        if batch.is_empty() {
            break;
        }
        answering.spawn(write(&store, batch).await.give(metrics.clone()));
        while answering.try_join_next().is_some() {}
        // A disk that does not keep up holds the writer back, and the queue fills.
        while answering.len() >= MAX_AWAITING_DISK {
            answering.join_next().await;
        }
    }
    while answering.join_next().await.is_some() {}
    tracing::debug!("group-commit writer stopped: queue closed, drained and answered");
}

/// Whatever is waiting, up to `batch_max`, after waiting for the first body and then at most
/// `batch_wait` for more; empty once the queue is closed and drained.
async fn take_batch(jobs: &mut mpsc::Receiver<Job>, settings: GroupCommitSettings) -> Vec<Job> {
    let batch_max = settings.batch_max.max(1);
    let mut batch = Vec::with_capacity(batch_max);
    if jobs.recv_many(&mut batch, batch_max).await == 0 || settings.batch_wait.is_zero() {
        return batch;
    }
    let deadline = tokio::time::Instant::now() + settings.batch_wait;
    while batch.len() < batch_max {
        let room = batch_max - batch.len();
        match tokio::time::timeout_at(deadline, jobs.recv_many(&mut batch, room)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    batch
}

/// A committed batch, to be answered once the commit is on disk.
struct Answers {
    batch: Vec<Job>,
    /// The commit, or each body's own result when the batch was not committed as one.
    committed: Result<Committed, Vec<Result<Recorded, IngestError>>>,
    /// The calls ended by the bodies recorded one by one (those already on disk).
    ended: Vec<Ended>,
}

/// Commits one batch; returns what answers each of its jobs once the commit is on disk.
#[tracing::instrument(name = "group_commit.write", skip_all, fields(size = batch.len()))]
async fn write(store: &Store, batch: Vec<Job>) -> Answers {
    let pending: Vec<Pending<'_>> = batch.iter().map(Job::pending).collect();
    let mut ended = Vec::new();
    let committed = match store.commit_batch(&pending).await {
        Ok(committed) => Ok(committed),
        Err(err) if err.is_unavailable() || pending.len() == 1 => Err(failed(pending.len(), err)),
        Err(err) => {
            // Not the database going away but something about the data: record the bodies
            // one by one, so that one bad body fails alone.
            tracing::warn!(
                error = ?err,
                size = pending.len(),
                "batch failed; recording its bodies one by one"
            );
            let mut results = Vec::with_capacity(pending.len());
            for item in &pending {
                let result = record_one(store, item, &mut ended)
                    .await
                    .map_err(|err| IngestError::Store(Arc::new(err)));
                results.push(result);
            }
            Err(results)
        }
    };
    drop(pending);
    Answers {
        batch,
        committed,
        ended,
    }
}

/// Records one body as a batch of its own; adds the call it ended, if any, to `ended`.
async fn record_one(
    store: &Store,
    item: &Pending<'_>,
    ended: &mut Vec<Ended>,
) -> Result<Recorded, StoreError> {
    let committed = store.commit_batch(std::slice::from_ref(item)).await?;
    let ends = committed.ended().to_vec();
    let recorded = committed
        .durable()
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a batch of one answered nothing".into()))?;
    ended.extend(ends);
    Ok(recorded)
}

impl Answers {
    /// Waits for the commit to be on disk, records it in `metrics` and answers each job.
    async fn give(self, metrics: Metrics) {
        let size = self.batch.len();
        let results = match self.committed {
            Ok(committed) => {
                let ended = committed.ended().to_vec();
                match committed.durable().await {
                    Ok(recorded) => {
                        metrics.add(WRITER_COMMITS, &[("result", "committed")], 1);
                        metrics.observe(BATCH_SIZE, &[], size as f64);
                        count_ended(&metrics, &ended);
                        recorded.into_iter().map(Ok).collect()
                    }
                    Err(err) => {
                        metrics.add(WRITER_COMMITS, &[("result", "failed")], 1);
                        metrics.add(STORE_ERRORS, &[("kind", error_kind(&err))], 1);
                        failed(size, err)
                    }
                }
            }
            Err(results) => {
                count_ended(&metrics, &self.ended);
                // One error shared by the whole batch, or each body recorded on its own.
                let mut last: Option<&Arc<StoreError>> = None;
                for result in &results {
                    match result {
                        Ok(_) => metrics.add(WRITER_COMMITS, &[("result", "committed")], 1),
                        Err(IngestError::Store(err))
                            if !last.is_some_and(|l| Arc::ptr_eq(l, err)) =>
                        {
                            metrics.add(WRITER_COMMITS, &[("result", "failed")], 1);
                            metrics.add(STORE_ERRORS, &[("kind", error_kind(err))], 1);
                            last = Some(err);
                        }
                        Err(_) => {}
                    }
                }
                results
            }
        };
        for (job, recorded) in self.batch.into_iter().zip(results) {
            // A request whose client went away no longer listens; its rows are stored anyway.
            let answer = recorded.map(|recorded| Ingested {
                recorded,
                parsed: job.parsed,
            });
            let _ = job.reply.send(answer);
        }
    }
}

/// Counts the calls a commit ended, by source and outcome.
pub(super) fn count_ended(metrics: &Metrics, ended: &[Ended]) {
    for call in ended {
        metrics.add(
            CALLS_ENDED,
            &[
                ("source", call.source.source()),
                ("outcome", call.outcome.as_str()),
            ],
            1,
        );
    }
}

/// The `kind` label of a store error.
fn error_kind(err: &StoreError) -> &'static str {
    match err {
        StoreError::Sync(_) => "sync",
        err if err.is_unavailable() => "unavailable",
        _ => "other",
    }
}

/// The same error for each of `n` bodies.
fn failed(n: usize, err: StoreError) -> Vec<Result<Recorded, IngestError>> {
    let err = Arc::new(err);
    (0..n)
        .map(|_| Err(IngestError::Store(err.clone())))
        .collect()
}

impl Job {
    fn pending(&self) -> Pending<'_> {
        Pending {
            delivery: NewDelivery {
                received_at: self.received_at,
                source: self.source,
                content_type: self.content_type.as_deref(),
                body: &self.body,
            },
            parsed: &self.parsed,
        }
    }
}
