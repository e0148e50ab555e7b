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
//! ones made the syncs of the log wait behind the database file's (docs/design.md). Once
//! the checkpointer has copied all of the log, the writer's next transaction starts it
//! over. Under a load that never leaves the checkpointer a moment to catch up, the log
//! would only grow; so once it holds [`RESTART_FRAMES`] pages the writer copies the little
//! that is left itself, and its next transaction starts the log over.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, mpsc};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::BUSY_TIMEOUT;
use crate::notification::{Format, Notification, Rejection};
use crate::store::batch::Pending;
use crate::store::{Committed, NewDelivery, Result, StoreError};

mod checkpointer;
mod record;
mod syncer;

use checkpointer::{Checkpointer, checkpoint, checkpoint_log};
use record::record_batch;
use syncer::{Commit, sync_commits};

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

/// A body as the thread records it: an owned copy of a [`Pending`].
struct Item {
    received_at: DateTime<Utc>,
    source: Format,
    content_type: Option<String>,
    body: Vec<u8>,
    parsed: Result<Notification, Rejection>,
}

impl Item {
    fn new(pending: &Pending<'_>) -> Self {
        Self {
            received_at: pending.delivery.received_at,
            source: pending.delivery.source,
            content_type: pending.delivery.content_type.map(str::to_owned),
            body: pending.delivery.body.to_vec(),
            parsed: pending.parsed.clone(),
        }
    }

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
                    let (recorded, ended) = match record_batch(&mut session.db, &items) {
                        Ok(written) => written,
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
                    Ok(Committed::syncing(recorded, ended, on_disk))
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

#[cfg(test)]
mod tests;
