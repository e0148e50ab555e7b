//! Refilling the statistics tables when they do not count every call, at migration.

use super::statistics::{COUNTS_WRONG, rebuild_counts};
use super::{Result, Store};

impl Store {
    /// Refills the statistics tables from `calls` when they do not count every call (see
    /// [`COUNTS_WRONG`]), in one transaction that excludes every writer of calls: one
    /// instance counts, the others (and any write) wait, then find the counts there.
    pub(super) async fn count_calls_if_uncounted(&self) -> Result<()> {
        let db = self.db();
        let wrong = db.sql(COUNTS_WRONG);
        if !db.fetch_one::<(bool,)>(&wrong).await?.0 {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut tx = db.begin_exclusive_of_calls().await?;
        if tx.fetch_optional::<(bool,)>(&wrong).await? != Some((true,)) {
            return Ok(());
        }
        for statement in rebuild_counts(db.dialect()) {
            tx.execute(&db.sql(&statement)).await?;
        }
        tx.commit().await?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "refilled the statistics tables from the stored calls"
        );
        Ok(())
    }
}
