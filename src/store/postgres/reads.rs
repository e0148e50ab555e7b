//! PostgreSQL: the query API's reads and reprocessing.

use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::QueryAs;

use super::super::StoreError;
use super::super::query::{
    self, Arg, CallCursor, CallFilter, DeliveryCursor, DeliveryFilter, Dialect, Page, Sql,
};
use super::super::rows::sip_code_to_column;
use super::super::rows::{BreakdownDbRow, CallRow, DeliveryOutcome, DeliveryRow, slot_row};
use super::super::{Delivery, DeliveryResult, Recorded, Result};
use super::{PgStore, insert_event, lock_call, refold_call};
use crate::call::Call;
use crate::notification::{Notification, Rejection};
use crate::stats::Aggregates;
use sqlx::PgExecutor;
use sqlx::types::Json;

fn bound<'q, O>(sql: &'q Sql) -> QueryAs<'q, Postgres, O, PgArguments>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    sql.args
        .iter()
        .fold(sqlx::query_as(&sql.text), |query, arg| match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
            Arg::Time(time) => query.bind(time),
        })
}

impl PgStore {
    /// A page of calls, newest `occurred_at` first.
    #[tracing::instrument(name = "postgres.list_calls", skip_all)]
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        after: Option<&CallCursor>,
        limit: u32,
    ) -> Result<Page<Call, CallCursor>> {
        let sql = query::list_calls(Dialect::Postgres, filter, after, limit);
        let rows: Vec<CallRow> = bound(&sql).fetch_all(&self.pool).await?;
        let calls = rows
            .into_iter()
            .map(Call::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(query::page_of(calls, limit, query::call_cursor))
    }

    /// The aggregates behind the statistics, read from one snapshot.
    #[tracing::instrument(name = "postgres.aggregates", skip_all)]
    pub async fn aggregates(&self, filter: &CallFilter, with_slots: bool) -> Result<Aggregates> {
        let mut tx = self
            .pool
            .begin_with("begin transaction isolation level repeatable read, read only")
            .await?;
        let sqls = query::statistics(Dialect::Postgres, filter);
        let mut breakdown: Vec<BreakdownDbRow> = Vec::new();
        let mut durations: Vec<(i64, i64)> = Vec::new();
        let mut slots: Vec<(i64, String, i64)> = Vec::new();
        for query::StatisticsSql {
            breakdown: rows,
            durations: histogram,
            quarter_hours,
        } in &sqls
        {
            breakdown.extend(bound(rows).fetch_all(&mut *tx).await?);
            durations.extend(bound::<(i64, i64)>(histogram).fetch_all(&mut *tx).await?);
            if with_slots {
                slots.extend(
                    bound::<(i64, String, i64)>(quarter_hours)
                        .fetch_all(&mut *tx)
                        .await?,
                );
            }
        }
        tx.commit().await?;
        Ok(Aggregates {
            breakdown: breakdown
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
            durations,
            slots: slots.into_iter().map(slot_row).collect::<Result<_>>()?,
        })
    }

    /// A page of the delivery log, newest first.
    #[tracing::instrument(name = "postgres.list_deliveries", skip_all)]
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        after: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Page<Delivery, DeliveryCursor>> {
        let sql = query::list_deliveries(Dialect::Postgres, filter, after, limit);
        let rows: Vec<DeliveryRow> = bound(&sql).fetch_all(&self.pool).await?;
        let deliveries = rows
            .into_iter()
            .map(Delivery::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(query::page_of(deliveries, limit, query::delivery_cursor))
    }

    /// Applies a new parse of a stored delivery: the event is stored or updated in place,
    /// the call re-folded and the delivery's outcome rewritten, in one transaction.
    #[tracing::instrument(name = "postgres.reprocess", skip(self, parsed))]
    pub async fn reprocess(
        &self,
        delivery: &Delivery,
        parsed: &std::result::Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        let mut tx = self.begin_write().await?;
        let (outcome, refold) = match parsed {
            Err(rejection) => (DeliveryOutcome::rejected(rejection), None),
            Ok(notification) => {
                let conversation_id = notification.event.conversation_id.as_str();
                lock_call(&mut *tx, conversation_id).await?;
                let existing =
                    event_id_if_stored(&mut *tx, conversation_id, &notification.content_hash)
                        .await?;
                let (result, event_id) = match existing {
                    Some(id) => {
                        update_event(&mut *tx, id, notification).await?;
                        (super::super::reprocessed_result(delivery, id), id)
                    }
                    None => {
                        let id = insert_event(&mut *tx, notification, delivery.received_at)
                            .await?
                            .ok_or_else(|| {
                                StoreError::Corrupt("event appeared under lock".into())
                            })?;
                        (DeliveryResult::Accepted, id)
                    }
                };
                (
                    DeliveryOutcome::stored(result, conversation_id, event_id),
                    Some(conversation_id),
                )
            }
        };
        sqlx::query(
            "update deliveries
             set result = $2, error = $3, errors = $4, conversation_id = $5, event_id = $6
             where id = $1",
        )
        .bind(delivery.id)
        .bind(outcome.result.as_str())
        .bind(&outcome.error)
        .bind(outcome.errors)
        .bind(outcome.conversation_id)
        .bind(outcome.event_id)
        .execute(&mut *tx)
        .await?;
        if let Some(conversation_id) = refold {
            refold_call(&mut tx, conversation_id).await?;
        }
        tx.commit().await?;
        Ok(outcome.recorded(delivery.id))
    }
}

/// The id of the stored event with this content, if any.
async fn event_id_if_stored(
    db: impl PgExecutor<'_>,
    conversation_id: &str,
    content_hash: &str,
) -> Result<Option<i64>> {
    let id = sqlx::query_scalar(
        "select id from events where conversation_id = $1 and content_hash = $2",
    )
    .bind(conversation_id)
    .bind(content_hash)
    .fetch_optional(db)
    .await?;
    Ok(id)
}

/// Rewrites an event's normalized fields; its payload, hash and receipt time stay.
async fn update_event(db: impl PgExecutor<'_>, id: i64, notification: &Notification) -> Result<()> {
    let event = &notification.event;
    sqlx::query(
        "update events
         set status = $2, reason_code = $3, reason_code_raw = $4, reason = $5, sip_code = $6,
             sip_reason = $7, amd_mode = $8, amd_result = $9, duration_s = $10,
             connect_time = $11, disconnect_time = $12, warnings = $13
         where id = $1",
    )
    .bind(id)
    .bind(&event.status)
    .bind(&event.reason_code)
    .bind(&event.reason_code_raw)
    .bind(&event.reason)
    .bind(sip_code_to_column(event.sip_code))
    .bind(&event.sip_reason)
    .bind(event.amd_mode.map(|mode| mode.as_str()))
    .bind(event.amd_result.map(|result| result.as_str()))
    .bind(event.duration_s)
    .bind(event.connect_time)
    .bind(event.disconnect_time)
    .bind(Json(&event.warnings))
    .execute(db)
    .await?;
    Ok(())
}
