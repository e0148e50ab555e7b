//! The answer to a recorded body, shared by `POST /notify` and reprocessing: a `200`
//! receipt for a stored notification, a `400`/`422` problem for a rejected one.

use axum::Json;
use serde::Serialize;

use super::error::{ApiError, Result};
use crate::notification::{Notification, Rejection};
use crate::store::Recorded;

/// The `200` answer: the notification is durably stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    #[schema(schema_with = super::openapi::schema::receipt_result)]
    pub result: &'static str,
    /// The delivery this body was stored as.
    pub delivery_id: i64,
    /// The event; for a duplicate, the first copy's.
    pub event_id: i64,
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
            delivery_id,
            event_id,
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
            delivery_id,
            event_id,
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
