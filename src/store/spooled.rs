//! What the spool's replay asks of the store, written once for both backends (see
//! [`super::db`]): which bodies are stored already, and marking the replayed ones.

use chrono::{DateTime, Utc};

use super::sql::{Arg, Sql};
use super::{Result, Store};

/// A stored delivery's receipt time and bytes: what a spooled record is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBody {
    pub delivery_id: i64,
    pub received_at: DateTime<Utc>,
    pub body: Vec<u8>,
}

/// Deliveries marked per statement: 2 parameters each, well under SQLite's 32,766.
const MARKS_PER_STATEMENT: usize = 1000;

impl Store {
    /// The deliveries received at any of `times`: how the spool's replay recognizes a body
    /// that is already stored.
    #[tracing::instrument(name = "store.deliveries_received_at", skip_all, fields(times = times.len()))]
    pub async fn deliveries_received_at(&self, times: &[DateTime<Utc>]) -> Result<Vec<StoredBody>> {
        if times.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db();
        let mut sql = db.sql("select id, received_at, body from deliveries where true");
        sql.push_in("received_at", times.iter().map(|at| Arg::Time(*at)));
        let rows: Vec<(i64, DateTime<Utc>, Vec<u8>)> = db.fetch_all(&sql).await?;
        Ok(rows
            .into_iter()
            .map(|(delivery_id, received_at, body)| StoredBody {
                delivery_id,
                received_at,
                body,
            })
            .collect())
    }

    /// Sets `spooled_at` of deliveries replayed from the spool: `(delivery id, spooled at)`,
    /// in one transaction.
    #[tracing::instrument(name = "store.mark_spooled", skip_all, fields(marks = marks.len()))]
    pub async fn mark_spooled(&self, marks: &[(i64, DateTime<Utc>)]) -> Result<()> {
        if marks.is_empty() {
            return Ok(());
        }
        let mut tx = self.db().begin_write().await?;
        for chunk in marks.chunks(MARKS_PER_STATEMENT) {
            tx.execute(&mark(tx.sql(""), chunk)).await?;
        }
        tx.commit().await
    }
}

/// `update deliveries set spooled_at = case id when … then … end where id in (…)`.
fn mark(mut sql: Sql, marks: &[(i64, DateTime<Utc>)]) -> Sql {
    sql.push("update deliveries set spooled_at = case id");
    for (id, spooled_at) in marks {
        let id = sql.bind(*id);
        let at = sql.bind(*spooled_at);
        sql.push(&format!(" when {id} then {at}"));
    }
    sql.push(" end where true");
    sql.push_in("id", marks.iter().map(|(id, _)| Arg::Int(*id)));
    sql
}
