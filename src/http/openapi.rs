//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations, and its reference page: `GET /openapi.json` and `GET /docs` (Swagger UI,
//! bundled in the binary; nothing is fetched from elsewhere).
//!
//! Routes are registered through [`Routes`], which takes only what `routes!` makes of annotated
//! handlers, so a route cannot be served without being documented.

mod page;
pub mod query;
pub mod responses;
pub mod schema;

use axum::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use super::AppState;
use responses::{
    BadRequest, BodyTimeout, BodyTooLarge, DialoutsDisabled, GatewayFailed, IdempotencyConflict,
    Internal, InvalidDialout, InvalidNotification, InvalidParameter, MalformedBody, NotFound,
    NotifyUnauthorized, Unauthorized, Unavailable,
};

/// A resource's routes, documented by construction: the only way in is [`Routes::routes`],
/// which takes what [`routes!`] makes of handlers annotated with `#[utoipa::path]` and serves
/// each at the method and path its annotation documents. There is deliberately no way to add
/// a plain axum route.
#[derive(Default)]
pub struct Routes(OpenApiRouter<AppState>);

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the handlers of one `routes!(…)`.
    pub fn routes(self, routes: UtoipaMethodRouter<AppState>) -> Self {
        Self(self.0.routes(routes))
    }

    pub fn merge(self, other: Routes) -> Self {
        Self(self.0.merge(other.0))
    }

    /// The routes with their document, for assembling the application.
    pub fn into_router(self) -> OpenApiRouter<AppState> {
        self.0
    }
}

/// What the document says besides its operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "calltrail",
        description = "Receives voice-gateway call-status notifications (Kore.ai at `/notify`, \
            jambonz at `/jambonz/notify`, Twilio at `/twilio/notify`), stores them \
            durably and serves call history, outcomes and statistics under `/v1`.\n\n\
            Errors are RFC 9457 problem details (`application/problem+json`). `/v1` requires an \
            API key and `/notify` a notification token when any are configured (`api.keys`, \
            `notify.tokens`); with none configured they are open.",
    ),
    tags(
        (name = "notify", description = "Call-status notifications from the voice gateways."),
        (name = "calls", description = "One record per call, folded from its notifications."),
        (name = "stats", description = "Counts, rates, durations and time buckets over calls."),
        (name = "deliveries", description = "Every body received at `/notify`, and reprocessing it."),
        (name = "dialouts", description = "Calls placed through the voice gateway, each correlated with its call."),
        (name = "operations", description = "Liveness, readiness and metrics."),
        (name = "reference", description = "This document and its browsable page."),
        (name = "dashboard", description = "The dashboard: pages served to a browser, which call `/v1`."),
    ),
    components(
        schemas(super::error::Problem),
        responses(
            InvalidParameter,
            BadRequest,
            MalformedBody,
            InvalidNotification,
            Unauthorized,
            NotifyUnauthorized,
            NotFound,
            BodyTooLarge,
            BodyTimeout,
            Unavailable,
            Internal,
            InvalidDialout,
            GatewayFailed,
            DialoutsDisabled,
            IdempotencyConflict,
        ),
    ),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

/// Security scheme names.
const API_KEY: &str = "api_key";
const API_KEY_HEADER: &str = "api_key_header";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, document: &mut Document) {
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            bearer("One of `api.keys` as `Authorization: Bearer KEY`."),
        );
        components.add_security_scheme(
            API_KEY_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "One of `api.keys` in the `X-Api-Key` header.",
            ))),
        );
        components.add_security_scheme(
            "notify_token",
            bearer("One of `notify.tokens` as `Authorization: Bearer TOKEN`."),
        );
        components.add_security_scheme(
            "notify_token_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Calltrail-Token",
                "One of `notify.tokens` in the `X-Calltrail-Token` header (which a dial-out can ask \
                 the gateway to send through `notifyHeaders`).",
            ))),
        );
        components.add_security_scheme(
            "notify_token_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "One of `notify.tokens` as `?token=`.",
            ))),
        );
    }
}

