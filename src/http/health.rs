//! Liveness and readiness (docs/operations.md).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::Serialize;
use tokio::sync::watch;
use utoipa_axum::routes;

use super::error::{ApiError, Result};
use super::openapi::Routes;
use super::openapi::responses::{Internal, Unavailable};
use crate::spool::Intake;
use crate::store::Store;

/// Whether the schema is in place, so that the store can take requests.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<watch::Sender<bool>>);

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Readiness {
    /// Marks the store as migrated and ready.
    pub fn set_ready(&self) {
        self.0.send_replace(true);
    }

    /// True once migrations have been applied.
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Follows readiness: for what waits for the store.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
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
    /// Where notifications go now: `database`, or `spool` while the database is away or
    /// the spool's backlog is being replayed into it.
    #[schema(schema_with = super::openapi::schema::accepting)]
    pub accepting: &'static str,
    /// The spool; absent when `spool.enabled` is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub spool: Option<SpoolState>,
}

/// What the spool holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpoolState {
    /// Notifications waiting to be replayed into the database.
    pub depth: u64,
    /// The bytes they take, counted against `spool.max_bytes`.
    pub bytes: u64,
    /// Seconds since the oldest of them was received; absent when the spool is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub oldest_age_s: Option<f64>,
    /// False when the spool cannot take a notification (full, or its file cannot be
    /// written).
    pub accepts: bool,
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

/// Readiness: 200 while notifications can be accepted, by the database (its schema in
/// place and answering) or by the spool; the body says which. Else 503.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to take notifications.", body = Ready),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn readyz(
    State(readiness): State<Readiness>,
    State(store): State<Store>,
    State(intake): State<Intake>,
) -> Result<Json<Ready>> {
    let spool = intake.spool().map(|spool| {
        let depth = spool.depth();
        SpoolState {
            depth: depth.records,
            bytes: depth.bytes,
            oldest_age_s: depth
                .oldest
                .map(|at| (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0),
            accepts: spool.accepts(),
        }
    });
    let database = if intake.is_spooling() {
        Err(ApiError::Unavailable)
    } else {
        match readiness.check() {
            Ok(()) => store.ping().await.map_err(ApiError::from),
            Err(err) => Err(err),
        }
    };
    let accepting = match database {
        Ok(()) => "database",
        Err(_) if spool.as_ref().is_some_and(|s| s.accepts) => "spool",
        Err(err) => return Err(err),
    };
    Ok(Json(Ready {
        status: "ready",
        database: store.backend(),
        accepting,
        spool,
    }))
}
