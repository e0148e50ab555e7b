//! SQLite: dial-outs.

use sqlx::query::QueryAs;
use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::types::Json;

use super::super::Result;
use super::super::dialouts::{
    self, DIALOUT_COLUMNS, DialoutCursor, DialoutFilter, DialoutFinish, DialoutRow, Inserted,
    NewDialout, metadata_column, mode_column,
};
use super::super::query::{self, Arg, Dialect, Page, Sql};
use super::{SqliteStore, utc_text};
use crate::dialout::Dialout;

fn bound<'q>(sql: &'q Sql) -> QueryAs<'q, Sqlite, DialoutRow, SqliteArguments<'q>> {
    sql.args
        .iter()
        .fold(sqlx::query_as(&sql.text), |query, arg| match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
            Arg::Time(time) => query.bind(utc_text(*time)),
        })
}

impl SqliteStore {
    /// Stores a pending dial-out, or finds the one already stored under its idempotency key.
    #[tracing::instrument(name = "sqlite.insert_dialout", skip_all)]
    pub async fn insert_dialout(&self, new: &NewDialout<'_>) -> Result<Inserted> {
        let request = new.request;
        let row: Option<DialoutRow> = sqlx::query_as(&format!(
            "insert into dialouts (state, target, caller, trunk, metadata, timers, machine_detection,
                                   threshold_word_count, idempotency_key, request_hash, requested_at)
             values ('pending', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             on conflict (idempotency_key) do nothing
             returning {DIALOUT_COLUMNS}"
        ))
        .bind(&request.target)
        .bind(&request.caller)
        .bind(&request.trunk)
        .bind(metadata_column(request))
        .bind(Json(&request.timers))
        .bind(mode_column(request))
        .bind(request.threshold_word_count.map(i64::from))
        .bind(new.idempotency_key)
        .bind(new.request_hash)
        .bind(utc_text(new.requested_at))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Inserted::New(row.try_into()?));
        }
        let existing: DialoutRow = sqlx::query_as(&format!(
            "select {DIALOUT_COLUMNS} from dialouts where idempotency_key = ?1"
        ))
        .bind(new.idempotency_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(Inserted::Existing(existing.try_into()?))
    }

    /// Records what the gateway made of a pending dial-out.
    #[tracing::instrument(name = "sqlite.finish_dialout", skip(self, finish))]
    pub async fn finish_dialout(&self, id: i64, finish: &DialoutFinish) -> Result<Dialout> {
        let row: DialoutRow = sqlx::query_as(&format!(
            "update dialouts
             set state = ?2, sid = ?3, call_id = ?4, attempts = ?5, gateway_status = ?6,
                 gateway_body = ?7, error = ?8, completed_at = ?9
             where id = ?1
             returning {DIALOUT_COLUMNS}"
        ))
        .bind(id)
        .bind(finish.state.as_str())
        .bind(&finish.sid)
        .bind(&finish.call_id)
        .bind(finish.attempts)
        .bind(finish.gateway_status.map(i32::from))
        .bind(&finish.gateway_body)
        .bind(&finish.error)
        .bind(utc_text(finish.completed_at))
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    /// One dial-out.
    #[tracing::instrument(name = "sqlite.dialout", skip(self))]
    pub async fn dialout(&self, id: i64) -> Result<Option<Dialout>> {
        let row: Option<DialoutRow> = sqlx::query_as(&format!(
            "select {DIALOUT_COLUMNS} from dialouts where id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Dialout::try_from).transpose()
    }

    /// A page of dial-outs, newest first.
    #[tracing::instrument(name = "sqlite.list_dialouts", skip_all)]
    pub async fn list_dialouts(
        &self,
        filter: &DialoutFilter,
        after: Option<&DialoutCursor>,
        limit: u32,
    ) -> Result<Page<Dialout, DialoutCursor>> {
        let sql = dialouts::list(Dialect::Sqlite, filter, after, limit);
        let rows = bound(&sql).fetch_all(&self.pool).await?;
        let items = rows
            .into_iter()
            .map(Dialout::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(query::page_of(items, limit, dialouts::cursor))
    }

    /// The dial-outs whose `call_id` or `sid` is one of `conversation_ids`.
    #[tracing::instrument(name = "sqlite.dialouts_of_calls", skip_all)]
    pub async fn dialouts_of_calls(&self, conversation_ids: &[&str]) -> Result<Vec<Dialout>> {
        let sql = dialouts::links(Dialect::Sqlite, conversation_ids);
        let rows = bound(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(Dialout::try_from).collect()
    }
}
