//! The delivery log: `GET /v1/deliveries`, `GET /v1/deliveries/{id}`, and reprocessing
//! one (`POST /v1/deliveries/{id}/reprocess`) or many (`POST /v1/deliveries/reprocess`).

use axum::Json;
use axum::extract::{RawQuery, State};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::routes;

use super::error::{ApiError, Result};
use super::extract::Path;
use super::health::Readiness;
use super::openapi::Routes;
use super::openapi::query::{DeliveryFilters, Pagination};
use super::openapi::responses::{
    BadRequest, Internal, InvalidNotification, InvalidParameter, NotFound, Unavailable,
};
use super::params::{DELIVERY_FILTERS, Params, encode_cursor};
use super::receipt::{Receipt, answer};
use crate::notification::FieldError;
use crate::reprocess::{Counts, Reprocessor};
use crate::store::query::Page;
use crate::store::{Delivery, DeliveryResult, Store};

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(list))
        .routes(routes!(reprocess_all))
        .routes(routes!(show))
        .routes(routes!(reprocess_one))
}

/// One entry of the delivery log as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    /// The source whose endpoint received it; reprocessing reads it with that source's
    /// normalizer.
    pub source: crate::notification::Format,
    pub result: DeliveryResult,
    /// The request's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// The body as JSON where it parses, else as text (`body_encoding` says which; bytes
    /// that are not UTF-8 come base64-encoded).
    pub body: serde_json::Value,
    #[schema(schema_with = super::openapi::schema::body_encoding)]
    pub body_encoding: &'static str,
    /// For a rejected body: why.
    pub error: Option<String>,
    /// For a rejected JSON object: the fields at fault.
    pub errors: Vec<FieldError>,
    pub conversation_id: Option<String>,
    /// The event this delivery stored, or duplicated.
    pub event_id: Option<i64>,
    /// When the body was synced to calltrail's local spool, for a delivery that arrived
    /// while the database was away and was replayed from the spool (`received_at` is when
    /// it arrived); else null.
    pub spooled_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let (body, body_encoding) = match serde_json::from_slice(&d.body) {
            Ok(json) => (json, "json"),
            Err(_) => match String::from_utf8(d.body) {
                Ok(text) => (serde_json::Value::String(text), "text"),
                Err(bytes) => (
                    base64::engine::general_purpose::STANDARD
                        .encode(bytes.into_bytes())
                        .into(),
                    "base64",
                ),
            },
        };
        Self {
            id: d.id,
            received_at: d.received_at,
            source: d.source,
            result: d.result,
            content_type: d.content_type,
            body,
            body_encoding,
            error: d.error,
            errors: d.errors,
            conversation_id: d.conversation_id,
            event_id: d.event_id,
            spooled_at: d.spooled_at,
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// List deliveries: every body received at `/notify`, newest first.
///
/// Keyset-paginated like `/v1/calls`.
#[utoipa::path(
    get,
    path = "/deliveries",
    operation_id = "list_deliveries",
    tag = "deliveries",
    params(DeliveryFilters, Pagination),
    responses(
        (status = 200, description = "A page of deliveries.", body = DeliveryPage),
        (status = 400, response = InvalidParameter),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn list(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryPage>> {
    let known: Vec<&str> = DELIVERY_FILTERS
        .iter()
        .copied()
        .chain(["limit", "cursor"])
        .collect();
    let params = Params::parse(query.as_deref(), &known)?;
    let filter = params.delivery_filter()?;
    let (limit, after) = (params.limit()?, params.delivery_cursor()?);
    readiness.check()?;
    let Page { items, next } = store
        .list_deliveries(&filter, after.as_ref(), limit)
        .await?;
    Ok(Json(DeliveryPage {
        data: items.into_iter().map(DeliveryView::from).collect(),
        next_cursor: next.map(|c| encode_cursor(c.received_at, &c.id.to_string())),
    }))
}

/// One delivery.
#[utoipa::path(
    get,
    path = "/deliveries/{id}",
    operation_id = "get_delivery",
    tag = "deliveries",
    params(("id" = i64, Path, description = "The delivery's id.")),
    responses(
        (status = 200, description = "The delivery.", body = DeliveryView),
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
) -> Result<Json<DeliveryView>> {
    readiness.check()?;
    let delivery = store.delivery(id).await?.ok_or_else(|| no_delivery(id))?;
    Ok(Json(delivery.into()))
}

fn no_delivery(id: i64) -> ApiError {
    ApiError::NotFound(format!("no delivery with id {id}"))
}

/// Reprocess one delivery through today's normalizer and configuration.
///
/// A rejected delivery may become accepted (a new event); an accepted one has its event's
/// normalized fields recomputed in place. The call is folded again and the delivery's outcome
/// updated. The answer is what `/notify` would answer for this body today.
#[utoipa::path(
    post,
    path = "/deliveries/{id}/reprocess",
    operation_id = "reprocess_delivery",
    tag = "deliveries",
    params(("id" = i64, Path, description = "The delivery's id.")),
    responses(
        (status = 200, description = "Stored, as `accepted` or `duplicate`.", body = super::receipt::Receipt),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 422, response = InvalidNotification),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn reprocess_one(
    State(reprocessor): State<Reprocessor>,
    State(readiness): State<Readiness>,
    Path(id): Path<i64>,
) -> Result<Json<Receipt>> {
    readiness.check()?;
    let ingested = reprocessor.one(id).await?.ok_or_else(|| no_delivery(id))?;
    answer(ingested.recorded, ingested.parsed)
}

/// Reprocess every delivery matching the filters, newest first.
///
/// Each is reprocessed as by `POST /v1/deliveries/{id}/reprocess`; deliveries arriving
/// meanwhile are left alone.
#[utoipa::path(
    post,
    path = "/deliveries/reprocess",
    operation_id = "reprocess_deliveries",
    tag = "deliveries",
    params(DeliveryFilters),
    responses(
        (status = 200, description = "How many deliveries were reprocessed, by their new outcome.", body = Counts),
        (status = 400, response = InvalidParameter),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn reprocess_all(
    State(reprocessor): State<Reprocessor>,
    State(readiness): State<Readiness>,
    RawQuery(query): RawQuery,
) -> Result<Json<Counts>> {
    let params = Params::parse(query.as_deref(), DELIVERY_FILTERS)?;
    let filter = params.delivery_filter()?;
    readiness.check()?;
    Ok(Json(reprocessor.all(&filter).await?))
}
