//! Dial-outs: `POST /v1/dialouts` (place one through the voice gateway),
//! `GET /v1/dialouts` (filtered, keyset-paginated) and `GET /v1/dialouts/{id}`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa_axum::routes;

use super::error::{ApiError, Result};
use super::extract::{Body, Path};
use super::health::Readiness;
use super::openapi::query::{DialoutFilters, Pagination};
use super::openapi::responses::{
    BadRequest, BodyTooLarge, DialoutsDisabled, GatewayFailed, IdempotencyConflict, Internal,
    InvalidDialout, InvalidParameter, NotFound, Unavailable,
};
use super::openapi::{Routes, schema};
use super::params::{DIALOUT_FILTERS, Params, encode_cursor};
use crate::dialer::{DialError, Dialer, Placed};
use crate::dialout::request::{self, ParseError};
use crate::dialout::{Dialout, DialoutRequest, DialoutState};
use crate::store::Store;
use crate::store::query::Page;

/// The header that makes a retried `POST /v1/dialouts` return the first result.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer that an earlier request with the same key produced.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// The longest idempotency key accepted.
const MAX_KEY_LEN: usize = 255;

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(place, list))
        .routes(routes!(show))
}

/// A page of dial-outs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DialoutPage {
    pub data: Vec<Dialout>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Place a dial-out through the voice gateway.
///
/// The dial-out is stored (state `pending`) before the gateway is asked, then updated with the
/// gateway's `sid` and `callId` (`placed`) or its failure (`failed`). calltrail sets the
/// gateway's `notifyurl` to its own `/notify`, so the call's notifications come back here and
/// the call record shows its dial-out. Network errors and 5xx answers from the gateway are
/// retried (`dialout.retries`, with backoff); 4xx answers are not.
///
/// With an `Idempotency-Key` header, a retried request (also one sent while the first is still
/// in flight) answers what the first one did, and the gateway is asked once.
#[utoipa::path(
    post,
    path = "/dialouts",
    operation_id = "place_dialout",
    tag = "dialouts",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Any unique string of 1 to 255 printable ASCII characters (spaces only \
            inside); a retry with the same key and body returns the first answer (with \
            `Idempotent-Replayed: true`) instead of dialing again.",
        max_length = 255, pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")),
    request_body(content = DialoutBody, description = "The call to place."),
    responses(
        (status = 201, description = "The gateway accepted the dial-out.", body = Dialout,
            headers(("Location" = String, description = "`/v1/dialouts/{id}`"))),
        (status = 400, response = BadRequest),
        (status = 409, response = IdempotencyConflict),
        (status = 413, response = BodyTooLarge),
        (status = 422, response = InvalidDialout),
        (status = 500, response = Internal),
        (status = 501, response = DialoutsDisabled),
        (status = 502, response = GatewayFailed),
        (status = 503, response = Unavailable),
    ),
)]
async fn place(
    State(dialer): State<Dialer>,
    State(readiness): State<Readiness>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let request = parse_body(&body)?;
    readiness.check()?;
    let Placed { dialout, replayed } =
        dialer.place(request, key).await.map_err(|err| match err {
            DialError::Disabled => ApiError::DialoutsDisabled(err.to_string()),
            DialError::KeyReused(_) => ApiError::IdempotencyKeyReused(err.to_string()),
            DialError::InProgress(_) => ApiError::IdempotencyConflict(err.to_string()),
            DialError::Store(err) => err.into(),
            DialError::Task(err) => ApiError::Internal(err.into()),
        })?;
    // A replay answers what the first request did, a 502 included.
    let mut response = answer(dialout).unwrap_or_else(IntoResponse::into_response);
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `201` with the placed dial-out, or the `502` problem of a failed one.
fn answer(dialout: Dialout) -> Result<Response> {
    match dialout.state {
        DialoutState::Placed => {
            let location = format!("/v1/dialouts/{}", dialout.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(dialout),
            )
                .into_response())
        }
        DialoutState::Failed => {
            let cause = dialout.error.as_deref().unwrap_or("the gateway failed");
            Err(ApiError::GatewayFailed {
                detail: format!(
                    "the voice gateway did not place dial-out {}: {cause}",
                    dialout.id
                ),
                dialout_id: dialout.id,
                gateway_status: dialout.gateway_status,
            })
        }
        DialoutState::Pending => Err(ApiError::Internal(anyhow::anyhow!(
            "dial-out {} is still pending",
            dialout.id
        ))),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = |message: &str| ApiError::BadParameter {
        parameter: "Idempotency-Key".into(),
        message: message.into(),
    };
    let printable = format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters");
    let key = value.to_str().map_err(|_| bad(&printable))?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| (b' '..=b'~').contains(&b))
    {
        return Err(bad(&printable));
    }
    Ok(Some(key.to_owned()))
}

