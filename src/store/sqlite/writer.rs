//! The SQLite group-commit writer: a thread of its own with a connection of its own, which
//! records each batch from `begin immediate` to `commit` without leaving the thread.
//!
//! Through the async driver every statement is a hop to the connection's thread and back,
//! every row a message between threads, and every multi-row statement is parsed again
//! for each batch size; under load those hops and parses cost the one writer more than
//! SQLite's own work. Here a batch is one message in and one answer out, and every
//! statement is prepared once and then run a row at a time. SQLite allows one writer at
//! a time anyway, so nothing is lost by having exactly one.
//!
//! The connection's page cache stays valid from batch to batch (nothing else writes in
//! between, as a rule), so the index pages a batch changes are rarely read again.
//!
//! A commit is not synced by the writer (`synchronous = normal`) but by a second thread,
//! the syncer, which `fdatasync`s the write-ahead log once for every commit made before it
//! began, and only then lets those batches be answered. The writer meanwhile records the
//! next batch instead of waiting for the disk. Every frame a commit wrote precedes the
//! sync that answers it, so a `200` still means the delivery is on disk, exactly as with
//! `synchronous = full`, which syncs the same log at the same commit. SQLite itself
//! still syncs what checkpoints copy into the database file, before the log is reused.
//! Readers may see a batch a moment before it is answered; if the machine lost power in
//! that moment, the batch would be gone, but it was never answered `200`.
//!
//! Nor does the writer copy the log into the database file as a rule (a checkpoint, which
//! SQLite otherwise runs inside every thousandth page's commit): a third thread, the
//! checkpointer, does that with a connection of its own while the writer goes on, one
//! checkpoint after the other for as long as commits come. Small, back-to-back
//! checkpoints keep the log short and each sync of the database file brief: rarer, larger
//! ones made the syncs of the log wait behind the database file's (see the README). Once
//! the checkpointer has copied all of the log, the writer's next transaction starts it
//! over. Under a load that never leaves the checkpointer a moment to catch up, the log
//! would only grow; so once it holds [`RESTART_FRAMES`] pages the writer copies the little
//! that is left itself, and its next transaction starts the log over.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, mpsc};

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSqlError, Type, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior};
use sqlx::types::Json;
use tokio::sync::oneshot;

use super::write::{
    CALLS_ON_CONFLICT, DAY_DURATIONS_ON_CONFLICT, INSERT_CALLS, INSERT_DAY_DURATIONS,
    INSERT_SLOT_COUNTS, SLOT_COUNTS_ON_CONFLICT,
};
use super::{BUSY_TIMEOUT, utc_text};
use crate::call::Call;
use crate::notification::{Notification, Rejection};
use crate::store::batch::{EventKey, Pending, Plan, fold_calls, recorded};
use crate::store::columns::{DELIVERY_COLUMN_LIST, EVENT_FIELD_LIST, EVENT_FIELDS};
use crate::store::rollup::Deltas;
use crate::store::rows::{EVENT_AND_CALL_COLUMNS, EventAndCallRow, EventRow, sip_code_to_column};
use crate::store::{Committed, NewDelivery, Recorded, Result, StoreError};

/// The page cache of the writer's connection, in KiB (as `PRAGMA cache_size` takes it,
/// negative): the pages a batch touches — index leaves all over the file — stay cached
/// between batches instead of being read again (SQLite's default is 2 MiB).
const WRITER_CACHE_KIB: i64 = -32_768;

/// How many pages the log holds, as the checkpointer last saw it, before the writer
/// checkpoints itself so that the log starts over (see the module's documentation):
/// 64 MiB of 4 KiB pages.
const RESTART_FRAMES: i64 = 16_384;

/// The handle of the writer thread: cheap to share; the thread ends when the last handle
/// is dropped, closing its connection, and the syncer after it.
#[derive(Debug)]
pub(super) struct Writer {
    requests: mpsc::Sender<Request>,
}

enum Request {
    Batch {
        items: Vec<Item>,
        reply: oneshot::Sender<Result<Committed>>,
    },
    /// Close the connection (it is opened again for the next batch).
    Close { reply: oneshot::Sender<()> },
}

