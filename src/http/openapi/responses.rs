//! The problem responses the operations share, each a component of the document referenced
//! as `(status = …, response = Name)`. Their examples are what [`ApiError`] really renders.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToResponse};

use crate::http::error::{ApiError, OVERLOADED_RETRY_AFTER_SECS, RETRY_AFTER_SECS};
use crate::http::params::{CALL_FILTERS, Params};
use crate::notification::{Format, NormalizeSettings};

/// A problem-details response showing `example`.
fn problem(description: &str, example: ApiError) -> ResponseBuilder {
    let example = serde_json::to_value(example.problem()).ok();
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .example(example)
            .build(),
    )
}

/// What the query API answers for `query`.
fn parameter_error(query: &str) -> ApiError {
    let parsed =
        Params::parse(Some(query), CALL_FILTERS).and_then(|p| p.call_filter(chrono_tz::UTC));
    match parsed {
        Err(error) => error,
        Ok(_) => ApiError::Internal(anyhow::anyhow!("`{query}` was accepted")),
    }
}

/// What `/notify` answers for `body`, stored as delivery `delivery_id`.
fn rejection(body: &str, delivery_id: i64) -> ApiError {
    match Format::Kore.parse(body.as_bytes(), &NormalizeSettings::default()) {
        Err(rejection) => ApiError::rejected(rejection, delivery_id),
        Ok(_) => ApiError::Internal(anyhow::anyhow!("`{body}` was accepted")),
    }
}

/// What `POST /v1/dialouts` answers for `body`.
fn dialout_rejection(body: &str) -> ApiError {
    match crate::dialout::request::parse(body.as_bytes()) {
        Err(crate::dialout::request::ParseError::Invalid(errors)) => ApiError::InvalidDialout {
            detail: format!(
                "invalid fields: {}",
                errors
                    .iter()
                    .map(|e| e.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            errors,
        },
        _ => ApiError::Internal(anyhow::anyhow!("`{body}` was not refused")),
    }
}

/// Implements [`ToResponse`] for each marker type with the response its block builds.
macro_rules! responses {
    ($($(#[$doc:meta])* $name:ident => $response:expr;)+) => {$(
        $(#[$doc])*
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), $response.build().into())
            }
        }
    )+};
}

