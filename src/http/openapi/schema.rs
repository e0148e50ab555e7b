//! Schemas that a derive cannot infer: string fields with a fixed set of values, fields that
//! take several JSON types, and the body of `/notify`.

use std::borrow::Cow;

use serde_json::json;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Object, RefOr};

use crate::dialout::rules;
use crate::notification::kore::MAX_CONVERSATION_ID_CHARS;

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
    #[schema(rename = "conversationId", schema_with = conversation_id)]
    pub conversation_id: String,
    #[schema(schema_with = notification_status)]
    pub status: String,
    /// E.g. `Busy Here`; stored in canonical form (`busy-here`).
    #[schema(rename = "reasonCode")]
    pub reason_code: Option<String>,
    /// E.g. `486 Busy Here`: a SIP code and its reason.
    pub reason: Option<String>,
    /// Also spelled `callDuration`.
    #[schema(schema_with = duration)]
    pub duration: Option<String>,
    /// An answering-machine-detection result (`amd_human_detected`, …) or, on failed calls,
    /// the mode (`disabled`, `detect`, `disconnect`).
    pub machinedetection: Option<String>,
    #[schema(schema_with = gateway_time)]
    pub callconnecttime: Option<String>,
    #[schema(rename = "callDisconnectTime", schema_with = gateway_time)]
    pub call_disconnect_time: Option<String>,
    /// How long the phone rang, in milliseconds (`ring_ms`).
    #[schema(rename = "ringDurationInMS", schema_with = milliseconds)]
    pub ring_duration_in_ms: Option<String>,
    /// How long the call took to connect, in milliseconds (`connect_ms`).
    #[schema(rename = "connectDurationInMS", schema_with = milliseconds)]
    pub connect_duration_in_ms: Option<String>,
}

/// `ringDurationInMS`, `connectDurationInMS`.
fn milliseconds() -> AnyOfBuilder {
    string_or_number().description(Some(
        "Whole milliseconds, as a number or a string holding one.",
    ))
}

/// The body of `POST /jambonz/notify`: a jambonz `call_status_hook` webhook, or the `amd`
/// verb's `actionHook` event (which adds `type`). Keys are matched ignoring case, `_` and
/// `-`; every other key (`from`, `to`, `customerData`, AMD's `reason`, `greeting`, …) is kept
/// in the stored payload.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "call_sid": "9b5c8f2e-3d41-4b7a-a6e0-1f2c3d4e5f60",
    "direction": "outbound",
    "call_status": "completed",
    "sip_status": 200,
    "sip_reason": "OK",
    "duration": 27,
    "call_termination_by": "caller"
}))]
pub struct JambonzWebhookFields {
    /// The call's id (the conversation id of the call record).
    #[schema(schema_with = conversation_id)]
    pub call_sid: String,
    /// `trying`, `ringing`, `early-media`, `in-progress`, `completed`, `failed`, `busy` or
    /// `no-answer`; required unless `type` is given (an AMD event is then `in-progress`).
    pub call_status: Option<String>,
    /// An AMD event: `amd_human_detected`, `amd_machine_detected`, … (the same eight names as
    /// Kore.ai's `machinedetection` results).
    #[schema(rename = "type")]
    pub kind: Option<String>,
    #[schema(schema_with = sip_status)]
    pub sip_status: Option<String>,
    /// E.g. `Busy Here`.
    pub sip_reason: Option<String>,
    #[schema(schema_with = duration)]
    pub duration: Option<String>,
    /// Who hung up, e.g. `caller`; stored as the reason code.
    pub call_termination_by: Option<String>,
}

/// A SIP status code, as a number or a string holding one.
fn sip_status() -> AnyOfBuilder {
    string_or_number().description(Some("A SIP status code (`486`), 100 to 699."))
}

/// The body of `POST /twilio/notify`: a Twilio status callback or asynchronous AMD callback,
/// `application/x-www-form-urlencoded`. Every parameter is kept in the stored payload.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "CallSid": "CA9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c",
    "CallStatus": "completed",
    "CallDuration": "34",
    "SipResponseCode": "200",
    "Timestamp": "Thu, 14 Mar 2024 09:21:41 +0000",
    "SequenceNumber": "3"
}))]
pub struct TwilioCallbackFields {
    /// The call's id (the conversation id of the call record).
    #[schema(rename = "CallSid", schema_with = conversation_id)]
    pub call_sid: String,
    /// `queued`, `initiated`, `ringing`, `in-progress`, `completed`, `busy`, `failed`,
    /// `no-answer` or `canceled`; required unless `AnsweredBy` is given (the AMD callback is
    /// then `in-progress`).
    #[schema(rename = "CallStatus")]
    pub call_status: Option<String>,
    /// Whole seconds.
    #[schema(rename = "CallDuration")]
    pub call_duration: Option<String>,
    /// E.g. `486`.
    #[schema(rename = "SipResponseCode")]
    pub sip_response_code: Option<String>,
    /// RFC 2822, e.g. `Thu, 14 Mar 2024 09:21:41 +0000`: when the callback's status began.
    #[schema(rename = "Timestamp")]
    pub timestamp: Option<String>,
    /// `human`, `machine_start`, `machine_end_beep`, `machine_end_silence`,
    /// `machine_end_other`, `fax` or `unknown`.
    #[schema(rename = "AnsweredBy")]
    pub answered_by: Option<String>,
}

/// The body of `POST /jambonz/notify`: [`JambonzWebhookFields`], with a non-blank
/// `call_status` or `type`.
pub struct JambonzWebhook;