/// The database file as the writer's and the checkpointer's connections open it: the path
/// and VFS of the pool's (see [`super::SqliteStore::connect_lazy`]).
#[derive(Debug, Clone)]
struct Database {
    path: PathBuf,
    vfs: Option<String>,
}

/// What the writer tells the checkpointer.
enum Checkpointer {
    /// The log has grown: copy it into the database file.
    Checkpoint,
    /// Close the connection (it is opened again for the next checkpoint), then say so.
    Close(mpsc::Sender<()>),
}

/// A body as the thread records it: an owned copy of a [`Pending`].
struct Item {
    received_at: DateTime<Utc>,
    content_type: Option<String>,
    body: Vec<u8>,
    parsed: Result<Notification, Rejection>,
}

impl Item {
    fn new(pending: &Pending<'_>) -> Self {
        Self {
            received_at: pending.delivery.received_at,
            content_type: pending.delivery.content_type.map(str::to_owned),
            body: pending.delivery.body.to_vec(),
            parsed: pending.parsed.clone(),
        }
    }

    fn pending(&self) -> Pending<'_> {
        Pending {
            delivery: NewDelivery {
                received_at: self.received_at,
                content_type: self.content_type.as_deref(),
                body: &self.body,
            },
            parsed: &self.parsed,
        }
    }
}

impl Writer {
    /// Starts the writer, syncer and checkpointer threads for the database file at `path`,
    /// opened with the VFS `vfs` if the database URL names one; the writer connects on its
    /// first batch.
    pub fn start(path: PathBuf, vfs: Option<String>) -> io::Result<Self> {
        Self::start_with(Database { path, vfs }, RESTART_FRAMES)
    }

    /// [`Writer::start`], with the log started over once it holds `restart_frames` pages.
    fn start_with(database: Database, restart_frames: i64) -> io::Result<Self> {
        let (requests, receiver) = mpsc::channel();
        let (commits, committed) = mpsc::channel();
        let (checkpointer, checkpoints) = mpsc::sync_channel(1);
        let failed_sync = Arc::new(AtomicBool::new(false));
        let syncer_failed = failed_sync.clone();
        std::thread::Builder::new()
            .name("sqlite-syncer".into())
            .spawn(move || sync_commits(committed, &syncer_failed))?;
        let log_frames = Arc::new(AtomicI64::new(0));
        let (checkpointer_database, seen) = (database.clone(), log_frames.clone());
        std::thread::Builder::new()
            .name("sqlite-checkpointer".into())
            .spawn(move || {
                checkpoint_log(&checkpointer_database, checkpoints, &seen, restart_frames)
            })?;
        let threads = Threads {
            commits,
            checkpointer,
            log_frames,
            restart_frames,
            failed_sync,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(&database, receiver, threads))?;
        Ok(Self { requests })
    }

