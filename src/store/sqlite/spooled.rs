//! SQLite: what the spool's replay asks of the store.

use chrono::{DateTime, Utc};

use super::super::Result;
use super::{SqliteStore, utc_text};

impl SqliteStore {
    /// `(id, received_at, body)` of the deliveries received at any of `times`.
    pub async fn deliveries_received_at(
        &self,
        times: &[DateTime<Utc>],
    ) -> Result<Vec<(i64, DateTime<Utc>, Vec<u8>)>> {
        if times.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=times.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "select id, received_at, body from deliveries where received_at in ({})",
            placeholders.join(", ")
        );
        let rows = times
            .iter()
            .fold(sqlx::query_as(&sql), |query, at| query.bind(utc_text(*at)))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// Sets each delivery's `spooled_at`.
    pub async fn mark_spooled(&self, marks: &[(i64, DateTime<Utc>)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (id, spooled_at) in marks {
            sqlx::query("update deliveries set spooled_at = ?1 where id = ?2")
                .bind(utc_text(*spooled_at))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
