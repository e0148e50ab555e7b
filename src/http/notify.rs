//! `POST /notify` and `POST /notify/{token}` (CONTRACT §3): authenticate, read the body
//! within its limit, then hand it to the pipeline and answer only after the commit.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use http_body_util::BodyExt;
use serde::Deserialize;
use utoipa_axum::routes;

use super::auth::{bearer, header_value};
use super::error::{ApiError, DisplayChain, Result};
use super::openapi::Routes;
use super::openapi::responses::{
    BodyTooLarge, Internal, InvalidNotification, MalformedBody, Unauthorized, Unavailable,
};
use super::openapi::schema::GatewayNotification;
use super::receipt::{Receipt, answer, spooled};
use super::{AppState, NotifyGuard};
use crate::ingest::{IngestError, Ingested};
use crate::notification::Rejection;
use crate::spool::{Intake, IntakeError, Received};
use crate::store::Recorded;

/// The header a dial-out can ask the gateway to send through `notifyHeaders`.
pub const TOKEN_HEADER: &str = "x-calltrail-token";

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(notify))
        .routes(routes!(notify_with_path_token))
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Receive a call-status notification.
///
/// The body is one JSON object, accepted whatever its `Content-Type`. Every authenticated body
/// within the size limit is stored as a delivery, the rejected ones too; `200` is sent only
/// once the delivery and its event are durably committed. The same notification again (same
/// `conversationId`, same JSON content) is a `duplicate`: a new delivery, no second event.
/// While the database cannot take it, the body is synced to a local spool instead and
/// answered `spooled`; it is stored, with its received time, once the database is back.
#[utoipa::path(
    post,
    path = "/notify",
    operation_id = "notify",
    tag = "notify",
    request_body(
        description = "One notification; any content type.",
        content((GatewayNotification = "application/json"), (GatewayNotification = "*/*")),
    ),
    security(("notify_token" = []), ("notify_token_header" = []), ("notify_token_query" = [])),
    responses(
        (status = 200, description = "Stored, as `accepted` or `duplicate`; or, while the database is away, synced to the local spool as `spooled`, to be stored when it is back.", body = Receipt),
        (status = 400, response = MalformedBody),
        (status = 401, response = Unauthorized),
        (status = 413, response = BodyTooLarge),
        (status = 422, response = InvalidNotification),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn notify(
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    let query_token = query.ok().and_then(|Query(q)| q.token);
    receive(state, query_token.as_deref(), headers, body).await
}

/// Receive a call-status notification, with the token in the path.
///
/// The same as `POST /notify`, for a `notifyurl` that carries its token.
#[utoipa::path(
    post,
    path = "/notify/{token}",
    operation_id = "notify_with_path_token",
    tag = "notify",
    params(("token" = String, Path, description = "One of `notify.tokens`; logged as `***`.")),
    request_body(
        description = "One notification; any content type.",
        content((GatewayNotification = "application/json"), (GatewayNotification = "*/*")),
    ),
    security(()),
    responses(
        (status = 200, description = "Stored, as `accepted` or `duplicate`; or, while the database is away, synced to the local spool as `spooled`, to be stored when it is back.", body = Receipt),
        (status = 400, response = MalformedBody),
        (status = 401, response = Unauthorized),
        (status = 413, response = BodyTooLarge),
        (status = 422, response = InvalidNotification),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn notify_with_path_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    receive(state, Some(&token), headers, body).await
}

async fn receive(
    state: AppState,
    token: Option<&str>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    authenticate(&state.notify, token, &headers)?;
    let body = read_limited(body, &headers, state.notify.max_body_bytes).await?;
    let content_type = header_value(&headers, header::CONTENT_TYPE.as_str());
    ingest(&state.intake, body, content_type).await
}

/// Any one of the token sources may carry a configured token.
fn authenticate(guard: &NotifyGuard, token: Option<&str>, headers: &HeaderMap) -> Result<()> {
    if guard.tokens.is_open() {
        return Ok(());
    }
    let presented = [token, bearer(headers), header_value(headers, TOKEN_HEADER)];
    if presented
        .into_iter()
        .flatten()
        .any(|t| guard.tokens.accepts(t))
    {
        return Ok(());
    }
    let count = guard.unauthorized.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        unauthorized_total = count,
        "notification with a missing or wrong token turned away"
    );
    Err(ApiError::Unauthorized(
        "a valid notification token is required",
    ))
}

/// Reads at most `limit` bytes; a declared or actual larger body is a 413.
async fn read_limited(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes> {
    let declared =
        header_value(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    let mut buffer = BytesMut::new();
    if declared.is_none_or(|len| len <= limit as u64) {
        let mut too_large = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| ApiError::Malformed {
                detail: format!("the body could not be read: {err}"),
                delivery_id: None,
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buffer.len() + data.len() > limit {
                too_large = true;
                break;
            }
            buffer.extend_from_slice(&data);
        }
        if !too_large {
            return Ok(buffer.freeze());
        }
    }
    drain(body).await;
    Err(ApiError::PayloadTooLarge { limit })
}

/// Reads and discards what is left of an oversized body, within bounds, before answering:
/// closing a connection with unread data makes the client's TCP stack see a reset instead
/// of our 413.
async fn drain(mut body: Body) {
    const DRAIN_BYTES: usize = 8 << 20;
    let discard = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), discard).await;
}

async fn ingest(intake: &Intake, body: Bytes, content_type: Option<&str>) -> Result<Json<Receipt>> {
    match intake.receive(body, content_type).await? {
        Received::Stored(Ingested { recorded, parsed }) => {
            log_recorded(&recorded, &parsed);
            answer(recorded, parsed)
        }
        Received::Spooled { spool_id, parsed } => spooled(spool_id, parsed),
    }
}

impl From<IntakeError> for ApiError {
    fn from(err: IntakeError) -> Self {
        match err {
            IntakeError::Store(err) => err.into(),
            IntakeError::NotReady => ApiError::Unavailable,
            // Logged loudly where it happened.
            IntakeError::Spool(_) => ApiError::Unavailable,
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::QueueFull => {
                tracing::warn!("write queue full: notification turned away with 503");
                ApiError::Overloaded
            }
            IngestError::Stopped => ApiError::Unavailable,
            IngestError::Store(err) if err.is_unavailable() => {
                tracing::warn!(error = %DisplayChain(err.as_ref()), "database unavailable");
                ApiError::Unavailable
            }
            IngestError::Store(err) => ApiError::Internal(anyhow::Error::new(err)),
        }
    }
}

fn log_recorded(
    recorded: &Recorded,
    parsed: &Result<crate::notification::Notification, Rejection>,
) {
    let conversation_id = match parsed {
        Ok(notification) => Some(notification.event.conversation_id.as_str()),
        Err(Rejection::Invalid {
            conversation_id, ..
        }) => conversation_id.as_deref(),
        Err(Rejection::Malformed(_)) => None,
    };
    match recorded {
        Recorded::Accepted {
            delivery_id,
            event_id,
        }
        | Recorded::Duplicate {
            delivery_id,
            event_id,
        } => {
            let result = if matches!(recorded, Recorded::Accepted { .. }) {
                "accepted"
            } else {
                "duplicate"
            };
            // Debug, not info: the request's own log line is the one line per request; at
            // thousands of notifications a second a second line costs real throughput.
            tracing::debug!(
                result,
                delivery_id,
                event_id,
                conversation_id,
                "notification recorded"
            );
        }
        Recorded::Rejected { delivery_id } => {
            tracing::debug!(
                result = "rejected",
                delivery_id,
                conversation_id,
                "notification rejected"
            );
        }
    }
}