    /// Records a batch in one transaction; the answers are in batch order, to be given once
    /// [`Committed::durable`] says the commit is on disk.
    pub async fn commit_batch(&self, pending: &[Pending<'_>]) -> Result<Committed> {
        let (reply, answer) = oneshot::channel();
        let items = pending.iter().map(Item::new).collect();
        self.requests
            .send(Request::Batch { items, reply })
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Closes the writer's connection, after the batches sent before.
    pub async fn close(&self) {
        let (reply, closed) = oneshot::channel();
        if self.requests.send(Request::Close { reply }).is_ok() {
            let _ = closed.await;
        }
    }
}

/// A commit waiting for the syncer: the log it was written to, and whom to tell once the
/// log is on disk.
struct Commit {
    log: Arc<File>,
    synced: oneshot::Sender<Result<()>>,
}

/// What the writer tells the other threads after each commit.
struct Threads {
    /// The syncer: this commit is to be synced and answered.
    commits: mpsc::Sender<Commit>,
    /// The checkpointer (one message waits at most).
    checkpointer: mpsc::SyncSender<Checkpointer>,
    /// The pages in the log at the checkpointer's last checkpoint.
    log_frames: Arc<AtomicI64>,
    /// [`RESTART_FRAMES`], but in tests.
    restart_frames: i64,
    /// Set by the syncer when a sync failed: what the kernel could not write may be gone
    /// although a later sync succeeds, so no batch is recorded until calltrail restarts.
    failed_sync: Arc<AtomicBool>,
}

/// The writer's connection, and its log, opened once for the syncer after the first
/// commit: one handle for as long as the connection lives, so that a write error the
/// kernel reports is reported to it.
struct Session {
    db: Connection,
    log: Option<Arc<File>>,
}

impl Session {
    /// The log, by the name SQLite itself gave it (symbolic links resolved).
    fn log(&mut self) -> Result<Arc<File>> {
        if let Some(log) = &self.log {
            return Ok(log.clone());
        }
        let path = format!("{}-wal", self.db.path().unwrap_or_default());
        let log = Arc::new(File::open(path).map_err(StoreError::Sync)?);
        Ok(self.log.insert(log).clone())
    }
}

/// The writer: one request after the other, until every handle is dropped. Each commit is
/// handed to the syncer, which answers it once it is on disk.
fn run(database: &Database, requests: mpsc::Receiver<Request>, threads: Threads) {
    let mut connection: Option<Session> = None;
    // Once the checkpointer is gone, the writer checkpoints after every commit.
    let mut checkpointer_gone = false;
    for request in requests {
        match request {
            Request::Batch { items, reply } => {
                let mut broken = false;
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    if threads.failed_sync.load(Ordering::Relaxed) {
                        return Err(StoreError::Sync(io::Error::other(
                            "an earlier sync of the write-ahead log failed; restart calltrail",
                        )));
                    }
                    let session = match connection.as_mut() {
                        Some(session) => session,
                        None => connection.insert(Session {
                            db: connect(database)?,
                            log: None,
                        }),
                    };
                    let recorded = match record_batch(&mut session.db, &items) {
                        Ok(recorded) => recorded,
                        Err(err) => {
                            // A rollback that failed leaves the transaction open.
                            broken = !session.db.is_autocommit();
                            return Err(err);
                        }
                    };
                    let (synced, on_disk) = oneshot::channel();
                    let log = session.log()?;
                    threads
                        .commits
                        .send(Commit { log, synced })
                        .map_err(|_| StoreError::WriterStopped)?;
                    Ok(Committed::syncing(recorded, on_disk))
                }));
                let result = result.unwrap_or_else(|panic| {
                    broken = true;
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(StoreError::Corrupt(format!("the batch panicked: {what}")))
                });
                let committed = result.is_ok();
                let _ = reply.send(result);
                if broken {
                    // Dropping the connection rolls back whatever the batch left open.
                    connection = None;
                } else if committed {
                    let sent = threads.checkpointer.try_send(Checkpointer::Checkpoint);
                    if let Err(mpsc::TrySendError::Disconnected(_)) = sent
                        && !checkpointer_gone
                    {
                        checkpointer_gone = true;
                        tracing::error!(
                            "the SQLite checkpointer stopped; the writer checkpoints itself"
                        );
                    }
                    if let Some(session) = connection.as_ref()
                        && (checkpointer_gone
                            || threads.log_frames.load(Ordering::Relaxed) >= threads.restart_frames)
                    {
                        match checkpoint(&session.db) {
                            Ok(Some(frames)) => threads.log_frames.store(frames, Ordering::Relaxed),
                            Ok(None) => {}
                            Err(err) => {
                                tracing::warn!(error = %err, "the SQLite writer's checkpoint failed");
                            }
                        }
                    }
                }
            }
            Request::Close { reply } => {
                // The checkpointer's connection and the writer's: once the pool's close too,
                // the last to close copies what is left of the log and removes it.
                let (closed, checkpointer_closed) = mpsc::channel();
                if threads
                    .checkpointer
                    .send(Checkpointer::Close(closed))
                    .is_ok()
                {
                    let _ = checkpointer_closed.recv();
                }
                if let Some(mut session) = connection.take() {
                    // The commits handed over are synced before the connection closes
                    // (closing the last one removes the log).
                    if let Some(log) = session.log.take() {
                        let (synced, on_disk) = oneshot::channel();
                        if threads.commits.send(Commit { log, synced }).is_ok() {
                            let _ = on_disk.blocking_recv();
                        }
                    }
                    if let Err((_, err)) = session.db.close() {
                        tracing::warn!(error = %err, "closing the SQLite writer's connection failed");
                    }
                }
                let _ = reply.send(());
            }
        }
    }
}

