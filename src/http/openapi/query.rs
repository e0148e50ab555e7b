//! The query parameters of the `/v1` operations as the document shows them. The handlers read
//! them with [`Params`](crate::http::params::Params); the enumerations below come from the
//! same vocabularies the parser accepts, and the tests hold names and values in step.

use serde_json::json;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ArrayItems, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType,
    Type,
};
use utoipa::openapi::{RefOr, Required, Schema};

use crate::call::{CallState, Outcome};
use crate::http::params::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::notification::{AmdResult, Format};

/// The filters of `/v1/calls`, shared by the statistics and the export.
pub struct CallFilters;

/// Keyset pagination: `limit` and `cursor`.
pub struct Pagination;

/// `bucket` and `tz` of `/v1/stats`.
pub struct StatsOptions;

/// `format` of `/v1/calls/export`.
pub struct ExportOptions;

/// The filters of `/v1/deliveries`.
pub struct DeliveryFilters;

/// The filters of `/v1/dialouts`.
pub struct DialoutFilters;

impl IntoParams for DialoutFilters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let states = crate::dialout::DialoutState::ALL.iter().map(|s| s.as_str());
        vec![
            list("state", "Dial-outs in any of these states.", one_of(states)),
            dialout_target("Dial-outs to any of these targets."),
            dialout_caller("Dial-outs with any of these caller ids."),
            dialout_metadata("Dial-outs whose"),
            param(
                "since",
                "Dial-outs requested at or after this instant: RFC 3339, or a date `YYYY-MM-DD` for the \
                 start of that day in UTC.",
                instant(),
            ),
            param(
                "until",
                "Dial-outs requested before this instant (exclusive), in the same forms as `since`; \
                 must be later than `since`.",
                instant(),
            ),
        ]
        .into_iter()
        .map(ParameterBuilder::build)
        .collect()
    }
}

/// `target`: a dial-out's target, exactly as stored.
fn dialout_target(description: &str) -> ParameterBuilder {
    let description = format!("{description} Compared exactly (write `+` as `%2B` in a URL).");
    list("target", &description, string()).example(Some(json!(["tel:911234567890"])))
}

/// `caller`: a dial-out's caller id, exactly as stored.
fn dialout_caller(description: &str) -> ParameterBuilder {
    let description = format!("{description} Compared exactly (write `+` as `%2B` in a URL).");
    list("caller", &description, string()).example(Some(json!(["+127061657882"])))
}

/// `metadata.{key}`: one parameter per metadata key.
fn dialout_metadata(subject: &str) -> ParameterBuilder {
    param(
        crate::http::params::METADATA_FILTER,
        &format!(
            "{subject} dial-out `metadata` holds this value under `{{key}}`: e.g. `metadata.campaign=spring` \
             matches `{{\"campaign\": \"spring\"}}` (a number or boolean matches its JSON spelling, \
             `metadata.tier=1`). Give one parameter per key; all must match."
        ),
        string(),
    )
    .example(Some(json!("spring")))
}

impl IntoParams for CallFilters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let amd_results = AmdResult::ALL.iter().map(|r| r.as_str()).chain(["none"]);
        vec![
            list("state", "Calls in any of these states.", one_of(CallState::ALL.iter().map(|s| s.as_str()))),
            list("outcome", "Calls with any of these outcomes.", one_of(Outcome::ALL.iter().map(|o| o.as_str()))),
            list(
                "amd_result",
                "Calls with any of these answering-machine-detection results; `none` matches calls without one.",
                one_of(amd_results),
            ),
            list(
                "reason_code",
                "Calls with any of these reason codes, compared in canonical form (`Busy Here` finds `busy-here`).",
                ObjectBuilder::new().schema_type(Type::String),
            )
            .example(Some(json!(["busy-here"]))),
            list(
                "sip_code",
                "Calls with any of these SIP codes.",
                ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(100)).maximum(Some(699)),
            )
            .example(Some(json!([486, 603]))),
            param(
                "since",
                "Calls whose `occurred_at` is at or after this instant: RFC 3339, or a date `YYYY-MM-DD` for \
                 the start of that day (in UTC; in `tz` for `/v1/stats`).",
                instant(),
            )
            .example(Some(json!("2024-05-01"))),
            param(
                "until",
                "Calls whose `occurred_at` is before this instant (exclusive), in the same forms as `since`; \
                 must be later than `since`.",
                instant(),
            )
            .example(Some(json!("2024-05-02T00:00:00Z"))),
            param("q", "Calls whose `conversation_id` starts with this text.", string()),
            param("min_duration", "Calls lasting at least this many seconds.", seconds()),
            param("max_duration", "Calls lasting at most this many seconds.", seconds()),
            list(
                "source",
                "Calls from any of these gateways.",
                one_of(Format::ALL.iter().map(|f| f.source())),
            ),
            param("min_ring_ms", "Calls whose phone rang at least this many milliseconds.", seconds()),
            param("max_ring_ms", "Calls whose phone rang at most this many milliseconds.", seconds()),
            param(
                "min_connect_ms",
                "Calls that took at least this many milliseconds to connect.",
                seconds(),
            ),
            param(
                "max_connect_ms",
                "Calls that took at most this many milliseconds to connect.",
                seconds(),
            ),
            dialout_target("Calls placed through `POST /v1/dialouts` to any of these targets."),
            dialout_caller("Calls placed through `POST /v1/dialouts` with any of these caller ids."),
            dialout_metadata("Calls placed through `POST /v1/dialouts` whose"),
        ]
        .into_iter()
        .map(ParameterBuilder::build)
        .collect()
    }
}

