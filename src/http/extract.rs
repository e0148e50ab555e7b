//! Extractors whose rejections are the API's problem documents, naming the parameter at
//! fault, instead of axum's plain-text ones.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body `/v1` reads (axum's default limit): 2 MiB.
pub const MAX_BODY_BYTES: usize = 2 << 20;

/// `axum::extract::Path`, refusing a value that does not parse with a `400` naming the path
/// parameter.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => {
                let names: Vec<String> = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map(|params| params.iter().map(|(name, _)| name.to_owned()).collect())
                    .unwrap_or_default();
                Err(path_rejection(rejection, &names))
            }
        }
    }
}

/// The problem for a path that did not parse; `names` are the route's parameters in order.
fn path_rejection(rejection: PathRejection, names: &[String]) -> ApiError {
    use axum::extract::path::ErrorKind;

    let PathRejection::FailedToDeserializePathParams(failure) = rejection else {
        return ApiError::Internal(anyhow::anyhow!("path parameters: {rejection}"));
    };
    let only = || names.first().filter(|_| names.len() == 1).cloned();
    let (parameter, message) = match failure.into_kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => (Some(key), expected(&value, expected_type)),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => (names.get(index).cloned(), expected(&value, expected_type)),
        ErrorKind::ParseError {
            value,
            expected_type,
        } => (only(), expected(&value, expected_type)),
        ErrorKind::InvalidUtf8InPathParam { key } => {
            (Some(key), "is not valid UTF-8 once percent-decoded".into())
        }
        ErrorKind::DeserializeError {
            key,
            value,
            message,
        } => (Some(key), format!("`{value}`: {message}")),
        other => {
            return ApiError::Internal(anyhow::anyhow!("path parameters: {other}"));
        }
    };
    ApiError::BadParameter {
        parameter: parameter.unwrap_or_else(|| "path".into()),
        message,
    }
}

/// What a path parameter of `expected_type` accepts, in words.
fn expected(value: &str, expected_type: &str) -> String {
    match expected_type {
        "i64" => format!(
            "`{value}` is not a whole number from {} to {}",
            i64::MIN,
            i64::MAX
        ),
        other => format!("`{value}` is not a valid {other}"),
    }
}

/// The request body as bytes, at most [`MAX_BODY_BYTES`]: a larger one is a `413` problem.
#[derive(Debug)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                    ApiError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    }
                }
                other => ApiError::Malformed {
                    detail: format!("the body could not be read: {other}"),
                    delivery_id: None,
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body as RequestBody;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn answer(router: Router, uri: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(uri).body(RequestBody::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_path_parameter_that_does_not_parse_is_named() {
        async fn one(Path(id): Path<i64>) -> String {
            id.to_string()
        }
        async fn two(Path((a, b)): Path<(String, i64)>) -> String {
            format!("{a}{b}")
        }
        let router = Router::new()
            .route("/items/{id}", get(one))
            .route("/pairs/{a}/{b}", get(two));
        let (status, problem) = answer(router.clone(), "/items/9223372036854775808").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "id");
        let (status, problem) = answer(router, "/pairs/x/y").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(problem["errors"][0]["field"], "b");
    }
}
