//! Liveness and readiness (CONTRACT §5).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, Result};
use crate::store::Store;

/// Whether the schema is in place, so that the store can take requests.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the store as migrated and ready.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once migrations have been applied.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Fails with 503 until migrations have been applied.
    pub fn check(&self) -> Result<()> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(ApiError::Unavailable)
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// 200 while the process runs.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when the schema is in place and the database answers, else 503.
async fn readyz(
    State(readiness): State<Readiness>,
    State(store): State<Store>,
) -> Result<Json<Value>> {
    readiness.check()?;
    store.ping().await?;
    Ok(Json(
        json!({ "status": "ready", "database": store.backend() }),
    ))
}
