//! Retention (docs/operations.md#retention): a background task that deletes calls older
//! than `retention.days` with everything that belongs to them, and rejected deliveries
//! older than `retention.rejected_days`, in short steps that leave the group-commit
//! writer room between them.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::metrics::{Metrics, RETENTION_DELETED};
use crate::store::{Purged, Result, Store};

/// How often retention runs after its first run, which follows the migrations at start.
pub const EVERY: Duration = Duration::from_secs(3600);

/// The largest `retention.batch_size`.
pub const MAX_BATCH_SIZE: u32 = 10_000;

/// The `[retention]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Calls that occurred longer ago than this many days are deleted, with their events,
    /// deliveries and dial-outs; unset keeps everything.
    pub days: Option<u32>,
    /// Rejected deliveries (which belong to no call) received longer ago than this many
    /// days are deleted; unset: as `days`.
    pub rejected_days: Option<u32>,
    /// Calls (or rejected deliveries, or dial-outs) deleted per transaction.
    pub batch_size: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            days: None,
            rejected_days: None,
            batch_size: 500,
        }
    }
}

impl RetentionSettings {
    /// Whether anything is ever deleted.
    pub fn enabled(&self) -> bool {
        self.days.or(self.rejected_days).is_some()
    }

    /// Checks the values, naming the key at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, days) in [
            ("retention.days", self.days),
            ("retention.rejected_days", self.rejected_days),
        ] {
            if days == Some(0) {
                return Err((
                    key,
                    "must be at least 1 (leave it unset to keep everything)".into(),
                ));
            }
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err((
                "retention.batch_size",
                format!("must be between 1 and {MAX_BATCH_SIZE}"),
            ));
        }
        Ok(())
    }

    /// What is old at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        let before = |days: u32| now - TimeDelta::days(i64::from(days));
        Cutoffs {
            calls: self.days.map(before),
            rejected: self.rejected_days.or(self.days).map(before),
        }
    }
}

/// The instants before which records are deleted; `None` keeps that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Calls that occurred before it, and dial-outs requested before it that no stored call
    /// belongs to.
    pub calls: Option<DateTime<Utc>>,
    /// Rejected deliveries received before it.
    pub rejected: Option<DateTime<Utc>>,
}

/// What one run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Calls, and their events, deliveries and dial-outs.
    pub calls: Purged,
    /// Dial-outs that no stored call belongs to.
    pub unclaimed_dialouts: u64,
    pub rejected_deliveries: u64,
}

/// The retention task's work: cheap to clone.
#[derive(Debug, Clone)]
pub struct Retention {
    store: Store,
    batch_size: u32,
    metrics: Metrics,
}

impl Retention {
    pub fn new(store: Store, settings: &RetentionSettings, metrics: Metrics) -> Self {
        Self {
            store,
            batch_size: settings.batch_size,
            metrics,
        }
    }

    /// Runs now (call after the migrations), then every [`EVERY`], for ever; a failed
    /// run is logged and tried again at the next hour.
    pub async fn run_hourly(self, settings: RetentionSettings) {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let started = std::time::Instant::now();
            match self.run_once(settings.cutoffs(Utc::now())).await {
                Ok(removed) => tracing::info!(
                    calls = removed.calls.calls,
                    events = removed.calls.events,
                    deliveries = removed.calls.deliveries,
                    dialouts = removed.calls.dialouts + removed.unclaimed_dialouts,
                    rejected_deliveries = removed.rejected_deliveries,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention removed old records"
                ),
                Err(err) => tracing::error!(
                    error = %crate::http::error::DisplayChain(&err),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "retention failed; it runs again in an hour"
                ),
            }
        }
    }

    /// Deletes everything older than `cutoffs`, one short transaction after the other, each
    /// followed by a pause as long as it took, so that the group-commit writer has the
    /// database at least half of the time. What each step deleted is counted in the
    /// metrics as it commits.
    pub async fn run_once(&self, cutoffs: Cutoffs) -> Result<Removed> {
        let mut removed = Removed::default();
        if let Some(before) = cutoffs.calls {
            loop {
                let started = tokio::time::Instant::now();
                let step = self.store.purge_calls(before, self.batch_size).await?;
                self.count(&[
                    ("calls", step.calls),
                    ("events", step.events),
                    ("deliveries", step.deliveries),
                    ("dialouts", step.dialouts),
                ]);
                removed.calls += step;
                if step.calls < u64::from(self.batch_size) {
                    break;
                }
                tokio::time::sleep(started.elapsed()).await;
            }
            loop {
                let started = tokio::time::Instant::now();
                let step = self
                    .store
                    .purge_unclaimed_dialouts(before, self.batch_size)
                    .await?;
                self.count(&[("dialouts", step)]);
                removed.unclaimed_dialouts += step;
                if step < u64::from(self.batch_size) {
                    break;
                }
                tokio::time::sleep(started.elapsed()).await;
            }
        }
        if let Some(before) = cutoffs.rejected {
            loop {
                let started = tokio::time::Instant::now();
                let step = self
                    .store
                    .purge_rejected_deliveries(before, self.batch_size)
                    .await?;
                self.count(&[("rejected_deliveries", step)]);
                removed.rejected_deliveries += step;
                if step < u64::from(self.batch_size) {
                    break;
                }
                tokio::time::sleep(started.elapsed()).await;
            }
        }
        Ok(removed)
    }

    fn count(&self, deleted: &[(&'static str, u64)]) {
        for &(kind, n) in deleted {
            if n > 0 {
                self.metrics.add(RETENTION_DELETED, &[("kind", kind)], n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_deliveries_follow_days_unless_they_have_their_own() {
        let now: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let mut settings = RetentionSettings::default();
        assert!(!settings.enabled());
        assert_eq!(
            settings.cutoffs(now),
            Cutoffs {
                calls: None,
                rejected: None
            }
        );
        settings.days = Some(90);
        let ninety = Some("2026-09-02T00:00:00Z".parse().unwrap());
        assert_eq!(settings.cutoffs(now).calls, ninety);
        assert_eq!(settings.cutoffs(now).rejected, ninety);
        settings.rejected_days = Some(7);
        assert_eq!(
            settings.cutoffs(now).rejected,
            Some("2026-11-24T00:00:00Z".parse().unwrap())
        );
        settings.days = None;
        assert!(settings.enabled());
        assert_eq!(settings.cutoffs(now).calls, None);
    }

    #[test]
    fn zero_days_and_batches_out_of_range_are_refused() {
        let bad = [
            RetentionSettings {
                days: Some(0),
                ..Default::default()
            },
            RetentionSettings {
                rejected_days: Some(0),
                ..Default::default()
            },
            RetentionSettings {
                batch_size: 0,
                ..Default::default()
            },
            RetentionSettings {
                batch_size: MAX_BATCH_SIZE + 1,
                ..Default::default()
            },
        ];
        for settings in bad {
            assert!(settings.validate().is_err(), "{settings:?}");
        }
        assert!(RetentionSettings::default().validate().is_ok());
    }
}