/// The syncer: waits for a commit, takes every other one made meanwhile, syncs their log
/// once for all of them and tells them; until the writer is gone. After a failed sync,
/// the writer records nothing more (see [`Threads::failed_sync`]).
fn sync_commits(committed: mpsc::Receiver<Commit>, failed_sync: &AtomicBool) {
    while let Ok(first) = committed.recv() {
        // Taken before the sync begins, so each of them committed before it.
        let waiting: Vec<Commit> = std::iter::once(first).chain(committed.try_iter()).collect();
        let mut logs: Vec<&Arc<File>> = Vec::new();
        for commit in &waiting {
            if !logs.iter().any(|log| Arc::ptr_eq(log, &commit.log)) {
                logs.push(&commit.log);
            }
        }
        let synced = logs.iter().try_for_each(|log| log.sync_data());
        if let Err(err) = &synced {
            failed_sync.store(true, Ordering::Relaxed);
            tracing::error!(error = %err, "syncing the SQLite write-ahead log failed; no more notifications are recorded until calltrail restarts");
        }
        for commit in waiting {
            let result = match &synced {
                Ok(()) => Ok(()),
                Err(err) => Err(StoreError::Sync(io::Error::new(
                    err.kind(),
                    err.to_string(),
                ))),
            };
            let _ = commit.synced.send(result);
        }
    }
}

/// The checkpointer: copies the log into the database file after the writer's commits,
/// with a connection it keeps until the writer closes its own; until the writer is gone.
/// Tells the writer how many pages the log holds. Once the log holds `restart_frames`,
/// the checkpoint is the writer's until it has started the log over: the writer's is
/// passive too, and finds nothing to do while another is running. A checkpoint that fails
/// loses nothing (the log holds every commit, synced); the writer then checkpoints itself
/// after its next commit, and the checkpointer tries again on a new connection.
fn checkpoint_log(
    database: &Database,
    messages: mpsc::Receiver<Checkpointer>,
    log_frames: &AtomicI64,
    restart_frames: i64,
) {
    let mut connection: Option<Connection> = None;
    for message in messages {
        match message {
            Checkpointer::Checkpoint if log_frames.load(Ordering::Relaxed) >= restart_frames => {}
            Checkpointer::Checkpoint => {
                let db = match connection.take() {
                    Some(db) => Ok(db),
                    None => connect(database),
                };
                match db.and_then(|db| checkpoint(&db).map(|frames| (db, frames))) {
                    Ok((db, frames)) => {
                        connection = Some(db);
                        if let Some(frames) = frames {
                            log_frames.store(frames, Ordering::Relaxed);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the SQLite checkpointer's checkpoint failed");
                        // The writer checkpoints itself after its next commit.
                        log_frames.store(i64::MAX, Ordering::Relaxed);
                    }
                }
            }
            Checkpointer::Close(closed) => {
                if let Some(db) = connection.take()
                    && let Err((_, err)) = db.close()
                {
                    tracing::warn!(error = %err, "closing the SQLite checkpointer's connection failed");
                }
                let _ = closed.send(());
            }
        }
    }
}

/// Copies what it can of the log into the database file without waiting for anyone
/// (`passive`); SQLite syncs the log before and the file after. Returns the pages in the
/// log, unless another checkpoint was running.
fn checkpoint(db: &Connection) -> Result<Option<i64>> {
    let (busy, frames): (i64, i64) = db.query_row("pragma wal_checkpoint(passive)", [], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    Ok((busy == 0 && frames >= 0).then_some(frames))
}

/// Opens the writer's connection with the settings of the pool's (see
/// [`super::SqliteStore::connect_lazy`]) but for syncing, and a larger page cache.
fn connect(database: &Database) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = match &database.vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(&database.path, flags, vfs.as_str())?,
        None => Connection::open_with_flags(&database.path, flags)?,
    };
    db.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = db.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "the database file would not use a write-ahead log (journal mode {mode:?})"
        )));
    }
    // A 200 promises the delivery is on disk: the syncer syncs the log after every commit
    // of this connection (see the module's documentation); checkpoints sync themselves.
    db.pragma_update(None, "synchronous", "normal")?;
    // Checkpoints are the checkpointer's, and every so often the writer's, not the commit's.
    db.pragma_update(None, "wal_autocheckpoint", 0)?;
    db.pragma_update(None, "foreign_keys", true)?;
    db.pragma_update(None, "temp_store", "memory")?;
    db.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    db.set_prepared_statement_cache_capacity(16);
    Ok(db)
}

