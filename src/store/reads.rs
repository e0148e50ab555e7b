//! The query API's reads, written once for both backends (see [`super::db`]).

use super::columns::{CALL_COLUMNS, DELIVERY_COLUMNS, EVENT_COLUMNS};
use super::db::{Db, Tx};
use super::query::{self, CallCursor, CallFilter, DeliveryCursor, DeliveryFilter, Page};
use super::rows::{BreakdownDbRow, CallRow, DeliveryRow, EventRow, slot_row};
use super::{Delivery, Result, Store, StoreError, StoredEvent};
use crate::call::{self, Call, RecordedEvent};
use crate::stats::Aggregates;

impl Store {
    /// The call record and its events in received order; `None` for an unknown id.
    /// The call carries the dial-out it came from, if any (see [`Store::attach_dialouts`]).
    #[tracing::instrument(name = "store.call", skip(self))]
    pub async fn call(&self, conversation_id: &str) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        // One snapshot for the record and its events.
        let mut tx = self.db().begin_snapshot().await?;
        let Some(call) = select_call(&mut tx, conversation_id).await? else {
            return Ok(None);
        };
        let events = select_events(&mut tx, conversation_id).await?;
        tx.commit().await?;
        let events = events
            .into_iter()
            .map(StoredEvent::try_from)
            .collect::<Result<Vec<_>>>()?;
        let mut calls = [Call::try_from(call)?];
        self.attach_dialouts(&mut calls).await?;
        let [call] = calls;
        Ok(Some((call, events)))
    }

    /// One entry of the delivery log.
    #[tracing::instrument(name = "store.delivery", skip(self))]
    pub async fn delivery(&self, id: i64) -> Result<Option<Delivery>> {
        let db = self.db();
        let mut sql = db.sql(&format!(
            "select {DELIVERY_COLUMNS} from deliveries where id = "
        ));
        let p = sql.bind(id);
        sql.push(&p);
        let row: Option<DeliveryRow> = db.fetch_optional(&sql).await?;
        row.map(Delivery::try_from).transpose()
    }

    /// A page of calls, newest `occurred_at` first.
    #[tracing::instrument(name = "store.list_calls", skip_all)]
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        after: Option<&CallCursor>,
        limit: u32,
    ) -> Result<Page<Call, CallCursor>> {
        let db = self.db();
        let sql = query::list_calls(db.dialect(), filter, after, limit);
        let rows: Vec<CallRow> = db.fetch_all(&sql).await?;
        let calls = rows
            .into_iter()
            .map(Call::try_from)
            .collect::<Result<Vec<_>>>()?;
        let mut page = query::page_of(calls, limit, query::call_cursor);
        self.attach_dialouts(&mut page.items).await?;
        Ok(page)
    }

    /// The aggregates behind `GET /v1/stats`, read from one snapshot; quarter-hour slots
    /// only when `with_slots`.
    #[tracing::instrument(name = "store.aggregates", skip_all)]
    pub async fn aggregates(&self, filter: &CallFilter, with_slots: bool) -> Result<Aggregates> {
        let db = self.db();
        let mut tx = db.begin_snapshot().await?;
        let mut breakdown: Vec<BreakdownDbRow> = Vec::new();
        let mut durations: Vec<(i64, i64)> = Vec::new();
        let mut ring_times: Vec<(i64, i64)> = Vec::new();
        let mut slots: Vec<(i64, String, i64)> = Vec::new();
        for part in super::statistics::statistics(db.dialect(), filter) {
            breakdown.extend(tx.fetch_all::<BreakdownDbRow>(&part.breakdown).await?);
            durations.extend(tx.fetch_all::<(i64, i64)>(&part.durations).await?);
            ring_times.extend(tx.fetch_all::<(i64, i64)>(&part.ring_times).await?);
            if with_slots {
                slots.extend(
                    tx.fetch_all::<(i64, String, i64)>(&part.quarter_hours)
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
            ring_times,
            slots: slots.into_iter().map(slot_row).collect::<Result<_>>()?,
        })
    }

    /// A page of the delivery log, newest first.
    #[tracing::instrument(name = "store.list_deliveries", skip_all)]
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        after: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Page<Delivery, DeliveryCursor>> {
        let db = self.db();
        let sql = query::list_deliveries(db.dialect(), filter, after, limit);
        let rows: Vec<DeliveryRow> = db.fetch_all(&sql).await?;
        let deliveries = rows
            .into_iter()
            .map(Delivery::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(query::page_of(deliveries, limit, query::delivery_cursor))
    }

    /// The backend's pool, for the statements written once.
    pub(super) fn db(&self) -> Db<'_> {
        match self {
            Store::Sqlite(s) => Db::Sqlite(&s.pool),
            Store::Postgres(s) => Db::Postgres(&s.pool),
        }
    }
}

async fn select_call(tx: &mut Tx, conversation_id: &str) -> Result<Option<CallRow>> {
    let mut sql = tx.sql(&format!(
        "select {CALL_COLUMNS} from calls where conversation_id = "
    ));
    let p = sql.bind(conversation_id);
    sql.push(&p);
    tx.fetch_optional(&sql).await
}

/// A call's events in received order.
async fn select_events(tx: &mut Tx, conversation_id: &str) -> Result<Vec<EventRow>> {
    tx.fetch_all(&events_of(tx, conversation_id)).await
}

fn events_of(tx: &Tx, conversation_id: &str) -> super::sql::Sql {
    let mut sql = tx.sql(&format!(
        "select {EVENT_COLUMNS} from events where conversation_id = "
    ));
    let p = sql.bind(conversation_id);
    sql.push(&p).push(" order by received_at, id");
    sql
}

/// Folds all events of the call again and writes the result over its record, in a write
/// transaction.
pub(super) async fn refold_call(tx: &mut Tx, conversation_id: &str) -> Result<()> {
    // Planned at each run: see `Sql::planned_per_run`.
    let sql = events_of(tx, conversation_id).planned_per_run();
    let events = tx
        .fetch_all::<EventRow>(&sql)
        .await?
        .into_iter()
        .map(|row| StoredEvent::try_from(row).map(|stored| stored.recorded))
        .collect::<Result<Vec<RecordedEvent>>>()?;
    let call = call::fold(&events)
        .ok_or_else(|| StoreError::Corrupt(format!("call {conversation_id:?} has no events")))?;
    tx.upsert_calls(std::slice::from_ref(&call)).await
}
