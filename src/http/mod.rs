//! The HTTP surface: one router per resource, merged, over one cloneable [`AppState`].

pub mod auth;
mod calls;
mod deliveries;
mod dialouts;
pub mod error;
mod gateways;
pub mod health;
mod notify;
pub mod openapi;
mod params;
mod receipt;
pub mod signed;
mod stats;
mod trace;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::FromRef;
use axum::middleware;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::dialout::Dialer;
use crate::ingest::Ingest;
use crate::reprocess::Reprocessor;
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
    /// Each source's signing secrets.
    pub signatures: signed::Signatures,
    /// Requests turned away for a missing, wrong or stale signature.
    pub bad_signatures: Arc<AtomicU64>,
}

/// Shared by every handler; handlers take only the parts they use.
#[derive(Debug, Clone, FromRef)]
pub struct AppState {
    pub ingest: Ingest,
    pub store: Store,
    pub notify: NotifyGuard,
    pub api_keys: Secrets,
    pub readiness: Readiness,
    pub reprocessor: Reprocessor,
    pub dialer: Dialer,
}

/// The whole application's routes with their middleware.
pub fn router(state: AppState) -> Router {
    let (routes, document) = routes(state.api_keys.clone()).split_for_parts();
    let routes = routes
        .layer(openapi::serve_document(&document))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state);
    trace::layer(routes)
}

/// The OpenAPI document of every route [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes(Secrets::new::<&str>(&[])).into_openapi()
}

/// Every route with its documentation (see [`openapi::Routes`]); `/v1` behind the API key,
/// in the code and in the document alike.
fn routes(api_keys: Secrets) -> OpenApiRouter<AppState> {
    let mut api = calls::router()
        .merge(stats::router())
        .merge(deliveries::router())
        .merge(dialouts::router())
        .into_router()
        .route_layer(middleware::from_fn_with_state(
            api_keys,
            auth::require_api_key,
        ));
    openapi::require_api_key(api.get_openapi_mut());
    let routes = notify::router()
        .merge(gateways::router())
        .merge(health::router())
        .merge(openapi::router())
        .into_router();
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes)
        .nest("/v1", api)
}
