//! `GET /metrics` and the figures of every request behind it
//! (docs/operations.md#metrics).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::AppState;
use super::connection::OpenConnections;
use super::openapi::Routes;
use super::openapi::responses::Unauthorized;
use crate::metrics::{
    HTTP_CONNECTIONS, HTTP_CONNECTIONS_MAX, Metrics, QUEUE_CAPACITY, QUEUE_DEPTH, method_label,
};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/metrics` reads besides the registry: figures sampled when it is scraped.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub metrics: Metrics,
    /// The main listener's connections; `None` when not served through one (tests).
    pub connections: Option<OpenConnections>,
}

pub fn router() -> Routes {
    Routes::new().routes(routes!(metrics))
}

/// Metrics in the Prometheus text format.
///
/// Counters, gauges and histograms named `calltrail_…` (docs/operations.md#metrics). Behind
/// `api.keys` like `/v1`, unless `metrics.public = true`; not served here when `metrics.bind`
/// names an address of its own.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(("api_key" = []), ("api_key_header" = [])),
    responses(
        (status = 200, description = "The Prometheus text format, version 0.0.4.", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, response = Unauthorized),
    ),
)]
async fn metrics(State(state): State<AppState>) -> Response {
    let Scrape {
        metrics,
        connections,
    } = &state.scrape;
    if let Some((depth, capacity)) = state.ingest.queue_depth() {
        metrics.set(QUEUE_DEPTH, &[], depth as f64);
        metrics.set(QUEUE_CAPACITY, &[], capacity as f64);
    }
    if let Some(connections) = connections {
        metrics.set(HTTP_CONNECTIONS, &[], connections.open() as f64);
        metrics.set(HTTP_CONNECTIONS_MAX, &[], connections.max() as f64);
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// Counts each request by its route template (never its path: tokens live in paths),
/// method and status class, and times it until its response head.
pub async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_label(request.method().as_str());
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.http_request(route, method, response.status().as_u16(), started.elapsed());
    response
}
