//! One log line per request: method, path with tokens masked, status, latency, request id.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// Wraps `routes` with request ids and request logging.
pub fn layer(routes: Router) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<Body>| {
            let request_id = request
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %redact(request.uri()),
                request_id,
            )
        })
        .on_request(())
        .on_response(
            |response: &Response<Body>, latency: Duration, _span: &Span| {
                tracing::info!(
                    status = response.status().as_u16(),
                    latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
                    "request"
                );
            },
        )
        .on_failure(());
    routes
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The receiving endpoints, whose next path segment is a token.
const RECEIVING: [&str; 3] = ["/notify/", "/jambonz/notify/", "/twilio/notify/"];

/// The path and query with secrets masked: the token segment of `/notify/{token}` (and of
/// every source's endpoint) and any `token` query parameter.
pub fn redact(uri: &axum::http::Uri) -> String {
    let path = RECEIVING
        .iter()
        .find_map(|prefix| {
            let rest = uri.path().strip_prefix(prefix)?;
            (!rest.is_empty()).then(|| format!("{prefix}***"))
        })
        .unwrap_or_else(|| uri.path().to_owned());
    match uri.query() {
        None => path,
        Some(query) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("token") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", masked.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn masks_tokens_in_path_and_query() {
        let cases = [
            ("/notify/s3cret", "/notify/***"),
            ("/notify?token=s3cret&x=1", "/notify?token=***&x=1"),
            ("/notify/", "/notify/"),
            ("/jambonz/notify/s3cret", "/jambonz/notify/***"),
            (
                "/twilio/notify/s3cret?token=x",
                "/twilio/notify/***?token=***",
            ),
            ("/twilio/notify", "/twilio/notify"),
            ("/v1/calls/abc?limit=5", "/v1/calls/abc?limit=5"),
        ];
        for (uri, expected) in cases {
            assert_eq!(redact(&uri.parse().unwrap()), expected, "{uri}");
        }
    }
}
