//! Liveness and readiness (docs/operations.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::routes;

use super::error::{ApiError, Result};
use super::openapi::Routes;
use super::openapi::responses::{Internal, Unavailable};
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

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The answer of `/readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// The store in use: `sqlite` or `postgres`.
    pub database: &'static str,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs.", body = Health)),
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 when the schema is in place and the database answers, else 503.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to take requests.", body = Ready),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn readyz(
    State(readiness): State<Readiness>,
    State(store): State<Store>,
) -> Result<Json<Ready>> {
    readiness.check()?;
    store.ping().await?;
    Ok(Json(Ready {
        status: "ready",
        database: store.backend(),
    }))
}
