//! The HTTP surface: one router per resource, merged, over one cloneable [`AppState`].

pub mod auth;
mod calls;
pub mod error;
pub mod health;
mod notify;
mod trace;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::FromRef;
use axum::middleware;

use crate::ingest::Ingest;
use crate::store::Store;
use auth::Secrets;
use health::Readiness;

/// What `/notify` needs besides the pipeline.
#[derive(Debug, Clone)]
pub struct NotifyGuard {
    pub tokens: Secrets,
    pub max_body_bytes: usize,
    /// Requests turned away for a missing or wrong token.
    pub unauthorized: Arc<AtomicU64>,
}

/// Shared by every handler; handlers take only the parts they use.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub ingest: Ingest,
    pub store: Store,
    pub notify: NotifyGuard,
    pub api_keys: Secrets,
    pub readiness: Readiness,
}

/// The whole application's routes with their middleware.
pub fn router(state: AppState) -> Router {
    let api = calls::router().route_layer(middleware::from_fn_with_state(
        state.api_keys.clone(),
        auth::require_api_key,
    ));
    let routes = Router::new()
        .merge(notify::router())
        .merge(health::router())
        .nest("/v1", api)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state);
    trace::layer(routes)
}