impl IntoParams for Pagination {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(DEFAULT_LIMIT.into()));
        vec![
            param("limit", "Items per page.", limit).build(),
            param(
                "cursor",
                "The `next_cursor` of the previous page, to continue after it (with the same filters). \
                 Pages stay stable while new items arrive: none is skipped or repeated. Opaque \
                 (base64url); a value this API did not return is refused with `400`; empty is none.",
                string().pattern(Some("^[A-Za-z0-9_-]*$")),
            )
            .build(),
        ]
    }
}

impl IntoParams for StatsOptions {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            param(
                "bucket",
                "Adds `buckets`: one per quarter hour, hour or day of the range (`since`–`until`, else the calls' own \
                 span), empty ones included.",
                one_of(["quarter_hour", "hour", "day"]),
            )
            .build(),
            param(
                "tz",
                "The IANA time zone of the buckets and of dates in `since`/`until`.",
                one_of(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())).default(Some(json!("UTC"))),
            )
            .example(Some(json!("Europe/Berlin")))
            .build(),
        ]
    }
}

impl IntoParams for ExportOptions {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            param(
                "format",
                "`csv` (a header row, then a row per call) or `ndjson` (a call per line).",
                one_of(["csv", "ndjson"]).default(Some(json!("csv"))),
            )
            .build(),
        ]
    }
}

impl IntoParams for DeliveryFilters {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            list(
                "result",
                "Deliveries with any of these outcomes.",
                one_of(["accepted", "duplicate", "rejected"]),
            )
            .build(),
            param(
                "since",
                "Deliveries received at or after this instant: RFC 3339, or a date `YYYY-MM-DD` for the \
                 start of that day in UTC.",
                instant(),
            )
            .build(),
            param(
                "until",
                "Deliveries received before this instant (exclusive), in the same forms as `since`; \
                 must be later than `since`.",
                instant(),
            )
            .build(),
            param(
                "conversation_id",
                "Deliveries whose body named this `conversationId` (duplicates included). The log \
                 has no index by call: give `since` (e.g. the call's `first_seen_at`) to keep the \
                 read short.",
                string(),
            )
            .build(),
        ]
    }
}

/// An optional query parameter; given empty, it is as if absent.
fn param(name: &str, description: &str, schema: impl Into<Schema>) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(or_empty(schema.into())))
}

/// `schema`, or an empty value: a parameter given empty (`?limit=`) is as if absent. A schema
/// that takes any string takes the empty one already.
fn or_empty(schema: Schema) -> Schema {
    let any_string = |schema: &Schema| {
        matches!(schema, Schema::Object(object)
            if object.schema_type == SchemaType::Type(Type::String)
                && object.enum_values.is_none()
                && object.pattern.is_none())
    };
    let takes_empty = match &schema {
        Schema::Array(array) => match &array.items {
            ArrayItems::RefOrSchema(items) => {
                matches!(items.as_ref(), RefOr::T(items) if any_string(items))
            }
            ArrayItems::False => false,
        },
        other => any_string(other),
    };
    if takes_empty {
        return schema;
    }
    AnyOfBuilder::new()
        .item(schema)
        .item(string().enum_values(Some([""])))
        .build()
        .into()
}

/// An optional query parameter that may repeat (`state=failed&state=completed`) or take a
/// comma-separated list (`state=failed,completed`); any of the values matches.
fn list(name: &str, description: &str, items: ObjectBuilder) -> ParameterBuilder {
    let description = format!("{description} Repeat the parameter or give a comma-separated list.");
    param(name, &description, ArrayBuilder::new().items(items))
        .style(Some(ParameterStyle::Form))
        .explode(Some(true))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A string that is one of `values`.
fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
    string().enum_values(Some(values))
}

fn seconds() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
}

/// An RFC 3339 instant or a date.
fn instant() -> AnyOfBuilder {
    let with_format = |format| string().format(Some(SchemaFormat::KnownFormat(format)));
    AnyOfBuilder::new()
        .item(with_format(KnownFormat::DateTime))
        .item(with_format(KnownFormat::Date))
}
