//! `POST /jambonz/notify` and `POST /twilio/notify`, each also with a `/{token}` suffix
//! (docs/api.md, "Sources"): the same receiving pipeline as `/notify`, with the source's
//! normalizer and signature.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Uri};
use utoipa_axum::routes;

use super::AppState;
use super::error::Result;
use super::extract::Path;
use super::notify::{Request, query_tokens, receive};
use super::openapi::Routes;
use super::openapi::responses::NotifyResponses;
use super::openapi::schema::{JambonzWebhook, TwilioCallback};
use super::receipt::Receipt;
use crate::notification::Format;

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(jambonz))
        .routes(routes!(jambonz_with_path_token))
        .routes(routes!(twilio))
        .routes(routes!(twilio_with_path_token))
}

/// Receive a jambonz call-status webhook or AMD event.
///
/// The body is one JSON object, accepted whatever its `Content-Type`. When
/// `jambonz.signing_secrets` is set, it must carry a valid `Jambonz-Signature`. Stored and
/// answered as at `POST /notify`; the call's `source` is `jambonz`.
#[utoipa::path(
    post,
    path = "/jambonz/notify",
    operation_id = "jambonz_notify",
    tag = "notify",
    request_body(
        description = "One webhook, a JSON object. The `Content-Type` is not checked: \
            the body is read as JSON whatever it says.",
        content((JambonzWebhook = "application/json"), (JambonzWebhook = "*/*")),
    ),
    params(("Jambonz-Signature" = Option<String>, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`; required when `jambonz.signing_secrets` is set.")),
    security(("notify_token" = []), ("notify_token_header" = []), ("notify_token_query" = [])),
    responses(NotifyResponses),
)]
async fn jambonz(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    let tokens = query_tokens(query.as_deref());
    let request = Request::new(Format::Jambonz, &tokens, &uri, headers);
    receive(state, request, body).await
}

/// Receive a jambonz webhook, with the token in the path.
#[utoipa::path(
    post,
    path = "/jambonz/notify/{token}",
    operation_id = "jambonz_notify_with_path_token",
    tag = "notify",
    params(
        ("token" = String, Path, description = "One of `notify.tokens`; logged as `***`."),
        ("Jambonz-Signature" = Option<String>, Header,
            description = "Required when `jambonz.signing_secrets` is set."),
    ),
    request_body(
        description = "One webhook, a JSON object. The `Content-Type` is not checked: \
            the body is read as JSON whatever it says.",
        content((JambonzWebhook = "application/json"), (JambonzWebhook = "*/*")),
    ),
    security(()),
    responses(NotifyResponses),
)]
async fn jambonz_with_path_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    let tokens = [token];
    let request = Request::new(Format::Jambonz, &tokens, &uri, headers);
    receive(state, request, body).await
}

/// Receive a Twilio status callback or asynchronous AMD callback.
///
/// The body is form-encoded, read whatever its `Content-Type`. When `twilio.auth_tokens` is
/// set, it must carry a valid `X-Twilio-Signature` for the URL Twilio called
/// (`twilio.public_url` followed by this path and query). Stored and answered as at
/// `POST /notify`; the call's `source` is `twilio`.
#[utoipa::path(
    post,
    path = "/twilio/notify",
    operation_id = "twilio_notify",
    tag = "notify",
    request_body(
        description = "One callback, form-encoded. The `Content-Type` is not checked: \
            the body is read as a form whatever it says.",
        content((TwilioCallback = "application/x-www-form-urlencoded"), (TwilioCallback = "*/*")),
    ),
    params(("X-Twilio-Signature" = Option<String>, Header,
        description = "Base64 HMAC-SHA1 of the URL and the sorted parameters, keyed by the auth token; required when `twilio.auth_tokens` is set.")),
    security(("notify_token" = []), ("notify_token_header" = []), ("notify_token_query" = [])),
    responses(NotifyResponses),
)]
async fn twilio(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    let tokens = query_tokens(query.as_deref());
    let request = Request::new(Format::Twilio, &tokens, &uri, headers);
    receive(state, request, body).await
}

/// Receive a Twilio callback, with the token in the path.
#[utoipa::path(
    post,
    path = "/twilio/notify/{token}",
    operation_id = "twilio_notify_with_path_token",
    tag = "notify",
    params(
        ("token" = String, Path, description = "One of `notify.tokens`; logged as `***`."),
        ("X-Twilio-Signature" = Option<String>, Header,
            description = "Required when `twilio.auth_tokens` is set."),
    ),
    request_body(
        description = "One callback, form-encoded. The `Content-Type` is not checked: \
            the body is read as a form whatever it says.",
        content((TwilioCallback = "application/x-www-form-urlencoded"), (TwilioCallback = "*/*")),
    ),
    security(()),
    responses(NotifyResponses),
)]
async fn twilio_with_path_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Receipt>> {
    let tokens = [token];
    let request = Request::new(Format::Twilio, &tokens, &uri, headers);
    receive(state, request, body).await
}
