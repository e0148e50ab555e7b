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

/// Everything a handler can fail with. Internal causes are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
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
    #[error("{0}")]
    NotFound(String),
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    #[error("the database is unavailable; nothing was stored, retry later")]
    Unavailable,
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

/// RFC 9457 problem details.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<i64>,
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

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem type URI and its title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => ("urn:calltrail:problem:unauthorized", "Unauthorized"),
            ApiError::PayloadTooLarge { .. } => {
                ("urn:calltrail:problem:body-too-large", "Body too large")
            }
            ApiError::Malformed { .. } => {
                ("urn:calltrail:problem:malformed-body", "Malformed body")
            }
            ApiError::Invalid { .. } => (
                "urn:calltrail:problem:invalid-notification",
                "Invalid notification",
            ),
            ApiError::NotFound(_) => ("urn:calltrail:problem:not-found", "Not found"),
            ApiError::MethodNotAllowed => (
                "urn:calltrail:problem:method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Unavailable => ("urn:calltrail:problem:unavailable", "Service unavailable"),
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
            _ => (None, None),
        };
        Problem {
            kind,
            title,
            status: self.status().as_u16(),
            detail: self.to_string(),
            errors,
            delivery_id,
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
            ApiError::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
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
