//! The checkpointer: the thread that copies the write-ahead log into the database file
//! while the writer goes on (see [`super`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;

use super::{Database, connect};
use crate::store::Result;

/// What the writer tells the checkpointer.
pub(super) enum Checkpointer {
    /// The log has grown: copy it into the database file.
    Checkpoint,
    /// Close the connection (it is opened again for the next checkpoint), then say so.
    Close(mpsc::Sender<()>),
}

/// The checkpointer: copies the log into the database file after the writer's commits,
/// with a connection it keeps until the writer closes its own; until the writer is gone.
/// Tells the writer how many pages the log holds. Once the log holds `restart_frames`,
/// the checkpoint is the writer's until it has started the log over: the writer's is
/// passive too, and finds nothing to do while another is running. A checkpoint that fails
/// loses nothing (the log holds every commit, synced); the writer then checkpoints itself
/// after its next commit, and the checkpointer tries again on a new connection.
pub(super) fn checkpoint_log(
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
pub(super) fn checkpoint(db: &Connection) -> Result<Option<i64>> {
    let (busy, frames): (i64, i64) = db.query_row("pragma wal_checkpoint(passive)", [], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })?;
    Ok((busy == 0 && frames >= 0).then_some(frames))
}