impl utoipa::PartialSchema for JambonzWebhook {
    fn schema() -> RefOr<Schema> {
        either_required(JambonzWebhookFields::schema(), ["call_status", "type"])
    }
}

impl utoipa::ToSchema for JambonzWebhook {
    fn name() -> Cow<'static, str> {
        "JambonzWebhook".into()
    }
}

/// The body of `POST /twilio/notify`: [`TwilioCallbackFields`], with a non-blank
/// `CallStatus` or `AnsweredBy`.
pub struct TwilioCallback;

impl utoipa::PartialSchema for TwilioCallback {
    fn schema() -> RefOr<Schema> {
        either_required(TwilioCallbackFields::schema(), ["CallStatus", "AnsweredBy"])
    }
}

impl utoipa::ToSchema for TwilioCallback {
    fn name() -> Cow<'static, str> {
        "TwilioCallback".into()
    }
}

/// `fields`, and at least one of `keys` present as a non-blank string.
fn either_required(fields: RefOr<Schema>, keys: [&str; 2]) -> RefOr<Schema> {
    let present = |key: &str| {
        ObjectBuilder::new()
            .property(
                key,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(not_blank_pattern())),
            )
            .required(key)
    };
    AllOfBuilder::new()
        .item(fields)
        .item(
            AnyOfBuilder::new()
                .item(present(keys[0]))
                .item(present(keys[1])),
        )
        .into()
}

/// The characters `str::trim` removes (Unicode `White_Space`), for a character class.
const TRIMMED: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Control characters (`char::is_control`), for a character class.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

/// A text the API trims, then refuses when empty, longer than `max` characters or holding a
/// control character.
pub fn trimmed_text_pattern(max: usize) -> String {
    format!(
        "^[{TRIMMED}]*[^{CONTROL}{TRIMMED}]([^{CONTROL}]{{0,{inner}}}[^{CONTROL}{TRIMMED}])?[{TRIMMED}]*$",
        inner = max - 2
    )
}

/// A text the API trims, then refuses when empty.
pub fn not_blank_pattern() -> String {
    format!("[^{TRIMMED}]")
}

/// An IPv6 address in its usual forms (without an embedded IPv4 address).
const IPV6: &str = "(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|\
([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|\
([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|\
([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|\
:((:[0-9a-fA-F]{1,4}){1,7}|:))";

/// A port from 1 to 65535, as Rust reads a `u16` (an optional `+`, leading zeros).
const PORT: &str =
    r"\+?0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";

/// A dial-out `target`: `tel:` and up to 20 digits with an optional `+`, or
/// `sip:user@host[:port]`; the scheme in any case, surrounding whitespace ignored.
pub fn dialout_target_pattern() -> String {
    let tel = format!(
        "[Tt][Ee][Ll]:\\+?[0-9]{{1,{}}}",
        crate::dialout::rules::MAX_TEL_DIGITS
    );
    let host = r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*";
    let sip = format!("[Ss][Ii][Pp]:[^@{CONTROL}{TRIMMED}]+@({host}|\\[{IPV6}\\])(:{PORT})?");
    format!("^[{TRIMMED}]*({tel}|{sip})[{TRIMMED}]*$")
}

/// A nullable string matching `pattern`.
fn nullable_text(pattern: String) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(pattern))
}

/// `target` of `POST /v1/dialouts`.
pub fn dialout_target() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(dialout_target_pattern()))
        .description(Some(
            "`tel:` and digits with an optional leading `+` (at most 20 digits), or \
             `sip:user@host[:port]` (a host name, IPv4 address or `[IPv6]` literal; a port from 1 \
             to 65535). Surrounding whitespace is ignored.",
        ))
        .examples([json!("tel:911234567890")])
        .build()
}

/// `caller` of `POST /v1/dialouts`.
pub fn dialout_caller() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(trimmed_text_pattern(rules::MAX_TEXT)))
        .description(Some(format!(
            "The user part of the caller id: 1 to {} characters once surrounding whitespace is \
             trimmed, no control characters.",
            rules::MAX_TEXT
        )))
        .examples([json!("+127061657882")])
        .build()
}

/// `trunk` of `POST /v1/dialouts`.
pub fn dialout_trunk() -> Object {
    nullable_text(trimmed_text_pattern(rules::MAX_TEXT))
        .description(Some(format!(
            "The carrier, 1 to {} characters as `caller`; the account's default when absent.",
            rules::MAX_TEXT
        )))
        .build()
}

/// `machine_detection` of `POST /v1/dialouts`.
pub fn machine_detection() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            json!("disconnect"),
            json!("detect"),
            json!("disabled"),
            serde_json::Value::Null,
        ]))
        .description(Some(
            "Answering-machine detection; the gateway's default (disabled) when absent.",
        ))
        .build()
}

/// `conversationId` of `POST /notify`.
pub fn conversation_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(trimmed_text_pattern(MAX_CONVERSATION_ID_CHARS)))
        .description(Some(format!(
            "The call's id: 1 to {MAX_CONVERSATION_ID_CHARS} characters once surrounding \
             whitespace is trimmed, no control characters; not necessarily a UUID."
        )))
        .build()
}

/// `status` of `POST /notify`.
pub fn notification_status() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(not_blank_pattern()))
        .description(Some(
            "`answered`, `call-in-progress`, `completed` or `failed` (any case, `-`, `_` or \
             spaces between words); the other sources' statuses are understood too; another \
             status is stored (with a warning) but does not change the call's state. Not blank.",
        ))
        .build()
}
