//! Calls: `GET /v1/calls` (filtered, keyset-paginated), `GET /v1/calls/{conversation_id}`
//! and `GET /v1/calls/export` (every matching call, streamed as CSV or NDJSON).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use utoipa_axum::routes;

use super::error::{ApiError, DisplayChain, Result};
use super::extract::Path;
use super::health::Readiness;
use super::openapi::Routes;
use super::openapi::query::{CallFilters, ExportOptions, Pagination};
use super::openapi::responses::{Internal, InvalidParameter, NotFound, Unavailable};
use super::params::{CALL_FILTERS, Params, encode_cursor};
use crate::call::Call;
use crate::notification::Event;
use crate::store::query::{CallCursor, CallFilter, Page};
use crate::store::{Store, StoredEvent};

pub fn router() -> Routes {
    Routes::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(show))
}

/// A page of calls.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallPage {
    pub data: Vec<Call>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// A call and its events in received order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: Call,
    pub events: Vec<EventView>,
}

/// One event as the API shows it: normalized fields, when it arrived, and the payload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: i64,
    #[serde(flatten)]
    pub event: Event,
    pub received_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

impl From<StoredEvent> for EventView {
    fn from(stored: StoredEvent) -> Self {
        Self {
            id: stored.recorded.id,
            event: stored.recorded.event,
            received_at: stored.recorded.received_at,
            payload: stored.payload,
        }
    }
}

/// List calls, newest `occurred_at` first.
///
/// Filters combine (all must match). Pages are keyset-paginated: pass `next_cursor` back as
/// `cursor` for the next page, with the same filters.
#[utoipa::path(
    get,
    path = "/calls",
    operation_id = "list_calls",
    tag = "calls",
    params(CallFilters, Pagination),
    responses(
        (status = 200, description = "A page of calls.", body = CallPage),
        (status = 400, response = InvalidParameter),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn list(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    RawQuery(query): RawQuery,
) -> Result<Json<CallPage>> {
    let known: Vec<&str> = CALL_FILTERS
        .iter()
        .copied()
        .chain(["limit", "cursor"])
        .collect();
    let params = Params::parse(query.as_deref(), &known)?;
    let filter = params.call_filter(chrono_tz::UTC)?;
    let (limit, after) = (params.limit()?, params.call_cursor()?);
    readiness.check()?;
    let Page { items, next } = store.list_calls(&filter, after.as_ref(), limit).await?;
    Ok(Json(CallPage {
        data: items,
        next_cursor: next.map(|c| encode_cursor(c.occurred_at, &c.conversation_id)),
    }))
}

/// One call, with its events.
#[utoipa::path(
    get,
    path = "/calls/{conversation_id}",
    operation_id = "get_call",
    tag = "calls",
    params(("conversation_id" = String, Path, description = "The call's `conversationId`.")),
    responses(
        (status = 200, description = "The call and its events in received order.", body = CallDetail),
        (status = 400, response = InvalidParameter),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn show(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    Path(conversation_id): Path<String>,
) -> Result<Json<CallDetail>> {
    readiness.check()?;
    let (call, events) = store.call(&conversation_id).await?.ok_or_else(|| {
        ApiError::NotFound(format!("no call with conversation_id `{conversation_id}`"))
    })?;
    Ok(Json(CallDetail {
        call,
        events: events.into_iter().map(EventView::from).collect(),
    }))
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Csv,
    Ndjson,
}

/// Calls fetched per query while exporting; memory stays flat whatever the total.
const EXPORT_PAGE: u32 = 1000;

/// The CSV columns, in order.
const CSV_HEADER: [&str; 23] = [
    "conversation_id",
    "state",
    "status",
    "outcome",
    "reason_code",
    "reason",
    "sip_code",
    "sip_reason",
    "duration_s",
    "connected_at",
    "ended_at",
    "amd_mode",
    "amd_result",
    "occurred_at",
    "first_seen_at",
    "last_seen_at",
    "event_count",
    "source",
    "ring_ms",
    "connect_ms",
    "dialout_id",
    "dialout_target",
    "dialout_caller",
];

/// Export every call matching the filters, streamed.
///
/// Newest `occurred_at` first, as a download (`Content-Disposition: attachment`). In CSV, a
/// cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, tab or
/// carriage return) is prefixed with `'`.
#[utoipa::path(
    get,
    path = "/calls/export",
    operation_id = "export_calls",
    tag = "calls",
    params(CallFilters, ExportOptions),
    responses(
        (status = 200, description = "The calls: CSV with a header row, or NDJSON with one call per line.",
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"calls.csv\"` or `…calls.ndjson`")),
            content(
                (String = "text/csv", example = "conversation_id,state,status,outcome,…"),
                (Call = "application/x-ndjson"),
            ),
        ),
        (status = 400, response = InvalidParameter),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn export(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let known: Vec<&str> = CALL_FILTERS.iter().copied().chain(["format"]).collect();
    let params = Params::parse(query.as_deref(), &known)?;
    let filter = params.call_filter(chrono_tz::UTC)?;
    let format = match params.single("format")? {
        None | Some("csv") => ExportFormat::Csv,
        Some("ndjson") => ExportFormat::Ndjson,
        Some(other) => {
            return Err(ApiError::BadParameter {
                parameter: "format".into(),
                message: format!("`{other}` is not one of csv, ndjson"),
            });
        }
    };
    readiness.check()?;
    // The first page is read before answering, so that an unavailable database is a 503
    // rather than a 200 with an empty body.
    let first = store.list_calls(&filter, None, EXPORT_PAGE).await?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(stream_export(store, filter, first, format, sender));
    let (content_type, file) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "calls.csv"),
        ExportFormat::Ndjson => ("application/x-ndjson", "calls.ndjson"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(ReceiverStream::new(receiver)),
    )
        .into_response())
}

