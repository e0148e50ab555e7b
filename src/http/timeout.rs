//! The `/v1` time limit (`api.timeout_ms`, docs/operations.md#slow-clients): a slow query
//! answers a problem instead of holding the socket. It bounds the time to the response
//! head, so a streamed export, whose rows follow the head, runs as long as it takes.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;

/// How long a `/v1` handler may take until its response head.
#[derive(Debug, Clone, Copy)]
pub struct ApiTimeout(pub Duration);

/// Answers `503` when the handler has not produced its response head in time. Placing a
/// dial-out is not limited here: it waits for the gateway, within `dialout.timeout_ms` and
/// its retries, and goes on even if its client leaves.
pub async fn limit(
    State(ApiTimeout(limit)): State<ApiTimeout>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if places_dialout(&request) {
        return Ok(next.run(request).await);
    }
    tokio::time::timeout(limit, next.run(request))
        .await
        .map_err(|_| {
            tracing::warn!(
                limit_ms = limit.as_millis(),
                "request cut off by api.timeout_ms"
            );
            ApiError::Timeout {
                limit_ms: limit.as_millis(),
            }
        })
}

fn places_dialout(request: &Request) -> bool {
    request.method() == Method::POST
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|path| path.as_str().ends_with("/dialouts"))
}
