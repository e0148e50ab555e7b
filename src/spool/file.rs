//! The spool's file: a SQLite database of its own (write-ahead log, `synchronous = FULL`,
//! locked for this process alone), written by one thread that commits every append waiting
//! for it in one transaction: one sync serves a whole batch of requests, as the store's
//! group commit does (docs/design.md#the-spool).
//!
//! SQLite gives the crash behaviour the spool needs: a commit is on disk when it returns,
//! and a commit torn by a crash (the last frames of the log half-written) fails its
//! checksum and is dropped on the next open, without touching the commits before it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::{mpsc, oneshot};

use crate::notification::Format;

/// The most commands the thread takes at once; every append among them shares one commit.
const MAX_BATCH: usize = 1024;
/// What a record costs besides its body and content type, counted against `max_bytes`.
const RECORD_OVERHEAD: u64 = 64;
/// No oldest record.
const NONE: i64 = i64::MAX;

const SCHEMA: &str = "
    create table if not exists spooled (
        id integer primary key autoincrement,
        received_at integer not null,
        spooled_at integer not null,
        source text not null,
        content_type text,
        body blob not null
    );
    create index if not exists spooled_in_arrival_order on spooled (received_at, id);";

/// Why the spool did not take or give a record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    /// `spool.max_bytes` is reached.
    #[error("the spool is full ({bytes} of spool.max_bytes = {max_bytes} bytes)")]
    Full { bytes: u64, max_bytes: u64 },
    /// The file cannot be opened, written or read (disk full, read-only, in use by another
    /// process, …).
    #[error("the spool file {path} cannot be used: {reason}")]
    Unusable { path: PathBuf, reason: String },
    /// The spool's thread is gone.
    #[error("the spool has stopped")]
    Stopped,
}

/// A request as received, to be spooled. Never the token: it is not part of the body.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub received_at: DateTime<Utc>,
    /// The endpoint that received it, whose normalizer reads it on replay.
    pub source: Format,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// A spooled request.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub spooled_at: DateTime<Utc>,
    /// The name of the source that received it (`kore`, `jambonz`, `twilio`).
    pub source: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What the spool holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub records: u64,
    pub bytes: u64,
    pub oldest: Option<DateTime<Utc>>,
}

enum Command {
    Append(NewRecord, oneshot::Sender<Result<i64, SpoolError>>),
    Oldest(usize, oneshot::Sender<Result<Vec<Record>, SpoolError>>),
    Remove(Vec<i64>, oneshot::Sender<Result<(), SpoolError>>),
}

/// Counters the thread keeps and anyone may read.
#[derive(Debug)]
struct Shared {
    records: AtomicU64,
    bytes: AtomicU64,
    /// Microseconds since the epoch of the oldest record's received time, or [`NONE`].
    oldest: AtomicI64,
    /// False while the file cannot be opened or its last write failed.
    usable: AtomicBool,
    /// True from a record refused for want of room until records are removed.
    full: AtomicBool,
    max_bytes: u64,
}

/// The spool: cheap to clone; its thread stops once every clone is dropped.
#[derive(Debug, Clone)]
pub struct Spool {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    path: Arc<PathBuf>,
}

