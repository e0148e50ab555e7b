//! PostgreSQL: what the spool's replay asks of the store.

use chrono::{DateTime, Utc};

use super::super::Result;
use super::PgStore;

impl PgStore {
    /// `(id, received_at, body)` of the deliveries received at any of `times`.
    pub async fn deliveries_received_at(
        &self,
        times: &[DateTime<Utc>],
    ) -> Result<Vec<(i64, DateTime<Utc>, Vec<u8>)>> {
        let rows = sqlx::query_as(
            "select id, received_at, body from deliveries where received_at = any($1)",
        )
        .bind(times)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Sets each delivery's `spooled_at`.
    pub async fn mark_spooled(&self, marks: &[(i64, DateTime<Utc>)]) -> Result<()> {
        let ids: Vec<i64> = marks.iter().map(|(id, _)| *id).collect();
        let times: Vec<DateTime<Utc>> = marks.iter().map(|(_, at)| *at).collect();
        sqlx::query(
            "update deliveries as d set spooled_at = m.spooled_at
             from unnest($1::bigint[], $2::timestamptz[]) as m (id, spooled_at)
             where d.id = m.id",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