/// Records a batch in one `begin immediate` transaction; see [`crate::store::batch`] for
/// the bookkeeping. An error drops the transaction, which rolls it back.
fn record_batch(db: &mut Connection, items: &[Item]) -> Result<Vec<Recorded>> {
    let pending: Vec<Pending<'_>> = items.iter().map(Item::pending).collect();
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut plan = Plan::new(&pending);
    let new_events: Vec<_> = plan.new_events().collect();
    plan.inserted(insert_events(&tx, &new_events)?)?;
    let unresolved = plan.unresolved();
    if !unresolved.is_empty() {
        plan.existing(select_event_ids(&tx, &unresolved)?)?;
    }
    let outcomes = plan.outcomes()?;
    let mut delivery_ids = Vec::with_capacity(pending.len());
    {
        let mut insert = tx.prepare_cached(&INSERT_DELIVERY)?;
        for (item, outcome) in pending.iter().zip(&outcomes) {
            let errors = outcome.errors.map(|errors| json(&errors.0)).transpose()?;
            let id: i64 = insert.query_row(
                (
                    utc_text(item.delivery.received_at),
                    item.delivery.content_type,
                    item.delivery.body,
                    outcome.result.as_str(),
                    outcome.error.as_deref(),
                    errors,
                    outcome.conversation_id,
                    outcome.event_id,
                ),
                |row| row.get(0),
            )?;
            delivery_ids.push(id);
        }
    }
    let to_refold = plan.calls_to_refold();
    let (events, old) = read_calls(&tx, &to_refold)?;
    let calls = fold_calls(events, to_refold.len())?;
    let deltas = Deltas::between(&old, &calls);
    write_calls(&tx, &calls)?;
    add_counts(&tx, &deltas)?;
    tx.commit()?;
    Ok(recorded(&outcomes, &delivery_ids))
}

/// Inserts an event unless the same content is stored for its call, returning its id (no
/// row if it is stored).
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "insert into events ({EVENT_FIELDS}) values ({})
         on conflict (conversation_id, content_hash) do nothing
         returning id",
        params(EVENT_FIELD_LIST.len())
    )
});

/// Inserts a delivery, returning its id.
static INSERT_DELIVERY: LazyLock<String> = LazyLock::new(|| {
    let columns = &DELIVERY_COLUMN_LIST[1..];
    format!(
        "insert into deliveries ({}) values ({}) returning id",
        columns.join(", "),
        params(columns.len())
    )
});

