//! `GET /v1/stats`: counts, rates, durations and time buckets over the calls' filters.

use axum::Json;
use axum::extract::{RawQuery, State};
use chrono::Utc;
use utoipa_axum::routes;

use super::error::{ApiError, Result};
use super::health::Readiness;
use super::openapi::Routes;
use super::openapi::query::{CallFilters, StatsOptions};
use super::openapi::responses::{Internal, InvalidParameter, Unavailable};
use super::params::{CALL_FILTERS, Params};
use crate::stats::{self, BucketSize, BucketSpec, Stats};
use crate::store::Store;

pub fn router() -> Routes {
    Routes::new().routes(routes!(show))
}

/// Statistics over the calls matching the filters.
///
/// Counts by state, outcome, AMD result and reason code; answer, human and machine rates;
/// duration figures; and, with `bucket`, the calls per quarter hour, hour or day in `tz`.
#[utoipa::path(
    get,
    path = "/stats",
    operation_id = "get_stats",
    tag = "stats",
    params(CallFilters, StatsOptions),
    responses(
        (status = 200, description = "The statistics.", body = Stats),
        (status = 400, response = InvalidParameter),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    ),
)]
async fn show(
    State(store): State<Store>,
    State(readiness): State<Readiness>,
    RawQuery(query): RawQuery,
) -> Result<Json<Stats>> {
    let known: Vec<&str> = CALL_FILTERS
        .iter()
        .copied()
        .chain(["bucket", "tz"])
        .collect();
    let params = Params::parse(query.as_deref(), &known)?;
    let tz = params.tz()?;
    let filter = params.call_filter(tz)?;
    let size = match params.single("bucket")? {
        None => None,
        Some("quarter_hour") => Some(BucketSize::QuarterHour),
        Some("hour") => Some(BucketSize::Hour),
        Some("day") => Some(BucketSize::Day),
        Some(other) => {
            return Err(bad_bucket(format!(
                "`{other}` is not one of quarter_hour, hour, day"
            )));
        }
    };
    readiness.check()?;
    let aggregates = store.aggregates(&filter, size.is_some()).await?;
    let spec = match size {
        None => None,
        Some(size) => bucket_range(&filter, &aggregates).map(|(from, until)| BucketSpec {
            size,
            tz,
            from,
            until,
        }),
    };
    if let Some(spec) = spec {
        stats::bucket_starts(spec).map_err(bad_bucket)?;
    }
    let mut stats = stats::compute(&aggregates, spec);
    if size.is_some() && stats.buckets.is_none() {
        stats.buckets = Some(Vec::new());
    }
    Ok(Json(stats))
}

fn bad_bucket(message: String) -> ApiError {
    ApiError::BadParameter {
        parameter: "bucket".into(),
        message,
    }
}

/// The range the buckets cover: `since`/`until` when given, else the calls' own span.
fn bucket_range(
    filter: &crate::store::query::CallFilter,
    aggregates: &stats::Aggregates,
) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let slot_time = |slot: i64| chrono::DateTime::from_timestamp(slot * stats::SLOT_SECONDS, 0);
    let first = aggregates
        .slots
        .iter()
        .map(|(slot, _, _)| *slot)
        .min()
        .and_then(slot_time);
    let last = aggregates
        .slots
        .iter()
        .map(|(slot, _, _)| *slot + 1)
        .max()
        .and_then(slot_time);
    let from = filter.since.or(first)?;
    let until = filter.until.or(last)?;
    Some((from, until))
}
