//! Schemas that a derive cannot infer: string fields with a fixed set of values, fields that
//! take several JSON types, and the body of `/notify`.

use utoipa::openapi::Object;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};

/// A string that is one of `values`.
fn one_of(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
}

/// [`Receipt::result`](crate::http::receipt::Receipt).
pub fn receipt_result() -> Object {
    one_of(&["accepted", "duplicate", "spooled"])
        .description(Some(
            "`accepted` for a new event, `duplicate` for one already stored, `spooled` for one \
             synced to the local spool while the database is away (stored when it is back).",
        ))
        .build()
}

/// Where `/readyz` says notifications go.
pub fn accepting() -> Object {
    one_of(&["database", "spool"])
        .description(Some(
            "`database`: committed to the database; `spool`: synced to the local spool while \
             the database is away, or while the spool's backlog is replayed into it.",
        ))
        .build()
}

/// How a delivery's `body` is given.
pub fn body_encoding() -> Object {
    one_of(&["json", "text", "base64"])
        .description(Some(
            "`json`: the body parsed as JSON and is given as that value; `text`: it did not, \
             and is given as a string; `base64`: it is not UTF-8 either, and is given base64-encoded.",
        ))
        .build()
}

/// A string or a number; `null` counts as absent.
fn string_or_number() -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Null))
}

/// `duration`: whole seconds, as a number or a string holding one.
pub fn duration() -> AnyOfBuilder {
    string_or_number().description(Some(
        "Whole seconds, as a number or a string holding one (`\"14\"`, `\"14.0\"`).",
    ))
}

/// `callconnecttime` and `callDisconnectTime`.
pub fn gateway_time() -> AnyOfBuilder {
    string_or_number().description(Some(
        "The gateway's `M/D/YYYY,h:mm:ssAM` (local time in `notify.timezone`; `D/M/YYYY` with \
         `notify.date_order = dmy`), RFC 3339, ISO 8601, or Unix time in seconds (milliseconds \
         from 1e12).",
    ))
}

/// The body of `POST /notify`: one JSON object, as the voice gateway sends it. Keys are
/// matched ignoring case, `_` and `-` (`conversationId`, `conversation_id` and
/// `ConversationID` are the same key); every other key is kept in the stored payload.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "conversationId": "29e2d933-527e-429c-95b9-ba4f7c7bxxxx",
    "reasonCode": "caller-disconnected",
    "status": "completed",
    "reason": "200 OK",
    "duration": 14,
    "machinedetection": "amd_human_detected",
    "callconnecttime": "5/8/2023,11:32:49AM",
    "callDisconnectTime": "5/8/2023,11:33:03AM"
}))]
pub struct GatewayNotification {
    /// The call's id: at most 256 characters, no control characters; not necessarily a UUID.
    #[schema(rename = "conversationId", min_length = 1, max_length = 256)]
    pub conversation_id: String,
    /// `answered`, `completed` or `failed`; another status is stored (with a warning) but does
    /// not change the call's state.
    #[schema(min_length = 1)]
    pub status: String,
    /// E.g. `Busy Here`; stored in canonical form (`busy-here`).
    #[schema(rename = "reasonCode")]
    pub reason_code: Option<String>,
    /// E.g. `486 Busy Here`: a SIP code and its reason.
    pub reason: Option<String>,
    #[schema(schema_with = duration)]
    pub duration: Option<String>,
    /// An answering-machine-detection result (`amd_human_detected`, …) or, on failed calls,
    /// the mode (`disabled`, `detect`, `disconnect`).
    pub machinedetection: Option<String>,
    #[schema(schema_with = gateway_time)]
    pub callconnecttime: Option<String>,
    #[schema(rename = "callDisconnectTime", schema_with = gateway_time)]
    pub call_disconnect_time: Option<String>,
}
