//! The syncer: the thread that syncs the write-ahead log once for every commit made before
//! it began, and only then lets those commits be answered (see [`super`]).

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use crate::store::{Result, StoreError};

/// A commit waiting for the syncer: the log it was written to, and whom to tell once the
/// log is on disk.
pub(super) struct Commit {
    pub log: Arc<File>,
    pub synced: oneshot::Sender<Result<()>>,
}

/// The syncer: waits for a commit, takes every other one made meanwhile, syncs their log
/// once for all of them and tells them; until the writer is gone. After a failed sync,
/// the writer records nothing more (see [`super::Threads::failed_sync`]).
pub(super) fn sync_commits(committed: mpsc::Receiver<Commit>, failed_sync: &AtomicBool) {
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
