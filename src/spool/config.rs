//! The spool's settings (`spool.*`, docs/configuration.md#spool).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::SpoolSettings;

/// The smallest `spool.max_bytes`: room for some notifications at the largest body size.
const MIN_SPOOL_BYTES: u64 = 1 << 20;
/// The longest `spool.commit_timeout_ms`.
const MAX_COMMIT_TIMEOUT_MS: u64 = 60_000;

/// The spool (`spool.*`, docs/configuration.md#spool): where notifications wait while the
/// database is away.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Unset: on for PostgreSQL, off for SQLite ([`SpoolConfig::settings`]).
    pub enabled: Option<bool>,
    /// The spool's file.
    pub path: PathBuf,
    /// The most bytes of spooled requests; once reached, `/notify` answers 503.
    pub max_bytes: u64,
    /// A store commit that takes longer is spooled instead.
    pub commit_timeout_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            path: PathBuf::from("calltrail-spool.db"),
            max_bytes: 1 << 30,
            commit_timeout_ms: 1000,
        }
    }
}

impl SpoolConfig {
    /// The spool's settings; `on_postgres` says whether the store is PostgreSQL. Unless
    /// `spool.enabled` says otherwise: on for PostgreSQL, a server that restarts and fails
    /// over; off for SQLite, whose file sits on the same disk as the spool's would
    /// (docs/design.md#the-spool).
    pub fn settings(&self, on_postgres: bool) -> SpoolSettings {
        SpoolSettings {
            enabled: self.enabled.unwrap_or(on_postgres),
            path: self.path.clone(),
            max_bytes: self.max_bytes,
            commit_timeout: Duration::from_millis(self.commit_timeout_ms),
        }
    }

    /// Checks the section; an error names the key at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let invalid = |key, message: &str| Err((key, message.to_owned()));
        if self.path.as_os_str().is_empty() {
            return invalid("spool.path", "must not be empty");
        }
        if self.max_bytes < MIN_SPOOL_BYTES {
            return invalid(
                "spool.max_bytes",
                &format!("must be at least {MIN_SPOOL_BYTES}"),
            );
        }
        if !(1..=MAX_COMMIT_TIMEOUT_MS).contains(&self.commit_timeout_ms) {
            return invalid(
                "spool.commit_timeout_ms",
                &format!("must be between 1 and {MAX_COMMIT_TIMEOUT_MS}"),
            );
        }
        Ok(())
    }
}
