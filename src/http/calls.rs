//! `GET /v1/calls/{conversation_id}`: one call with its events.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use super::error::{ApiError, Result};
use super::health::Readiness;
use crate::call::Call;
use crate::notification::Event;
use crate::store::{Store, StoredEvent};

pub fn router() -> Router<AppState> {
    Router::new().route("/calls/{conversation_id}", get(show))
}

/// A call and its events in received order.
#[derive(Debug, Serialize)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: Call,
    pub events: Vec<EventView>,
}

/// One event as the API shows it: normalized fields, when it arrived, and the payload.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub id: i64,
    #[serde(flatten)]
    pub event: Event,
    pub received_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

impl From<StoredEvent> for EventView {
    fn from(stored: StoredEvent) -> Self {
        Self {
            id: stored.recorded.id,
            event: stored.recorded.event,
            received_at: stored.recorded.received_at,
            payload: stored.payload,
        }
    }
}

async fn show(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    Path(conversation_id): Path<String>,
) -> Result<Json<CallDetail>> {
    readiness.check()?;
    let (call, events) = store.call(&conversation_id).await?.ok_or_else(|| {
        ApiError::NotFound(format!("no call with conversation_id `{conversation_id}`"))
    })?;
    Ok(Json(CallDetail {
        call,
        events: events.into_iter().map(EventView::from).collect(),
    }))
}
