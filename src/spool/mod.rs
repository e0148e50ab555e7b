//! The spool: when the store cannot commit a notification promptly, the request as received
//! is synced to a local file and answered `200 spooled`; a background task replays the file
//! into the store once it answers again (docs/design.md#the-spool,
//! docs/operations.md#the-spool).

mod config;
mod file;
mod gate;
mod intake;
mod replay;

use std::path::PathBuf;
use std::time::Duration;

pub use config::SpoolConfig;
pub use file::{Depth, NewRecord, Record, Spool, SpoolError};
pub use intake::{Intake, IntakeError, Received};
pub use replay::start as start_replay;

/// How the spool is set up (`spool.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    /// Off: a notification the store cannot take is answered `503`.
    pub enabled: bool,
    /// The spool's file.
    pub path: PathBuf,
    /// Once the spooled records take this many bytes, new ones are refused with `503`.
    pub max_bytes: u64,
    /// A store commit that takes longer is spooled instead (the write goes on; the replay
    /// leaves out a write that ended up committed).
    pub commit_timeout: Duration,
}

#[cfg(test)]
mod tests;
