//! The API's errors, rendered as RFC 9457 problem details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::notification::{FieldError, Rejection};
use crate::store::StoreError;

/// Result alias for handlers.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Seconds a client is asked to wait when the database is unavailable.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Seconds a client is asked to wait when the write queue is full: a queue drains fast.
pub const OVERLOADED_RETRY_AFTER_SECS: u32 = 1;

/// Everything a handler can fail with. Internal causes are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A signed source's signature is missing, wrong or stale (the message names no secret).
    #[error("{0}")]
    BadSignature(String),
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the body did not arrive within {limit_ms} ms; nothing was stored")]
    BodyTimeout { limit_ms: u128 },
    #[error("the request took longer than {limit_ms} ms; retry later or narrow it")]
    Timeout { limit_ms: u128 },
    #[error("{detail}")]
    Malformed {
        detail: String,
        delivery_id: Option<i64>,
    },
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
        delivery_id: Option<i64>,
    },
    #[error("`{parameter}`: {message}")]
    BadParameter { parameter: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error("the database is unavailable; nothing was stored, retry later")]
    Unavailable,
    #[error("calltrail is receiving faster than it can store; nothing was stored, retry shortly")]
    Overloaded,
    #[error("{detail}")]
    InvalidDialout {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{detail}")]
    GatewayFailed {
        detail: String,
        dialout_id: i64,
        gateway_status: Option<u16>,
    },
    #[error("{0}")]
    DialoutsDisabled(String),
    #[error("{0}")]
    IdempotencyKeyReused(String),
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %DisplayChain(&err), "database unavailable");
            ApiError::Unavailable
        } else {
            ApiError::Internal(err.into())
        }
    }
}

/// RFC 9457 problem details, sent as `application/problem+json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, stable across releases.
    #[serde(rename = "type")]
    #[schema(example = "urn:calltrail:problem:invalid-parameter")]
    pub kind: &'static str,
    /// A short summary of the kind of problem.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The fields or parameters at fault, each with what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
    /// The delivery a rejected notification body was stored as.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub delivery_id: Option<i64>,
    /// The dial-out the voice gateway refused (or could not be reached for), as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dialout_id: Option<i64>,
    /// The HTTP status the voice gateway answered a dial-out with; absent when it could not
    /// be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub gateway_status: Option<u16>,
}

impl ApiError {
    /// The answer for a body the store kept as a rejected delivery.
    pub fn rejected(rejection: Rejection, delivery_id: i64) -> Self {
        let detail = rejection.to_string();
        let delivery_id = Some(delivery_id);
        match rejection {
            Rejection::Malformed(_) => ApiError::Malformed {
                detail,
                delivery_id,
            },
            Rejection::Invalid { errors, .. } => ApiError::Invalid {
                detail,
                errors,
                delivery_id,
            },
        }
    }

    /// The answer for a body that is kept, to be stored as a rejected delivery, but has no
    /// delivery yet (it is in the spool).
    pub fn rejected_unstored(rejection: Rejection) -> Self {
        match Self::rejected(rejection, 0) {
            ApiError::Malformed { detail, .. } => ApiError::Malformed {
                detail,
                delivery_id: None,
            },
            ApiError::Invalid { detail, errors, .. } => ApiError::Invalid {
                detail,
                errors,
                delivery_id: None,
            },
            other => other,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) | ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InvalidDialout { .. } | ApiError::IdempotencyKeyReused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::GatewayFailed { .. } => StatusCode::BAD_GATEWAY,
            ApiError::DialoutsDisabled(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::IdempotencyConflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type URI and its title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => ("urn:calltrail:problem:unauthorized", "Unauthorized"),
            ApiError::BadSignature(_) => ("urn:calltrail:problem:bad-signature", "Bad signature"),
            ApiError::PayloadTooLarge { .. } => {
                ("urn:calltrail:problem:body-too-large", "Body too large")
            }
            ApiError::BodyTimeout { .. } => ("urn:calltrail:problem:body-timeout", "Body too slow"),
            ApiError::Timeout { .. } => ("urn:calltrail:problem:timeout", "Took too long"),
            ApiError::Malformed { .. } => {
                ("urn:calltrail:problem:malformed-body", "Malformed body")
            }
            ApiError::Invalid { .. } => (
                "urn:calltrail:problem:invalid-notification",
                "Invalid notification",
            ),
            ApiError::BadParameter { .. } => (
                "urn:calltrail:problem:invalid-parameter",
                "Invalid parameter",
            ),
            ApiError::NotFound(_) => ("urn:calltrail:problem:not-found", "Not found"),
            ApiError::MethodNotAllowed => (
                "urn:calltrail:problem:method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Unavailable => ("urn:calltrail:problem:unavailable", "Service unavailable"),
            ApiError::Overloaded => ("urn:calltrail:problem:overloaded", "Overloaded"),
            ApiError::InvalidDialout { .. } => {
                ("urn:calltrail:problem:invalid-dialout", "Invalid dial-out")
            }
            ApiError::GatewayFailed { .. } => (
                "urn:calltrail:problem:gateway-failed",
                "Voice gateway failed",
            ),
            ApiError::DialoutsDisabled(_) => (
                "urn:calltrail:problem:dialouts-disabled",
                "Dial-outs are not configured",
            ),
            ApiError::IdempotencyKeyReused(_) => (
                "urn:calltrail:problem:idempotency-key-reused",
                "Idempotency-Key reused",
            ),
            ApiError::IdempotencyConflict(_) => (
                "urn:calltrail:problem:idempotency-conflict",
                "Request in progress",
            ),
            ApiError::Internal(_) => ("urn:calltrail:problem:internal", "Internal error"),
        }
    }

    /// The problem details this error renders as.
    pub fn problem(&self) -> Problem {
        let (kind, title) = self.kind();
        let (errors, delivery_id) = match self {
            ApiError::Malformed { delivery_id, .. } => (None, *delivery_id),
            ApiError::Invalid {
                errors,
                delivery_id,
                ..
            } => (Some(errors.clone()), *delivery_id),
            ApiError::BadParameter { parameter, message } => (
                Some(vec![FieldError {
                    field: parameter.clone(),
                    message: message.clone(),
                }]),
                None,
            ),
            ApiError::InvalidDialout { errors, .. } => (Some(errors.clone()), None),
            _ => (None, None),
        };
        let (dialout_id, gateway_status) = match self {
            ApiError::GatewayFailed {
                dialout_id,
                gateway_status,
                ..
            } => (Some(*dialout_id), *gateway_status),
            _ => (None, None),
        };
        Problem {
            kind,
            title,
            status: self.status().as_u16(),
            detail: self.to_string(),
            errors,
            delivery_id,
            dialout_id,
            gateway_status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = %DisplayChain(err.as_ref()), "request failed");
        }
        let problem = self.problem();
        let mut response = (self.status(), axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unavailable | ApiError::Timeout { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            ApiError::BodyTimeout { .. } => {
                // The rest of the body is never read: the connection cannot carry another
                // request.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ApiError::Overloaded | ApiError::IdempotencyConflict(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(OVERLOADED_RETRY_AFTER_SECS),
                );
            }
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// Writes an error with its whole cause chain: `outer: inner: root`.
pub struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Answers any unknown route with a 404 problem.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Answers a known route with an unsupported method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
