//! `POST /notify` and `POST /notify/{token}` (docs/api.md, "Receiving"), and the receiving
//! every source's endpoint shares: authenticate, read the body within its limit, check the
//! source's signature, then hand it to the pipeline and answer only after the commit.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Uri, header};
use bytes::BytesMut;
use http_body_util::BodyExt;
use utoipa_axum::routes;

use super::auth::{header_value, presented};
use super::error::{ApiError, DisplayChain, Result};
use super::extract::Path;
use super::openapi::Routes;
use super::openapi::responses::NotifyResponses;
use super::openapi::schema::GatewayNotification;
use super::receipt::{Receipt, answer, spooled};
use super::{AppState, NotifyGuard};
use crate::ingest::{IngestError, Ingested};
use crate::notification::{Format, Rejection};
use crate::spool::{Intake, IntakeError, Received};
use crate::store::Recorded;

/// The header a dial-out can ask the gateway to send through `notifyHeaders`.
pub const TOKEN_HEADER: &str = "x-calltrail-token";

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(notify))
        .routes(routes!(notify_with_path_token))
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
        description = "One notification, a JSON object. The `Content-Type` is not checked: \
            the body is read as JSON whatever it says.",
        content((GatewayNotification = "application/json"), (GatewayNotification = "*/*")),
    ),
    params(("SAVG-Signature" = Option<String>, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`; required when `notify.signing_secrets` is set.")),
    security(("notify_token" = []), ("notify_token_header" = []), ("notify_token_query" = [])),
    responses(NotifyResponses),
)]
async fn notify(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    let tokens = query_tokens(query.as_deref());
    let request = Request::new(Format::Kore, &tokens, &uri, headers);
    receive(state, request, body).await
}

/// Every `token` of a query string.
pub(super) fn query_tokens(query: Option<&str>) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// Receive a call-status notification, with the token in the path.
///
/// The same as `POST /notify`, for a `notifyurl` that carries its token.
#[utoipa::path(
    post,
    path = "/notify/{token}",
    operation_id = "notify_with_path_token",
    tag = "notify",
    params(
        ("token" = String, Path, description = "One of `notify.tokens`; logged as `***`."),
        ("SAVG-Signature" = Option<String>, Header,
            description = "Required when `notify.signing_secrets` is set."),
    ),
    request_body(
        description = "One notification, a JSON object. The `Content-Type` is not checked: \
            the body is read as JSON whatever it says.",
        content((GatewayNotification = "application/json"), (GatewayNotification = "*/*")),
    ),
    security(()),
    responses(NotifyResponses),
)]
async fn notify_with_path_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    let tokens = [token];
    let request = Request::new(Format::Kore, &tokens, &uri, headers);
    receive(state, request, body).await
}

/// What a receiving endpoint knows of a request besides its body.
pub(super) struct Request<'a> {
    format: Format,
    /// The path token and every `?token=`.
    tokens: &'a [String],
    uri: &'a Uri,
    headers: HeaderMap,
}

impl<'a> Request<'a> {
    pub(super) fn new(
        format: Format,
        tokens: &'a [String],
        uri: &'a Uri,
        headers: HeaderMap,
    ) -> Self {
        Self {
            format,
            tokens,
            uri,
            headers,
        }
    }
}

/// Receives one notification and counts it by its source and result.
pub(super) async fn receive(
    state: AppState,
    request: Request<'_>,
    body: Body,
) -> Result<Json<Receipt>> {
    let started = Instant::now();
    let source = request.format.source();
    let mut spooled = false;
    let answer = receive_counted(&state, request, body, &mut spooled).await;
    let (result, stored) = result_label(&answer, spooled);
    state
        .metrics
        .notification(source, result, stored.then(|| started.elapsed()));
    answer
}

/// Token, then the body within its limit, then the source's signature over the raw bytes,
/// then the intake (the store, or the spool behind it) for the source's format; `spooled`
/// is set when the body went to the spool.
async fn receive_counted(
    state: &AppState,
    request: Request<'_>,
    body: Body,
    spooled: &mut bool,
) -> Result<Json<Receipt>> {
    let Request {
        format,
        tokens,
        uri,
        headers,
    } = request;
    authenticate(&state.notify, tokens, &headers)?;
    let guard = &state.notify;
    let body = read_limited(body, &headers, guard.max_body_bytes, guard.body_timeout).await?;
    verify_signature(guard, format, &headers, uri, &body)?;
    let content_type = header_value(&headers, header::CONTENT_TYPE.as_str());
    ingest(&state.intake, format, body, content_type, spooled).await
}

/// A configured source's signature must match; the body is then not stored at all.
fn verify_signature(
    guard: &NotifyGuard,
    format: Format,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<()> {
    guard
        .signatures
        .verify(format, headers, uri, body)
        .map_err(|err| {
            let count = guard.bad_signatures.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                bad_signatures_total = count,
                source = format.source(),
                reason = %err,
                "notification with a missing, wrong or stale signature turned away"
            );
            ApiError::BadSignature(err.to_string())
        })
}

/// The `result` label of an answer (docs/operations.md#metrics), and whether its body was
/// recorded, as a delivery or in the spool (a body the spool took is `spooled`, also one
/// answered `400`/`422` that its replay will store as rejected).
fn result_label(answer: &Result<Json<Receipt>>, spooled: bool) -> (&'static str, bool) {
    if spooled {
        return ("spooled", true);
    }
    match answer {
        Ok(Json(receipt)) => (receipt.result, true),
        Err(
            ApiError::Malformed {
                delivery_id: Some(_),
                ..
            }
            | ApiError::Invalid {
                delivery_id: Some(_),
                ..
            },
        ) => ("rejected", true),
        Err(ApiError::Unauthorized(_)) => ("unauthorized", false),
        Err(ApiError::BadSignature(_)) => ("bad_signature", false),
        Err(ApiError::PayloadTooLarge { .. }) => ("too_large", false),
        Err(ApiError::BodyTimeout { .. }) => ("timeout", false),
        Err(ApiError::Overloaded) => ("overloaded", false),
        Err(ApiError::Unavailable) => ("unavailable", false),
        Err(_) => ("error", false),
    }
}

/// Any of the token sources (path or `?token=` in `tokens`, `Authorization: Bearer`,
/// `X-Calltrail-Token`) may carry a configured token; every one presented must be valid.
fn authenticate(guard: &NotifyGuard, tokens: &[String], headers: &HeaderMap) -> Result<()> {
    if guard.tokens.is_open() {
        return Ok(());
    }
    let mut candidates = presented(headers, &[TOKEN_HEADER]);
    candidates.extend(tokens.iter().map(|t| Some(t.as_str())));
    if guard.tokens.admits(&candidates) {
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

/// Reads at most `limit` bytes within `deadline`: a declared or actual larger body is a
/// 413, a body still incomplete at the deadline a 408 (a body that never arrived whole is
/// not stored).
async fn read_limited(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes> {
    let declared =
        header_value(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    if declared.is_none_or(|len| len <= limit as u64) {
        let read = tokio::time::timeout(deadline, read_within(&mut body, limit)).await;
        match read {
            Err(_) => {
                return Err(ApiError::BodyTimeout {
                    limit_ms: deadline.as_millis(),
                });
            }
            Ok(Ok(Some(bytes))) => return Ok(bytes),
            Ok(Ok(None)) => {}
            Ok(Err(err)) => return Err(err),
        }
    }
    drain(body).await;
    Err(ApiError::PayloadTooLarge { limit })
}

/// The whole body, or `None` once it has more than `limit` bytes.
async fn read_within(body: &mut Body, limit: usize) -> Result<Option<Bytes>> {
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| ApiError::Malformed {
            detail: format!("the body could not be read: {err}"),
            delivery_id: None,
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buffer.len() + data.len() > limit {
            return Ok(None);
        }
        buffer.extend_from_slice(&data);
    }
    Ok(Some(buffer.freeze()))
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

async fn ingest(
    intake: &Intake,
    format: Format,
    body: Bytes,
    content_type: Option<&str>,
    was_spooled: &mut bool,
) -> Result<Json<Receipt>> {
    match intake.receive(format, body, content_type).await? {
        Received::Stored(Ingested { recorded, parsed }) => {
            log_recorded(&recorded, &parsed);
            answer(recorded, parsed)
        }
        Received::Spooled { spool_id, parsed } => {
            *was_spooled = true;
            spooled(spool_id, parsed)
        }
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