/// Inserts the events whose content is not stored yet; returns those it stored.
fn insert_events(
    tx: &Transaction<'_>,
    events: &[(&Notification, DateTime<Utc>)],
) -> Result<Vec<EventKey>> {
    let mut insert = tx.prepare_cached(&INSERT_EVENT)?;
    let mut stored = Vec::with_capacity(events.len());
    for (notification, received_at) in events {
        let event = &notification.event;
        let id: Option<i64> = insert
            .query_row(
                rusqlite::params![
                    event.conversation_id,
                    notification.content_hash,
                    event.status,
                    event.reason_code,
                    event.reason_code_raw,
                    event.reason,
                    sip_code_to_column(event.sip_code),
                    event.sip_reason,
                    event.amd_mode.map(|mode| mode.as_str()),
                    event.amd_result.map(|result| result.as_str()),
                    event.duration_s,
                    event.connect_time.map(utc_text),
                    event.disconnect_time.map(utc_text),
                    json(&event.warnings)?,
                    json(&notification.payload)?,
                    utc_text(*received_at),
                ],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(id) = id {
            stored.push((
                id,
                event.conversation_id.clone(),
                notification.content_hash.clone(),
            ));
        }
    }
    Ok(stored)
}

/// The ids of stored events, by `(conversation_id, content_hash)`.
fn select_event_ids(tx: &Transaction<'_>, keys: &[(&str, &str)]) -> Result<Vec<EventKey>> {
    let mut select = tx
        .prepare_cached("select id from events where conversation_id = ?1 and content_hash = ?2")?;
    keys.iter()
        .map(|&(conversation_id, content_hash)| {
            let id = select.query_row((conversation_id, content_hash), |row| row.get(0))?;
            Ok((id, conversation_id.to_owned(), content_hash.to_owned()))
        })
        .collect()
}

/// Every stored event of the calls (the batch's own included), grouped by call in received
/// order, and the records the calls have now.
fn read_calls(
    tx: &Transaction<'_>,
    conversation_ids: &[&str],
) -> Result<(Vec<EventRow>, Vec<Call>)> {
    let mut select = tx.prepare_cached(&READ_CALL)?;
    let mut events = Vec::new();
    let mut old = Vec::new();
    for conversation_id in conversation_ids {
        let mut rows = select.query([conversation_id])?;
        let mut first = true;
        while let Some(row) = rows.next()? {
            let row = event_and_call_row(row)?;
            if first {
                old.extend(row.call().transpose()?);
                first = false;
            }
            events.push(row.event);
        }
    }
    Ok((events, old))
}

/// One call's stored events with its record beside each, in received order.
static READ_CALL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {EVENT_AND_CALL_COLUMNS}
         from events as e
         left join calls as c on c.conversation_id = e.conversation_id
         where e.conversation_id = ?1
         order by e.received_at, e.id"
    )
});

/// Reads a row of [`READ_CALL`] by position, in the order of [`EVENT_AND_CALL_COLUMNS`];
/// the payload is left empty, as the fold does not look at it.
fn event_and_call_row(row: &Row<'_>) -> rusqlite::Result<EventAndCallRow> {
    Ok(EventAndCallRow {
        event: EventRow {
            id: row.get(0)?,
            conversation_id: row.get(1)?,
            content_hash: row.get(2)?,
            status: row.get(3)?,
            reason_code: row.get(4)?,
            reason_code_raw: row.get(5)?,
            reason: row.get(6)?,
            sip_code: row.get(7)?,
            sip_reason: row.get(8)?,
            amd_mode: row.get(9)?,
            amd_result: row.get(10)?,
            duration_s: row.get(11)?,
            connect_time: time(row, 12)?,
            disconnect_time: time(row, 13)?,
            warnings: Json(from_json(row, 14)?),
            payload: Json(serde_json::Value::Object(Default::default())),
            received_at: required_time(row, 15)?,
        },
        call_state: row.get(16)?,
        call_status: row.get(17)?,
        call_outcome: row.get(18)?,
        call_reason_code: row.get(19)?,
        call_reason: row.get(20)?,
        call_sip_code: row.get(21)?,
        call_sip_reason: row.get(22)?,
        call_duration_s: row.get(23)?,
        call_connected_at: time(row, 24)?,
        call_ended_at: time(row, 25)?,
        call_amd_mode: row.get(26)?,
        call_amd_result: row.get(27)?,
        call_occurred_at: time(row, 28)?,
        call_first_seen_at: time(row, 29)?,
        call_last_seen_at: time(row, 30)?,
        call_event_count: row.get(31)?,
        call_updated_at: time(row, 32)?,
    })
}

/// A timestamp as [`utc_text`] writes it, or null.
fn time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let Some(text) = row.get_ref(index)?.as_str_or_null()? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .map(|at| Some(at.with_timezone(&Utc)))
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

fn required_time(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    time(row, index)?.ok_or(rusqlite::Error::InvalidColumnType(
        index,
        "received_at".into(),
        Type::Null,
    ))
}

/// A JSON text column.
fn from_json<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let value = row.get_ref(index)?;
    let text = match value {
        ValueRef::Text(text) => text,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                index,
                other.data_type(),
                Box::new(FromSqlError::InvalidType),
            ));
        }
    };
    serde_json::from_slice(text)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

/// JSON text, as the pool's connections store JSON.
fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Corrupt(format!("a value would not serialize as JSON: {err}")))
}