impl Spool {
    /// Opens (or creates) the spool at `path` and starts its thread. A file that cannot be
    /// opened does not stop calltrail: it is logged, every append fails until it can be
    /// opened (tried again on each), and notifications fall back to `503`.
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            oldest: AtomicI64::new(NONE),
            usable: AtomicBool::new(false),
            full: AtomicBool::new(false),
            max_bytes,
        });
        let mut file = SpoolFile {
            path: path.to_owned(),
            db: None,
            shared: shared.clone(),
        };
        file.ensure_open();
        let (commands, receiver) = mpsc::channel(MAX_BATCH);
        std::thread::Builder::new()
            .name("calltrail-spool".into())
            .spawn(move || file.run(receiver))?;
        Ok(Self {
            commands,
            shared,
            path: Arc::new(path.to_owned()),
        })
    }

    /// Durably stores `record` (synced before this returns) and gives its id.
    pub async fn append(&self, record: NewRecord) -> Result<i64, SpoolError> {
        self.ask(|reply| Command::Append(record, reply)).await
    }

    /// The `limit` oldest records, in arrival order.
    pub async fn oldest(&self, limit: usize) -> Result<Vec<Record>, SpoolError> {
        self.ask(|reply| Command::Oldest(limit, reply)).await
    }

    /// Removes records (once they are committed to the store).
    pub async fn remove(&self, ids: Vec<i64>) -> Result<(), SpoolError> {
        self.ask(|reply| Command::Remove(ids, reply)).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, SpoolError>>) -> Command,
    ) -> Result<T, SpoolError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| SpoolError::Stopped)?;
        answer.await.unwrap_or(Err(SpoolError::Stopped))
    }

    /// What the spool holds.
    pub fn depth(&self) -> Depth {
        let oldest = self.shared.oldest.load(Ordering::Acquire);
        Depth {
            records: self.shared.records.load(Ordering::Acquire),
            bytes: self.shared.bytes.load(Ordering::Acquire),
            oldest: (oldest != NONE).then(|| from_micros(oldest)),
        }
    }

    /// True when the spool can take a record: its file is open and writable as far as
    /// calltrail knows, and it is not full (no record was refused for want of room since
    /// records were last removed).
    pub fn accepts(&self) -> bool {
        self.shared.usable.load(Ordering::Acquire)
            && !self.shared.full.load(Ordering::Acquire)
            && self.shared.bytes.load(Ordering::Acquire) < self.shared.max_bytes
    }

    /// `spool.max_bytes`.
    pub fn max_bytes(&self) -> u64 {
        self.shared.max_bytes
    }

    /// The spool file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The thread's side.
struct SpoolFile {
    path: PathBuf,
    db: Option<Connection>,
    shared: Arc<Shared>,
}

