//! Reprocessing a stored delivery, written once for both backends (see [`super::db`]).

use super::columns::{EVENT_FIELD_LIST, EVENT_NORMALIZED_LIST, event_values, normalized_values};
use super::db::Tx;
use super::reads::refold_call;
use super::rows::DeliveryOutcome;
use super::sql::{Arg, Sql};
use super::{Delivery, DeliveryResult, Recorded, Result, Store, StoreError};
use crate::notification::{Notification, Rejection};

impl Store {
    /// Applies a new parse of a stored delivery, as if it had arrived now under today's
    /// rules: its event is stored or updated in place, its call re-folded, and its outcome
    /// rewritten, in one transaction.
    #[tracing::instrument(name = "store.reprocess", skip(self, parsed))]
    pub async fn reprocess(
        &self,
        delivery: &Delivery,
        parsed: &Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        let mut tx = self.db().begin_write().await?;
        let (outcome, refold) = match parsed {
            Err(rejection) => (DeliveryOutcome::rejected(rejection), None),
            Ok(notification) => {
                let conversation_id = notification.event.conversation_id.as_str();
                tx.lock_call(conversation_id).await?;
                let existing = event_id_if_stored(&mut tx, notification).await?;
                let (result, event_id) = match existing {
                    Some(id) => {
                        let sql = Sql::update(
                            tx.dialect(),
                            "events",
                            EVENT_NORMALIZED_LIST,
                            normalized_values(&notification.event)?,
                            ("id", id.into()),
                        );
                        tx.execute(&sql).await?;
                        (reprocessed_result(delivery, id), id)
                    }
                    None => {
                        let id = insert_event(&mut tx, notification, delivery).await?;
                        (DeliveryResult::Accepted, id)
                    }
                };
                (
                    DeliveryOutcome::stored(result, conversation_id, event_id),
                    Some(conversation_id),
                )
            }
        };
        let sql = Sql::update(
            tx.dialect(),
            "deliveries",
            &["result", "error", "errors", "conversation_id", "event_id"],
            vec![
                outcome.result.as_str().into(),
                outcome.error.as_deref().into(),
                Arg::json_or_null(outcome.errors.as_ref().map(|errors| errors.0).as_ref())?,
                outcome.conversation_id.into(),
                outcome.event_id.into(),
            ],
            ("id", delivery.id.into()),
        );
        tx.execute(&sql).await?;
        if let Some(conversation_id) = refold {
            refold_call(&mut tx, conversation_id).await?;
        }
        tx.commit().await?;
        Ok(outcome.recorded(delivery.id))
    }
}

/// The id of the stored event with this notification's content, if any.
async fn event_id_if_stored(tx: &mut Tx, notification: &Notification) -> Result<Option<i64>> {
    let mut sql = tx.sql("select id from events where conversation_id = ");
    let id = sql.bind(notification.event.conversation_id.as_str());
    let hash = sql.bind(notification.content_hash.as_str());
    sql.push(&format!("{id} and content_hash = {hash}"));
    Ok(tx.fetch_optional::<(i64,)>(&sql).await?.map(|(id,)| id))
}

/// Stores the event of a delivery whose content no stored event has.
async fn insert_event(
    tx: &mut Tx,
    notification: &Notification,
    delivery: &Delivery,
) -> Result<i64> {
    let mut sql = Sql::insert(
        tx.dialect(),
        "events",
        EVENT_FIELD_LIST,
        event_values(notification, delivery.received_at)?,
    );
    sql.push(" on conflict (conversation_id, content_hash) do nothing returning id");
    let (id,) = tx
        .fetch_optional::<(i64,)>(&sql)
        .await?
        .ok_or_else(|| StoreError::Corrupt("event appeared under lock".into()))?;
    Ok(id)
}

/// The outcome a reprocessed delivery gets when its event `event_id` is stored: accepted if
/// it was the delivery that stored it, else a duplicate of it.
fn reprocessed_result(delivery: &Delivery, event_id: i64) -> DeliveryResult {
    if delivery.result == DeliveryResult::Accepted && delivery.event_id == Some(event_id) {
        DeliveryResult::Accepted
    } else {
        DeliveryResult::Duplicate
    }
}