/// Writes the records over the calls' rows.
fn write_calls(tx: &Transaction<'_>, calls: &[Call]) -> Result<()> {
    static UPSERT_CALL: LazyLock<String> =
        LazyLock::new(|| format!("{INSERT_CALLS} values ({}) {CALLS_ON_CONFLICT}", params(18)));
    let mut upsert = tx.prepare_cached(&UPSERT_CALL)?;
    let updated_at = utc_text(Utc::now());
    for call in calls {
        upsert.execute(rusqlite::params![
            call.conversation_id,
            call.state.as_str(),
            call.status,
            call.outcome.as_str(),
            call.reason_code,
            call.reason,
            sip_code_to_column(call.sip_code),
            call.sip_reason,
            call.duration_s,
            call.connected_at.map(utc_text),
            call.ended_at.map(utc_text),
            call.amd_mode.map(|mode| mode.as_str()),
            call.amd_result.map(|result| result.as_str()),
            utc_text(call.occurred_at),
            utc_text(call.first_seen_at),
            utc_text(call.last_seen_at),
            call.event_count,
            updated_at,
        ])?;
    }
    Ok(())
}

/// Adds the deltas to the statistics tables.
fn add_counts(tx: &Transaction<'_>, deltas: &Deltas) -> Result<()> {
    static ADD_SLOT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{INSERT_SLOT_COUNTS} values ({}) {SLOT_COUNTS_ON_CONFLICT}",
            params(7)
        )
    });
    static ADD_DURATION: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{INSERT_DAY_DURATIONS} values ({}) {DAY_DURATIONS_ON_CONFLICT}",
            params(7)
        )
    });
    let mut add = tx.prepare_cached(&ADD_SLOT)?;
    for (key, n) in &deltas.slots {
        add.execute((
            key.slot,
            key.state,
            key.outcome,
            key.amd_result,
            key.reason_code.as_str(),
            key.answered,
            n,
        ))?;
    }
    let mut add = tx.prepare_cached(&ADD_DURATION)?;
    for (key, n) in &deltas.durations {
        add.execute((
            key.day,
            key.state,
            key.outcome,
            key.amd_result,
            key.reason_code.as_str(),
            key.duration_s,
            n,
        ))?;
    }
    Ok(())
}

