//! The HTTP surface: one router per resource, merged, over one cloneable [`AppState`].

pub mod auth;
mod calls;
pub mod connection;
mod dashboard;
mod deliveries;
mod dialouts;
pub mod error;
pub(crate) mod extract;
mod gateways;
pub mod health;
pub mod metrics;
mod notify;
pub mod openapi;
mod params;
mod receipt;
pub mod signed;
mod stats;
mod timeout;
mod trace;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::middleware;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::dialer::Dialer;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::reprocess::Reprocessor;
use crate::spool::Intake;
use crate::store::Store;
use auth::Secrets;
use health::Readiness;

/// What `/notify` needs besides the pipeline.
#[derive(Debug, Clone)]
pub struct NotifyGuard {
    pub tokens: Secrets,
    pub max_body_bytes: usize,
    /// How long a body may take to arrive once its headers have.
    pub body_timeout: Duration,
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
    /// The store with the spool behind it: where `/notify` hands its bodies.
    pub intake: Intake,
    pub store: Store,
    pub notify: NotifyGuard,
    pub api_keys: Secrets,
    pub readiness: Readiness,
    pub reprocessor: Reprocessor,
    pub dialer: Dialer,
    pub metrics: Metrics,
    pub scrape: metrics::Scrape,
    pub routing: Routing,
}

/// How the routes are assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routing {
    /// How long a `/v1` handler may take until its response head.
    pub api_timeout: Duration,
    /// Where `/metrics` is served.
    pub metrics: MetricsRoute,
}

/// Where `/metrics` is served, and to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsRoute {
    /// On the main listener, behind `api.keys`.
    Protected,
    /// On the main listener, to anyone (`metrics.public = true`).
    Public,
    /// Only on `metrics.bind` ([`metrics_router`]), behind `api.keys` unless public.
    Elsewhere { public: bool },
}

/// The whole application's routes with their middleware.
pub fn router(state: AppState) -> Router {
    let (routes, document) = routes(&state).split_for_parts();
    let routes = routes
        .layer(openapi::serve_document(&document))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    finish(routes, state)
}

/// The routes of `metrics.bind`: `/metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    let public = matches!(
        state.routing.metrics,
        MetricsRoute::Elsewhere { public: true }
    );
    let (routes, _) = metrics_routes(&state, public).split_for_parts();
    let routes = routes
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed);
    finish(routes, state)
}

/// The middleware every request goes through, outermost last: metrics by route, request
/// ids and logs. (Each connection marks its requests in flight around all of it: see
/// [`connection::Tracked`].)
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    let routes = routes
        .layer(metrics::RecordLayer(state.metrics.clone()))
        .with_state(state);
    trace::layer(routes)
}

/// The OpenAPI document of every route [`router`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes(
        &Secrets::new::<&str>(&[]),
        Duration::MAX,
        MetricsRoute::Protected,
    )
    .into_openapi()
}

fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    documented_routes(
        &state.api_keys,
        state.routing.api_timeout,
        state.routing.metrics,
    )
}

/// Every route with its documentation (see [`openapi::Routes`]); `/v1` behind the API key
/// and a time limit, in the code and in the document alike.
fn documented_routes(
    api_keys: &Secrets,
    api_timeout: Duration,
    metrics_route: MetricsRoute,
) -> OpenApiRouter<AppState> {
    let mut api = calls::router()
        .merge(stats::router())
        .merge(deliveries::router())
        .merge(dialouts::router())
        .into_router()
        .route_layer(middleware::from_fn_with_state(
            timeout::ApiTimeout(api_timeout),
            timeout::limit,
        ))
        .route_layer(middleware::from_fn_with_state(
            api_keys.clone(),
            auth::require_api_key,
        ));
    openapi::require_api_key(api.get_openapi_mut());
    let routes = notify::router()
        .merge(gateways::router())
        .merge(health::router())
        .merge(openapi::router())
        .merge(dashboard::router())
        .into_router();
    let routes = match metrics_route {
        MetricsRoute::Protected => routes.merge(protected_metrics(api_keys)),
        MetricsRoute::Public => routes.merge(metrics::router().into_router()),
        MetricsRoute::Elsewhere { .. } => routes,
    };
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes)
        .nest("/v1", api)
}

fn metrics_routes(state: &AppState, public: bool) -> OpenApiRouter<AppState> {
    if public {
        metrics::router().into_router()
    } else {
        protected_metrics(&state.api_keys)
    }
}

fn protected_metrics(api_keys: &Secrets) -> OpenApiRouter<AppState> {
    metrics::router()
        .into_router()
        .route_layer(middleware::from_fn_with_state(
            api_keys.clone(),
            auth::require_api_key,
        ))
}