/// Writes page after page into the response until the last one or until the client leaves.
async fn stream_export(
    store: Store,
    filter: CallFilter,
    first: Page<Call, CallCursor>,
    format: ExportFormat,
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    if format == ExportFormat::Csv && sender.send(Ok(csv_rows(&[], true))).await.is_err() {
        return;
    }
    let mut page = first;
    loop {
        let chunk = match format {
            ExportFormat::Csv => csv_rows(&page.items, false),
            ExportFormat::Ndjson => ndjson_rows(&page.items),
        };
        if sender.send(Ok(chunk)).await.is_err() {
            return;
        }
        let Some(after) = page.next else { return };
        page = match store.list_calls(&filter, Some(&after), EXPORT_PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::error!(error = %DisplayChain(&err), "export stopped");
                let _ = sender
                    .send(Err(std::io::Error::other("export stopped")))
                    .await;
                return;
            }
        };
    }
}

fn ndjson_rows(calls: &[Call]) -> Bytes {
    let mut out = Vec::new();
    for call in calls {
        if serde_json::to_writer(&mut out, call).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}

fn csv_rows(calls: &[Call], header: bool) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    let text = |v: Option<String>| v.unwrap_or_default();
    if header {
        let _ = writer.write_record(CSV_HEADER);
    }
    for call in calls {
        let record = [
            call.conversation_id.clone(),
            call.state.as_str().to_owned(),
            text(call.status.clone()),
            call.outcome.as_str().to_owned(),
            text(call.reason_code.clone()),
            text(call.reason.clone()),
            text(call.sip_code.map(|c| c.to_string())),
            text(call.sip_reason.clone()),
            text(call.duration_s.map(|d| d.to_string())),
            text(time(call.connected_at)),
            text(time(call.ended_at)),
            text(call.amd_mode.map(|m| m.as_str().to_owned())),
            text(call.amd_result.map(|r| r.as_str().to_owned())),
            text(time(Some(call.occurred_at))),
            text(time(Some(call.first_seen_at))),
            text(time(Some(call.last_seen_at))),
            call.event_count.to_string(),
            call.source.source().to_owned(),
            text(call.ring_ms.map(|ms| ms.to_string())),
            text(call.connect_ms.map(|ms| ms.to_string())),
            text(call.dialout.as_ref().map(|d| d.id.to_string())),
            text(call.dialout.as_ref().map(|d| d.target.clone())),
            text(call.dialout.as_ref().map(|d| d.caller.clone())),
        ];
        let _ = writer.write_record(record.iter().map(|cell| defuse_formula(cell).into_owned()));
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

/// A cell a spreadsheet would run as a formula gets a leading `'`, so it reads as text.
fn defuse_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

#[cfg(test)]
mod tests {
    use super::defuse_formula;

    #[test]
    fn formula_cells_are_defused() {
        for (cell, expected) in [
            ("=1+1", "'=1+1"),
            ("+44 20", "'+44 20"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("busy-here", "busy-here"),
            ("", ""),
        ] {
            assert_eq!(defuse_formula(cell), expected);
        }
    }
}