/// `?1, ?2, …, ?n`
fn params(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{Format, NormalizeSettings};
    use crate::store::sqlite::SqliteStore;

    /// Every body of a round: distinct calls, answered and completed.
    fn bodies(round: usize) -> Vec<String> {
        (0..20)
            .map(|i| {
                let status = if i % 2 == 0 { "answered" } else { "completed" };
                format!(
                    r#"{{"conversationId":"call-{round}-{}","status":"{status}","reason":"{}"}}"#,
                    i / 2,
                    "x".repeat(400)
                )
            })
            .collect()
    }

    /// Records `bodies` as one batch and waits until it is on disk.
    async fn commit(writer: &Writer, bodies: &[String]) -> Result<Vec<Recorded>> {
        let parsed: Vec<_> = bodies
            .iter()
            .map(|body| Format::Kore.parse(body.as_bytes(), &NormalizeSettings::default()))
            .collect();
        let pending: Vec<_> = bodies
            .iter()
            .zip(&parsed)
            .map(|(body, parsed)| Pending {
                delivery: NewDelivery {
                    received_at: Utc::now(),
                    content_type: None,
                    body: body.as_bytes(),
                },
                parsed,
            })
            .collect();
        writer.commit_batch(&pending).await?.durable().await
    }

    async fn count_events(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_database_reached_through_a_symbolic_link_is_recorded_and_synced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data").join("calltrail.db");
        std::fs::create_dir(file.parent().unwrap()).unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let store = SqliteStore::connect_lazy(&format!("sqlite://{}", link.display()), 2).unwrap();
        store.migrate().await.unwrap();

        let recorded = commit(&store.writer, &bodies(0)).await.unwrap();

        assert_eq!(recorded.len(), 20);
        assert!(matches!(recorded[0], Recorded::Accepted { .. }));
        assert_eq!(count_events(&store).await, 20);
        // SQLite keeps the log beside the file the link names, and that is the one synced.
        assert!(dir.path().join("data").join("calltrail.db-wal").exists());
        assert!(!dir.path().join("link.db-wal").exists());
        store.close().await;
    }

    #[tokio::test]
    async fn closing_the_store_leaves_every_commit_in_the_database_file_and_no_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calltrail.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::connect_lazy(&url, 2).unwrap();
        store.migrate().await.unwrap();
        for round in 0..5 {
            commit(&store.writer, &bodies(round)).await.unwrap();
        }

        store.close().await;

        // The last connection to close (the pool's, after the writer's and the
        // checkpointer's) copies the log into the file and removes it.
        assert!(!dir.path().join("calltrail.db-wal").exists());
        let reopened = SqliteStore::connect_lazy(&url, 1).unwrap();
        assert_eq!(count_events(&reopened).await, 100);
        reopened.close().await;
    }

    #[tokio::test]
    async fn the_writer_opens_the_file_with_the_vfs_of_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("calltrail.db").display());
        let store = SqliteStore::connect_lazy(&url, 1).unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let unknown = SqliteStore::connect_lazy(&format!("{url}?vfs=no-such-vfs"), 1).unwrap();
        let unix = SqliteStore::connect_lazy(&format!("{url}?vfs=unix"), 1).unwrap();

        let refused = commit(&unknown.writer, &bodies(0)).await;
        let recorded = commit(&unix.writer, &bodies(1)).await;

        let err = refused.unwrap_err();
        assert!(err.to_string().contains("database error"), "{err}");
        assert!(format!("{err:?}").contains("no such vfs"), "{err:?}");
        assert_eq!(recorded.unwrap().len(), 20);
        unix.close().await;
    }

    #[tokio::test]
    async fn the_log_starts_over_once_it_has_grown_and_every_answered_body_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calltrail.db");
        let store = SqliteStore::connect_lazy(&format!("sqlite://{}", path.display()), 2).unwrap();
        store.migrate().await.unwrap();
        let database = Database {
            path: path.clone(),
            vfs: None,
        };
        let writer = Writer::start_with(database, 256).unwrap();
        let wal = dir.path().join("calltrail.db-wal");
        let (rounds, mut largest_log) = (300, 0);
        for round in 0..rounds {
            let recorded = commit(&writer, &bodies(round)).await.unwrap();
            assert!(
                recorded
                    .iter()
                    .all(|r| matches!(r, Recorded::Accepted { .. }))
            );
            largest_log = largest_log.max(std::fs::metadata(&wal).unwrap().len());
        }
        writer.close().await;
        assert_eq!(count_events(&store).await, rounds as i64 * 20);
        let database = std::fs::metadata(&path).unwrap().len();
        // Without starting over, the log would hold every page written: more than the whole
        // database. Started over, it stays near the threshold's 1 MiB.
        assert!(
            largest_log < database / 2,
            "log grew to {largest_log} bytes; database {database} bytes"
        );
        store.close().await;
    }

    #[test]
    fn the_call_read_has_the_columns_in_the_order_it_is_read_by() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "create table events (id, conversation_id, content_hash, status, reason_code,
                 reason_code_raw, reason, sip_code, sip_reason, amd_mode, amd_result,
                 duration_s, connect_time, disconnect_time, warnings, payload, received_at);
             create table calls (conversation_id, state, status, outcome, reason_code, reason,
                 sip_code, sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                 occurred_at, first_seen_at, last_seen_at, event_count, updated_at);",
        )
        .unwrap();
        let statement = db.prepare(&READ_CALL).unwrap();
        let expected = [
            "id",
            "conversation_id",
            "content_hash",
            "status",
            "reason_code",
            "reason_code_raw",
            "reason",
            "sip_code",
            "sip_reason",
            "amd_mode",
            "amd_result",
            "duration_s",
            "connect_time",
            "disconnect_time",
            "warnings",
            "received_at",
            "call_state",
            "call_status",
            "call_outcome",
            "call_reason_code",
            "call_reason",
            "call_sip_code",
            "call_sip_reason",
            "call_duration_s",
            "call_connected_at",
            "call_ended_at",
            "call_amd_mode",
            "call_amd_result",
            "call_occurred_at",
            "call_first_seen_at",
            "call_last_seen_at",
            "call_event_count",
            "call_updated_at",
        ];
        assert_eq!(statement.column_names(), expected);
    }
}
