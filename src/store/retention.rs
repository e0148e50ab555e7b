//! Deleting what is older than the retention settings keep (docs/operations.md#retention),
//! written once for both backends (see [`super::db`]), one short transaction per step.
//!
//! A step of [`Store::purge_calls`] takes the oldest calls, takes them out of the
//! statistics tables and deletes them with their events, their deliveries (accepted and
//! duplicate, found through their events) and their dial-outs. On SQLite the step's
//! `begin immediate` waits for the group-commit writer's transaction to end and keeps it
//! waiting until the step commits; on PostgreSQL the step holds the calls' advisory
//! locks, which the writers take too, so a notification for a call being deleted is
//! recorded before the step or after it — then as a call of its own.

use chrono::{DateTime, Utc};

use super::db::Tx;
use super::sql::{Dialect, Sql};
use super::statistics::{COUNT_TABLES, CountTable, occurred_at_in, uncount_calls};
use super::{Result, Store};

/// What one step of [`Store::purge_calls`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub calls: u64,
    pub events: u64,
    /// Accepted and duplicate deliveries of the deleted calls.
    pub deliveries: u64,
    pub dialouts: u64,
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, other: Self) {
        self.calls += other.calls;
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.dialouts += other.dialouts;
    }
}

impl Store {
    /// Deletes up to `limit` of the oldest calls that occurred before `before`, with their
    /// events, deliveries and dial-outs, and takes them out of the statistics tables, in one
    /// transaction. Fewer than `limit` calls deleted means none older is left.
    #[tracing::instrument(name = "store.purge_calls", skip(self))]
    pub async fn purge_calls(&self, before: DateTime<Utc>, limit: u32) -> Result<Purged> {
        let db = self.db();
        let mut tx = db.begin_write().await?;
        let mut oldest = tx.sql("select conversation_id from calls where occurred_at < ");
        let cutoff = oldest.bind(before);
        let limit_placeholder = oldest.bind(i64::from(limit));
        oldest.push(&format!(
            "{cutoff} order by occurred_at limit {limit_placeholder}"
        ));
        let mut ids = ids_of(&mut tx, &oldest).await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Purged::default());
        }
        if tx.dialect() == Dialect::Postgres {
            // A writer may have changed a call between the read and the locks.
            tx.lock_calls(&ids).await?;
            let mut still_old =
                tx.sql("select conversation_id from calls where conversation_id in (");
            let list = still_old.bind_text_rows(&ids);
            let cutoff = still_old.bind(before);
            still_old.push(&format!("{list}) and occurred_at < {cutoff}"));
            ids = ids_of(&mut tx, &still_old).await?;
        }
        for statement in uncount_calls(tx.dialect(), &ids) {
            tx.execute(&statement).await?;
        }
        // The counter rows the deleted calls leave at zero (reads skip them, but they
        // would stay forever).
        for CountTable {
            name: table,
            time: (key, unit),
            ..
        } in &COUNT_TABLES
        {
            let mut zeros = tx.sql("");
            let list = zeros.bind_text_rows(&ids);
            zeros.push(&format!(
                "delete from {table} where calls = 0 and {key} in
                     (select distinct {} from calls where conversation_id in ({list}))",
                occurred_at_in(tx.dialect(), *unit)
            ));
            tx.execute(&zeros).await?;
        }
        let purged = Purged {
            deliveries: delete(
                &mut tx,
                &ids,
                "delete from deliveries where event_id in
                     (select id from events where conversation_id in ({list}))",
            )
            .await?,
            events: delete(
                &mut tx,
                &ids,
                "delete from events where conversation_id in ({list})",
            )
            .await?,
            dialouts: delete(
                &mut tx,
                &ids,
                "delete from dialouts where call_id in ({list}) or sid in ({list})",
            )
            .await?,
            calls: delete(
                &mut tx,
                &ids,
                "delete from calls where conversation_id in ({list})",
            )
            .await?,
        };
        tx.commit().await?;
        Ok(purged)
    }

    /// Deletes up to `limit` of the oldest rejected deliveries received before `before`, in
    /// one transaction, and returns how many.
    #[tracing::instrument(name = "store.purge_rejected_deliveries", skip(self))]
    pub async fn purge_rejected_deliveries(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        let mut tx = self.db().begin_write().await?;
        let mut sql = tx.sql("");
        let (cutoff, limit) = (sql.bind(before), sql.bind(i64::from(limit)));
        sql.push(&format!(
            "delete from deliveries where id in
                 (select id from deliveries
                  where result = 'rejected' and received_at < {cutoff}
                  order by received_at limit {limit})"
        ));
        let deleted = tx.execute_counted(&sql).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// Deletes up to `limit` of the oldest dial-outs requested before `before` that no
    /// stored call belongs to (never placed, or their call never reported), in one
    /// transaction, and returns how many. A dial-out whose call is stored goes with its
    /// call ([`Store::purge_calls`]).
    #[tracing::instrument(name = "store.purge_unclaimed_dialouts", skip(self))]
    pub async fn purge_unclaimed_dialouts(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        let mut tx = self.db().begin_write().await?;
        let mut sql = tx.sql("");
        let (cutoff, limit) = (sql.bind(before), sql.bind(i64::from(limit)));
        sql.push(&format!(
            "delete from dialouts where id in
                 (select d.id from dialouts as d
                  where d.requested_at < {cutoff}
                    and not exists (select 1 from calls as c where c.conversation_id = d.call_id)
                    and not exists (select 1 from calls as c where c.conversation_id = d.sid)
                  order by d.requested_at limit {limit})"
        ));
        let deleted = tx.execute_counted(&sql).await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

async fn ids_of(tx: &mut Tx, sql: &Sql) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = tx.fetch_all(sql).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Runs `statement` with `{list}` standing for the rows of `ids`, returning the rows
/// deleted.
async fn delete(tx: &mut Tx, ids: &[String], statement: &str) -> Result<u64> {
    let mut sql = tx.sql("");
    let list = sql.bind_text_rows(ids);
    sql.push(&statement.replace("{list}", &list));
    tx.execute_counted(&sql).await
}