responses! {
    /// `400` for a parameter.
    InvalidParameter => problem(
        "A parameter (query, path or header) is unknown, repeated where it may be given once, \
         or has a value it does not accept, alone or with another (`until` must be later than \
         `since`, `bucket` needs at most 10000 buckets); `errors` names it and says what it \
         accepts.",
        parameter_error("outcome=voicemail"),
    );
    /// `400` for a body or a parameter.
    BadRequest => problem(
        "The body is not JSON or not a JSON object (a notification's is stored as a rejected \
         delivery, `delivery_id`; for reprocessing, the stored body), or a path or header \
         parameter has a value it does not accept (`errors` names it).",
        rejection("{not json", 41),
    );
    /// `400` for a notification body.
    MalformedBody => problem(
        "The body is not JSON, or not a JSON object. It is stored as a rejected delivery \
         (`delivery_id`).",
        rejection("{not json", 41),
    );
    /// `422` for a notification body.
    InvalidNotification => problem(
        "A JSON object that is not a valid notification; `errors` lists each field at fault. \
         It is stored as a rejected delivery (`delivery_id`).",
        rejection(r#"{"status":"answered"}"#, 42),
    );
    /// `401`.
    Unauthorized => problem(
        "The API key (for `/v1`) or notification token (for `/notify`) is missing or wrong.",
        ApiError::Unauthorized("a valid API key is required"),
    )
    .header(
        "WWW-Authenticate",
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some("`Bearer`"))
            .build(),
    );
    /// `401` on the receiving endpoints.
    NotifyUnauthorized => problem(
        "The notification token is missing or wrong, or, when the source's signing secrets are \
         set, its signature is missing, does not match the body, or is older (or newer) than \
         `notify.signature_tolerance_s`. Nothing is stored.",
        ApiError::BadSignature(
            crate::notification::signature::SignatureError::Mismatch("Jambonz-Signature").to_string(),
        ),
    );
    /// `404`.
    NotFound => problem(
        "There is no such item.",
        ApiError::NotFound("no call with conversation_id `80af8588`".into()),
    );
    /// `413`.
    BodyTooLarge => problem(
        "The body is larger than the limit (`notify.max_body_bytes` for `/notify`, 2 MiB for \
         `/v1`); nothing was stored.",
        ApiError::PayloadTooLarge { limit: 65536 },
    );
    /// `408`.
    BodyTimeout => problem(
        "The body did not arrive within `server.body_timeout_ms`; nothing was stored.",
        ApiError::BodyTimeout { limit_ms: 30_000 },
    );
    /// `503`.
    Unavailable => problem(
        "The database is unavailable (or, for `/notify`, calltrail is receiving faster than \
         it can store; for `/v1`, the request took longer than `api.timeout_ms`); nothing \
         was stored. Retry after `Retry-After` seconds.",
        ApiError::Unavailable,
    )
    .header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
            .description(Some(format!(
                "Seconds to wait before retrying: {RETRY_AFTER_SECS} when the database is \
                 unavailable, {OVERLOADED_RETRY_AFTER_SECS} when calltrail is overloaded."
            )))
            .build(),
    );
    /// `422` for a dial-out.
    InvalidDialout => problem(
        "A JSON object that is not a valid dial-out (or an `Idempotency-Key` reused with another \
         body); `errors` lists each field at fault.",
        dialout_rejection(r#"{"target":"911234567890","machine_detection":"maybe"}"#),
    );
    /// `502`.
    GatewayFailed => problem(
        "The voice gateway refused the dial-out or could not be reached (after retries for network \
         errors and 5xx). The dial-out is stored in state `failed` (`dialout_id`); `gateway_status` is \
         the gateway's answer, absent when there was none.",
        ApiError::GatewayFailed {
            detail: "the voice gateway did not place dial-out 7: the gateway answered 401 Unauthorized".into(),
            dialout_id: 7,
            gateway_status: Some(401),
        },
    );
    /// `501`.
    DialoutsDisabled => problem(
        "Dial-outs are not configured (`dialout.base_url` is empty).",
        ApiError::DialoutsDisabled(crate::dialer::DialError::Disabled.to_string()),
    );
    /// `409`.
    IdempotencyConflict => problem(
        "A request with this `Idempotency-Key` is still waiting for the gateway; retry after \
         `Retry-After` seconds to get its answer.",
        ApiError::IdempotencyConflict(crate::dialer::DialError::InProgress(7).to_string()),
    );
    /// `500`.
    Internal => problem(
        "An unexpected error; its cause is logged, never sent.",
        ApiError::Internal(anyhow::anyhow!("not sent")),
    );
}

/// The answers of every receiving endpoint (`/notify`, `/jambonz/notify`, `/twilio/notify`,
/// each also with a path token): `responses(NotifyResponses)` in their annotations.
pub struct NotifyResponses;

impl IntoResponses for NotifyResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let stored = ResponseBuilder::new()
            .description(
                "Stored, as `accepted` or `duplicate`; or, while the database is away, synced to \
                 the local spool as `spooled`, to be stored when it is back.",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Receipt")))
                    .build(),
            )
            .build();
        let problems = [
            ("400", BadRequest::response().0),
            ("401", NotifyUnauthorized::response().0),
            ("408", BodyTimeout::response().0),
            ("413", BodyTooLarge::response().0),
            ("422", InvalidNotification::response().0),
            ("500", Internal::response().0),
            ("503", Unavailable::response().0),
        ];
        std::iter::once(("200".to_owned(), stored.into()))
            .chain(
                problems.into_iter().map(|(status, name)| {
                    (status.to_owned(), Ref::from_response_name(name).into())
                }),
            )
            .collect()
    }
}
