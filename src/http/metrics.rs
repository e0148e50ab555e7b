//! `GET /metrics` and the figures of every request behind it
//! (docs/operations.md#metrics).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use utoipa_axum::routes;

use super::AppState;
use super::connection::OpenConnections;
use super::openapi::Routes;
use super::openapi::responses::Unauthorized;
use crate::metrics::{
    HTTP_CONNECTIONS, HTTP_CONNECTIONS_MAX, Metrics, QUEUE_CAPACITY, QUEUE_DEPTH, SPOOL_BYTES,
    SPOOL_MAX_BYTES, SPOOL_OLDEST_AGE, SPOOL_RECORDS, method_label,
};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/metrics` samples when it is scraped, besides the registry.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The main listener's connections.
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
    let metrics = &state.metrics;
    let connections = &state.scrape.connections;
    if let Some((depth, capacity)) = state.ingest.queue_depth() {
        metrics.set(QUEUE_DEPTH, &[], depth as f64);
        metrics.set(QUEUE_CAPACITY, &[], capacity as f64);
    }
    if let Some(spool) = state.intake.spool() {
        let depth = spool.depth();
        metrics.set(SPOOL_RECORDS, &[], depth.records as f64);
        metrics.set(SPOOL_BYTES, &[], depth.bytes as f64);
        metrics.set(SPOOL_MAX_BYTES, &[], spool.max_bytes() as f64);
        let age = depth.oldest.map_or(0.0, |at| {
            (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
        });
        metrics.set(SPOOL_OLDEST_AGE, &[], age);
    }
    if let Some(connections) = connections {
        metrics.set(HTTP_CONNECTIONS, &[], connections.open() as f64);
        metrics.set(HTTP_CONNECTIONS_MAX, &[], connections.max() as f64);
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// Counts each request by its route template (never its path: tokens live in paths),
/// method and status class, and times it until its response head. A layer of every route,
/// where the matched route is known.
#[derive(Debug, Clone)]
pub struct RecordLayer(pub Metrics);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// See [`RecordLayer`].
#[derive(Debug, Clone)]
pub struct Record<S> {
    inner: S,
    metrics: Metrics,
}

impl<S> Service<Request> for Record<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = method_label(request.method().as_str());
        let metrics = self.metrics.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            let status = response.status().as_u16();
            metrics.http_request(route, method, status, started.elapsed());
            Ok(response)
        })
    }
}