impl SpoolFile {
    fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut commands = vec![first];
            while commands.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(command) => commands.push(command),
                    Err(_) => break,
                }
            }
            self.serve(commands);
        }
    }

    fn serve(&mut self, commands: Vec<Command>) {
        let mut appends = Vec::new();
        let mut others = Vec::new();
        for command in commands {
            match command {
                Command::Append(record, reply) => appends.push((record, reply)),
                other => others.push(other),
            }
        }
        if !appends.is_empty() {
            self.append_all(appends);
        }
        for command in others {
            match command {
                Command::Oldest(limit, reply) => {
                    let _ = reply.send(self.oldest(limit));
                }
                Command::Remove(ids, reply) => {
                    let _ = reply.send(self.remove(&ids));
                }
                Command::Append(..) => unreachable!("appends are taken apart above"),
            }
        }
    }

    /// Writes every waiting append that fits in one transaction, then answers each.
    fn append_all(&mut self, appends: Vec<(NewRecord, oneshot::Sender<Result<i64, SpoolError>>)>) {
        let max_bytes = self.shared.max_bytes;
        let mut bytes = self.shared.bytes.load(Ordering::Acquire);
        let mut answers = Vec::with_capacity(appends.len());
        let mut full = false;
        let written = self.with_db(|db| {
            let tx = db.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "insert into spooled (received_at, spooled_at, source, content_type, body)
                     values (?1, ?2, ?3, ?4, ?5)",
                )?;
                let now = Utc::now().timestamp_micros();
                for (record, _) in &appends {
                    let size = record_size(record.body.len(), record.content_type.as_deref());
                    if bytes + size > max_bytes {
                        full = true;
                        answers.push(Err(SpoolError::Full { bytes, max_bytes }));
                        continue;
                    }
                    insert.execute(params![
                        record.received_at.timestamp_micros(),
                        now,
                        record.source.source(),
                        record.content_type,
                        &record.body[..],
                    ])?;
                    bytes += size;
                    answers.push(Ok((tx.last_insert_rowid(), record.received_at, size)));
                }
            }
            tx.commit()
        });
        if full {
            self.shared.full.store(true, Ordering::Release);
            tracing::error!(
                path = %self.path.display(),
                bytes,
                max_bytes,
                "SPOOL FULL (spool.max_bytes): notifications are answered 503 until the database is back and the spool drains"
            );
        }
        let answers: Vec<Result<i64, SpoolError>> = match written {
            Ok(()) => answers
                .into_iter()
                .map(|answer| {
                    answer.map(|(id, received_at, size)| self.added(id, received_at, size))
                })
                .collect(),
            Err(err) => (0..appends.len()).map(|_| Err(err.clone())).collect(),
        };
        for ((_, reply), answer) in appends.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }

    /// Counts a committed record in.
    fn added(&self, id: i64, received_at: DateTime<Utc>, size: u64) -> i64 {
        self.shared.bytes.fetch_add(size, Ordering::AcqRel);
        self.shared.records.fetch_add(1, Ordering::AcqRel);
        self.shared
            .oldest
            .fetch_min(received_at.timestamp_micros(), Ordering::AcqRel);
        id
    }

    fn oldest(&mut self, limit: usize) -> Result<Vec<Record>, SpoolError> {
        self.with_db(|db| {
            let mut select = db.prepare_cached(
                "select id, received_at, spooled_at, source, content_type, body from spooled
                 order by received_at, id limit ?1",
            )?;
            let rows = select.query_map([limit as i64], |row| {
                Ok(Record {
                    id: row.get(0)?,
                    received_at: from_micros(row.get(1)?),
                    spooled_at: from_micros(row.get(2)?),
                    source: row.get(3)?,
                    content_type: row.get(4)?,
                    body: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    fn remove(&mut self, ids: &[i64]) -> Result<(), SpoolError> {
        self.with_db(|db| {
            let tx = db.transaction()?;
            {
                let mut delete = tx.prepare_cached("delete from spooled where id = ?1")?;
                for id in ids {
                    delete.execute([id])?;
                }
            }
            tx.commit()
        })?;
        self.shared.full.store(false, Ordering::Release);
        self.count()
    }

    /// Reads the counters from the file.
    fn count(&mut self) -> Result<(), SpoolError> {
        let (records, bytes, oldest) = self.with_db(|db| {
            db.query_row(
                "select count(*), coalesce(sum(length(body) + coalesce(length(content_type), 0)), 0),
                        min(received_at)
                 from spooled",
                [],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                    ))
                },
            )
        })?;
        let records = records.max(0) as u64;
        let bytes = bytes.max(0) as u64 + records * RECORD_OVERHEAD;
        self.shared.records.store(records, Ordering::Release);
        self.shared.bytes.store(bytes, Ordering::Release);
        self.shared
            .oldest
            .store(oldest.unwrap_or(NONE), Ordering::Release);
        Ok(())
    }

    /// Runs `work` on the open file (opening it first if need be); an error marks the spool
    /// unusable until the next success.
    fn with_db<T>(
        &mut self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, SpoolError> {
        self.ensure_open();
        let Some(db) = self.db.as_mut() else {
            return Err(self.unusable("it could not be opened (see the log)".into()));
        };
        match work(db) {
            Ok(value) => {
                self.shared.usable.store(true, Ordering::Release);
                Ok(value)
            }
            Err(err) => {
                tracing::error!(
                    path = %self.path.display(),
                    error = %err,
                    "SPOOL WRITE FAILED: notifications are answered 503 while the database is away"
                );
                Err(self.unusable(err.to_string()))
            }
        }
    }

    fn unusable(&self, reason: String) -> SpoolError {
        self.shared.usable.store(false, Ordering::Release);
        SpoolError::Unusable {
            path: self.path.clone(),
            reason,
        }
    }

    fn ensure_open(&mut self) {
        if self.db.is_some() {
            return;
        }
        match open(&self.path) {
            Ok(db) => {
                self.db = Some(db);
                match self.count() {
                    Ok(()) => {
                        let depth = self.shared.records.load(Ordering::Acquire);
                        tracing::info!(path = %self.path.display(), records = depth, "spool open");
                    }
                    Err(err) => tracing::error!(%err, "cannot read the spool"),
                }
            }
            Err(err) => {
                self.shared.usable.store(false, Ordering::Release);
                tracing::error!(
                    path = %self.path.display(),
                    error = %err,
                    "CANNOT OPEN THE SPOOL: notifications are answered 503 while the database is away"
                );
            }
        }
    }
}

/// Opens the file for this process alone (a second calltrail on the same spool is refused
/// rather than replaying the same records), in write-ahead-log mode, every commit synced.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = Connection::open_with_flags(path, flags)?;
    // No one else is meant to use the file: a lock held by another process is a refusal,
    // not something to wait for.
    db.busy_timeout(std::time::Duration::ZERO)?;
    db.pragma_update(None, "locking_mode", "exclusive")?;
    db.pragma_update(None, "journal_mode", "wal")?;
    db.pragma_update(None, "synchronous", "full")?;
    db.execute_batch(SCHEMA)?;
    // Takes the exclusive lock now, not at the first append.
    db.execute_batch("begin exclusive; commit;")?;
    Ok(db)
}

fn record_size(body: usize, content_type: Option<&str>) -> u64 {
    (body + content_type.map_or(0, str::len)) as u64 + RECORD_OVERHEAD
}

fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
