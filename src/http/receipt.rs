//! The answer to a recorded body, shared by `POST /notify` and reprocessing: a `200`
//! receipt for a stored notification, a `400`/`422` problem for a rejected one.

use axum::Json;
use serde::Serialize;

use super::error::{ApiError, Result};
use crate::notification::{Notification, Rejection};
use crate::store::Recorded;

/// The `200` answer: the notification is durably stored, in the database or (`spooled`)
/// in the local spool, to be replayed into the database.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    #[schema(schema_with = super::openapi::schema::receipt_result)]
    pub result: &'static str,
    /// The delivery this body was stored as; absent when `spooled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub delivery_id: Option<i64>,
    /// The event; for a duplicate, the first copy's; absent when `spooled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub event_id: Option<i64>,
    /// The record in this calltrail's spool; only when `spooled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub spool_id: Option<i64>,
    pub conversation_id: String,
    /// What normalization noticed; only on `accepted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub warnings: Option<Vec<String>>,
}

/// What `/notify` answers for what the store did with a body.
pub fn answer(
    recorded: Recorded,
    parsed: Result<Notification, Rejection>,
) -> Result<Json<Receipt>> {
    match (recorded, parsed) {
        (
            Recorded::Accepted {
                delivery_id,
                event_id,
            },
            Ok(notification),
        ) => Ok(Json(Receipt {
            result: "accepted",
            delivery_id: Some(delivery_id),
            event_id: Some(event_id),
            spool_id: None,
            conversation_id: notification.event.conversation_id,
            warnings: Some(notification.event.warnings),
        })),
        (
            Recorded::Duplicate {
                delivery_id,
                event_id,
            },
            Ok(notification),
        ) => Ok(Json(Receipt {
            result: "duplicate",
            delivery_id: Some(delivery_id),
            event_id: Some(event_id),
            spool_id: None,
            conversation_id: notification.event.conversation_id,
            warnings: None,
        })),
        (Recorded::Rejected { delivery_id }, Err(rejection)) => {
            Err(ApiError::rejected(rejection, delivery_id))
        }
        (recorded, parsed) => Err(ApiError::Internal(anyhow::anyhow!(
            "store answered {recorded:?} for a parse result of {:?}",
            parsed.map(|_| "a notification")
        ))),
    }
}

/// What `/notify` answers for a body synced to the spool: `200 spooled` for a notification,
/// the same `400`/`422` problem as ever for a body that replaying will store as rejected
/// (without a `delivery_id`: it has none yet).
pub fn spooled(spool_id: i64, parsed: Result<Notification, Rejection>) -> Result<Json<Receipt>> {
    match parsed {
        Ok(notification) => Ok(Json(Receipt {
            result: "spooled",
            delivery_id: None,
            event_id: None,
            spool_id: Some(spool_id),
            conversation_id: notification.event.conversation_id,
            warnings: Some(notification.event.warnings),
        })),
        Err(rejection) => Err(ApiError::rejected_unstored(rejection)),
    }
}