/// Documents what [`auth::require_api_key`](super::auth::require_api_key) adds to every
/// operation of `document`: an API key, and a `401` without one.
pub fn require_api_key(document: &mut Document) {
    let (name, response) = Unauthorized::response();
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation.security = Some(vec![
                SecurityRequirement::new::<_, _, &str>(API_KEY, []),
                SecurityRequirement::new::<_, _, &str>(API_KEY_HEADER, []),
            ]);
            operation
                .responses
                .responses
                .insert("401".into(), RefOr::Ref(Ref::from_response_name(name)));
        }
    }
    document
        .components
        .get_or_insert_with(Default::default)
        .responses
        .insert(name.into(), response);
}

/// `GET /openapi.json` and `GET /docs` with the page's assets.
pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(openapi_json))
        .routes(routes!(page::docs))
        .routes(routes!(page::docs_asset))
}

/// The document, serialized once, for `GET /openapi.json`.
#[derive(Clone)]
struct Serialized(Bytes);

/// A layer handing `document` to `GET /openapi.json`.
pub fn serve_document(document: &Document) -> Extension<impl Clone + Send + Sync + 'static> {
    let json = serde_json::to_vec(document).expect("the OpenAPI document serializes");
    Extension(Serialized(Bytes::from(json)))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "reference",
    responses((status = 200, description = "This document.", body = Object, content_type = "application/json")),
)]
async fn openapi_json(Extension(Serialized(json)): Extension<Serialized>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use utoipa::ToResponse;

    use super::responses::{
        BodyTimeout, BodyTooLarge, Internal, InvalidNotification, InvalidParameter, MalformedBody,
        NotFound, Unauthorized, Unavailable,
    };

    fn document() -> Value {
        serde_json::to_value(crate::http::openapi()).unwrap()
    }

    /// Every `$ref` string anywhere in `value`.
    fn references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    found.push(reference.clone());
                }
                map.values().for_each(|v| references(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, found)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_and_its_references_resolve() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(!found.is_empty());
        for reference in found {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(
                document.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let document = document();
        let mut ids = Vec::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "{ids:?}");
    }

    /// The `enum` of a type's schema.
    fn schema_values<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let values = schema["enum"].as_array().expect("an enumeration");
        values
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn vocabularies_are_documented_with_their_api_spellings() {
        use crate::call::{CallState, Outcome};
        use crate::notification::{AmdMode, AmdResult};
        use crate::store::DeliveryResult;

        let spellings = |all: Vec<&str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            schema_values::<CallState>(),
            spellings(CallState::ALL.iter().map(|v| v.as_str()).collect())
        );
        assert_eq!(
            schema_values::<Outcome>(),
            spellings(Outcome::ALL.iter().map(|v| v.as_str()).collect())
        );
        assert_eq!(
            schema_values::<AmdMode>(),
            spellings(AmdMode::ALL.iter().map(|v| v.as_str()).collect())
        );
        assert_eq!(
            schema_values::<AmdResult>(),
            spellings(AmdResult::ALL.iter().map(|v| v.as_str()).collect())
        );
        let results = [
            DeliveryResult::Accepted,
            DeliveryResult::Duplicate,
            DeliveryResult::Rejected,
        ];
        assert_eq!(
            schema_values::<DeliveryResult>(),
            spellings(results.iter().map(|v| v.as_str()).collect())
        );
    }

    #[test]
    fn problem_examples_are_what_the_api_renders_for_their_status() {
        let cases = [
            (InvalidParameter::response(), 400),
            (MalformedBody::response(), 400),
            (InvalidNotification::response(), 422),
            (Unauthorized::response(), 401),
            (NotFound::response(), 404),
            (BodyTooLarge::response(), 413),
            (BodyTimeout::response(), 408),
            (Unavailable::response(), 503),
            (Internal::response(), 500),
        ];
        for ((name, response), status) in cases {
            let response = serde_json::to_value(response).unwrap();
            let example = &response["content"]["application/problem+json"]["example"];
            assert_eq!(example["status"], status, "{name}: {example}");
            assert!(
                example["type"]
                    .as_str()
                    .unwrap()
                    .starts_with("urn:calltrail:problem:"),
                "{name}"
            );
        }
    }
}