fn parse_body(body: &[u8]) -> Result<DialoutRequest> {
    request::parse(body).map_err(|err| match err {
        ParseError::Malformed(detail) => ApiError::Malformed {
            detail,
            delivery_id: None,
        },
        ParseError::Invalid(errors) => {
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            ApiError::InvalidDialout {
                detail: format!("invalid fields: {}", fields.join(", ")),
                errors,
            }
        }
    })
}

/// List dial-outs, newest first.
///
/// Keyset-paginated like `/v1/calls`.
#[utoipa::path(
    get,
    path = "/dialouts",
    operation_id = "list_dialouts",
    tag = "dialouts",
    params(DialoutFilters, Pagination),
    responses(
        (status = 200, description = "A page of dial-outs.", body = DialoutPage),
        (status = 400, response = InvalidParameter),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn list(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    RawQuery(query): RawQuery,
) -> Result<Json<DialoutPage>> {
    let known: Vec<&str> = DIALOUT_FILTERS
        .iter()
        .copied()
        .chain(["limit", "cursor"])
        .collect();
    let params = Params::parse(query.as_deref(), &known)?;
    let filter = params.dialout_filter()?;
    let (limit, after) = (params.limit()?, params.dialout_cursor()?);
    readiness.check()?;
    let Page { items, next } = store.list_dialouts(&filter, after.as_ref(), limit).await?;
    Ok(Json(DialoutPage {
        data: items,
        next_cursor: next.map(|c| encode_cursor(c.requested_at, &c.id.to_string())),
    }))
}

/// One dial-out.
#[utoipa::path(
    get,
    path = "/dialouts/{id}",
    operation_id = "get_dialout",
    tag = "dialouts",
    params(("id" = i64, Path, description = "The dial-out's id.")),
    responses(
        (status = 200, description = "The dial-out.", body = Dialout),
        (status = 400, response = InvalidParameter),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn show(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    Path(id): Path<i64>,
) -> Result<Json<Dialout>> {
    readiness.check()?;
    let dialout = store
        .dialout(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no dial-out with id {id}")))?;
    Ok(Json(dialout))
}

/// The body of `POST /v1/dialouts`. Unknown fields are refused, each named; `null` counts as
/// absent.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "target": "tel:911234567890",
    "caller": "+127061657882",
    "machine_detection": "detect",
    "threshold_word_count": 4,
    "timers": {"no_speech_timeout_ms": 12000},
    "metadata": {"campaign": "spring-renewals", "userName": "John Doe"}
}))]
#[allow(dead_code)]
pub struct DialoutBody {
    #[schema(schema_with = schema::dialout_target)]
    target: String,
    #[schema(schema_with = schema::dialout_caller)]
    caller: String,
    #[schema(schema_with = schema::dialout_trunk)]
    trunk: Option<String>,
    /// Any JSON object; passed to the bot, and filterable as `metadata.KEY=VALUE`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    /// Timers in milliseconds; absent ones take the gateway's defaults.
    timers: Option<TimersBody>,
    #[schema(schema_with = schema::machine_detection)]
    machine_detection: Option<String>,
    /// Spoken words in a greeting that make it a machine.
    #[schema(minimum = 1, maximum = 1000)]
    threshold_word_count: Option<u32>,
}

/// `timers` of `POST /v1/dialouts`: each a whole number of milliseconds from 1 to 3600000
/// (one hour).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TimersBody {
    /// Default 5000.
    #[schema(minimum = 1, maximum = 3600000, nullable = false)]
    no_speech_timeout_ms: Option<u32>,
    /// Default 15000.
    #[schema(minimum = 1, maximum = 3600000, nullable = false)]
    decision_timeout_ms: Option<u32>,
    /// Default 20000.
    #[schema(minimum = 1, maximum = 3600000, nullable = false)]
    tone_timeout_ms: Option<u32>,
    /// Default 2000.
    #[schema(minimum = 1, maximum = 3600000, nullable = false)]
    greeting_completion_timeout_ms: Option<u32>,
}
