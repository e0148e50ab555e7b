//! Call statistics from the store's aggregates (pure): counts by state, outcome, AMD result
//! and reason code, answer/human/machine rates, duration percentiles, and time buckets in a
//! chosen time zone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::call::{CallState, Outcome};
use crate::notification::AmdResult;

/// Seconds in one of the store's quarter-hour slots.
pub const SLOT_SECONDS: i64 = 900;

/// The most buckets one request may ask for.
pub const MAX_BUCKETS: usize = 10_000;

/// Calls sharing every dimension the statistics break down by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownRow {
    pub state: CallState,
    pub outcome: Outcome,
    pub amd_result: Option<AmdResult>,
    pub reason_code: Option<String>,
    pub answered: bool,
    pub calls: i64,
}

/// What the store aggregates for one filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregates {
    pub breakdown: Vec<BreakdownRow>,
    /// `(duration_s, calls)`.
    pub durations: Vec<(i64, i64)>,
    /// `(ring_ms rounded to 100 ms, calls)`, over answered calls with a ring time.
    pub ring_times: Vec<(i64, i64)>,
    /// `(quarter-hour slot since the epoch, outcome, calls)`, when buckets are wanted.
    pub slots: Vec<(i64, Outcome, i64)>,
}

/// Bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSize {
    /// Quarter hours, the store's own slots.
    QuarterHour,
    Hour,
    Day,
}

/// The statistics document of `GET /v1/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Calls matching the filters.
    pub calls: i64,
    /// Calls per `state`; every state is present.
    pub by_state: BTreeMap<&'static str, i64>,
    /// Calls per `outcome`; every outcome is present.
    pub by_outcome: BTreeMap<&'static str, i64>,
    /// Calls per `amd_result`; every result is present, calls without one are not counted.
    pub by_amd_result: BTreeMap<&'static str, i64>,
    /// Calls per canonical `reason_code`, for the codes that occur.
    pub by_reason_code: BTreeMap<String, i64>,
    /// Calls with a `connected_at` / calls; null when there are no calls.
    pub answer_rate: Option<f64>,
    /// Outcome `human` / calls with an `amd_result`; null when none has one.
    pub human_rate: Option<f64>,
    /// Outcome `machine` / calls with an `amd_result`; null when none has one.
    pub machine_rate: Option<f64>,
    pub duration_s: DurationStats,
    /// Calls with a duration, per duration range; every range is present.
    pub duration_histogram: Vec<DurationBin>,
    pub time_to_answer: TimeToAnswer,
    /// One per bucket of the range, empty ones included; only when `bucket` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub buckets: Option<Vec<Bucket>>,
}

/// Duration figures over calls that have a duration; all null when none has.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DurationStats {
    /// Mean, in seconds.
    pub avg: Option<f64>,
    /// Median, in whole seconds.
    pub p50: Option<i64>,
    /// 95th percentile, in whole seconds.
    pub p95: Option<i64>,
    /// Longest, in whole seconds.
    pub max: Option<i64>,
}

/// How long answered calls rang before they were answered (`ring_ms`), at 100 ms
/// resolution: each ring time is rounded to the nearest 100 ms before it is counted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TimeToAnswer {
    /// Answered calls (with a `connected_at`) that have a `ring_ms`.
    pub calls: i64,
    /// Mean, in milliseconds; null when `calls` is 0.
    pub avg_ms: Option<f64>,
    /// Median (nearest rank), in milliseconds.
    pub p50_ms: Option<i64>,
    /// 90th percentile (nearest rank), in milliseconds.
    pub p90_ms: Option<i64>,
    /// 99th percentile (nearest rank), in milliseconds.
    pub p99_ms: Option<i64>,
}

/// Calls whose `duration_s` is in `[min_s, max_s)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DurationBin {
    pub min_s: i64,
    /// Exclusive; null for the last, open-ended range.
    pub max_s: Option<i64>,
    pub calls: i64,
}

/// Where the duration ranges start, in seconds.
const DURATION_BIN_STARTS: [i64; 8] = [0, 10, 30, 60, 120, 300, 600, 1800];

/// Calls whose `occurred_at` falls in `[start, next bucket's start)`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Local start of the bucket, with its offset.
    pub start: DateTime<chrono::FixedOffset>,
    pub calls: i64,
    /// Calls per `outcome`; every outcome is present.
    pub by_outcome: BTreeMap<&'static str, i64>,
}

/// How buckets are laid out: their size, zone and the range they cover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    pub size: BucketSize,
    pub tz: Tz,
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub until: DateTime<Utc>,
}

/// Builds the statistics document.
pub fn compute(aggregates: &Aggregates, buckets: Option<BucketSpec>) -> Stats {
    let rows = &aggregates.breakdown;
    let calls: i64 = rows.iter().map(|r| r.calls).sum();
    let mut by_state: BTreeMap<&'static str, i64> =
        CallState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_outcome = zero_outcomes();
    let mut by_amd_result: BTreeMap<&'static str, i64> =
        AmdResult::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    let mut by_reason_code = BTreeMap::new();
    let (mut answered, mut with_amd, mut human, mut machine) = (0, 0, 0, 0);
    for row in rows {
        *by_state.entry(row.state.as_str()).or_default() += row.calls;
        *by_outcome.entry(row.outcome.as_str()).or_default() += row.calls;
        if let Some(result) = row.amd_result {
            *by_amd_result.entry(result.as_str()).or_default() += row.calls;
            with_amd += row.calls;
        }
        if let Some(code) = &row.reason_code {
            *by_reason_code.entry(code.clone()).or_default() += row.calls;
        }
        if row.answered {
            answered += row.calls;
        }
        match row.outcome {
            Outcome::Human => human += row.calls,
            Outcome::Machine => machine += row.calls,
            _ => {}
        }
    }
    Stats {
        calls,
        by_state,
        by_outcome,
        by_amd_result,
        by_reason_code,
        answer_rate: rate(answered, calls),
        human_rate: rate(human, with_amd),
        machine_rate: rate(machine, with_amd),
        duration_s: durations(&aggregates.durations),
        duration_histogram: duration_histogram(&aggregates.durations),
        time_to_answer: time_to_answer(&aggregates.ring_times),
        buckets: buckets.map(|spec| bucketize(&aggregates.slots, spec)),
    }
}

fn zero_outcomes() -> BTreeMap<&'static str, i64> {
    Outcome::ALL.iter().map(|o| (o.as_str(), 0)).collect()
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| round4(part as f64 / whole as f64))
}

fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// A histogram of `(value, calls)`, sorted by value, without empty entries.
struct Histogram {
    entries: Vec<(i64, i64)>,
    count: i64,
}

impl Histogram {
    fn new(histogram: &[(i64, i64)]) -> Self {
        let mut entries: Vec<(i64, i64)> =
            histogram.iter().copied().filter(|(_, n)| *n > 0).collect();
        entries.sort_unstable();
        let count = entries.iter().map(|(_, n)| n).sum();
        Self { entries, count }
    }

    /// The mean to two decimals, if there are values.
    fn avg(&self) -> Option<f64> {
        let total: i64 = self.entries.iter().map(|(value, n)| value * n).sum();
        (self.count > 0).then(|| (total as f64 / self.count as f64 * 100.0).round() / 100.0)
    }

    /// Nearest rank: the smallest value with at least `p` of the calls at or below it.
    fn percentile(&self, p: f64) -> Option<i64> {
        let rank = ((p * self.count as f64).ceil() as i64).max(1);
        let mut seen = 0;
        self.entries
            .iter()
            .find(|(_, n)| {
                seen += n;
                seen >= rank
            })
            .map(|(value, _)| *value)
    }
}

/// Average and nearest-rank percentiles over a histogram of whole seconds.
fn durations(histogram: &[(i64, i64)]) -> DurationStats {
    let histogram = Histogram::new(histogram);
    DurationStats {
        avg: histogram.avg(),
        p50: histogram.percentile(0.5),
        p95: histogram.percentile(0.95),
        max: histogram.entries.last().map(|(seconds, _)| *seconds),
    }
}

/// Average and nearest-rank percentiles over a histogram of ring times.
fn time_to_answer(histogram: &[(i64, i64)]) -> TimeToAnswer {
    let histogram = Histogram::new(histogram);
    TimeToAnswer {
        calls: histogram.count,
        avg_ms: histogram.avg(),
        p50_ms: histogram.percentile(0.5),
        p90_ms: histogram.percentile(0.9),
        p99_ms: histogram.percentile(0.99),
    }
}

/// The calls per duration range of [`DURATION_BIN_STARTS`].
fn duration_histogram(histogram: &[(i64, i64)]) -> Vec<DurationBin> {
    let mut bins: Vec<DurationBin> = DURATION_BIN_STARTS
        .iter()
        .enumerate()
        .map(|(i, &min_s)| DurationBin {
            min_s,
            max_s: DURATION_BIN_STARTS.get(i + 1).copied(),
            calls: 0,
        })
        .collect();
    for &(seconds, calls) in histogram {
        let index = DURATION_BIN_STARTS.partition_point(|&start| start <= seconds);
        if let Some(bin) = index.checked_sub(1).and_then(|i| bins.get_mut(i)) {
            bin.calls += calls;
        }
    }
    bins
}

/// Bucket start instants covering `[from, until)` in the zone's calendar.
pub fn bucket_starts(spec: BucketSpec) -> Result<Vec<DateTime<Utc>>, String> {
    let mut starts = Vec::new();
    let mut start = floor_to_bucket(spec.from, spec.size, spec.tz);
    while start < spec.until {
        if starts.len() == MAX_BUCKETS {
            return Err(format!(
                "the range needs more than {MAX_BUCKETS} buckets; narrow since/until"
            ));
        }
        starts.push(start);
        start = next_bucket(start, spec.size, spec.tz);
    }
    Ok(starts)
}

fn bucketize(slots: &[(i64, Outcome, i64)], spec: BucketSpec) -> Vec<Bucket> {
    let starts = bucket_starts(spec).unwrap_or_default();
    let mut buckets: Vec<Bucket> = starts
        .iter()
        .map(|start| Bucket {
            start: start.with_timezone(&spec.tz).fixed_offset(),
            calls: 0,
            by_outcome: zero_outcomes(),
        })
        .collect();
    for (slot, outcome, calls) in slots {
        let Some(at) = DateTime::from_timestamp(slot * SLOT_SECONDS, 0) else {
            continue;
        };
        let index = starts.partition_point(|start| *start <= at);
        if index == 0 || at >= spec.until {
            continue;
        }
        let bucket = &mut buckets[index - 1];
        bucket.calls += calls;
        *bucket.by_outcome.entry(outcome.as_str()).or_default() += calls;
    }
    buckets
}

/// The start of the local hour or day holding `at`.
fn floor_to_bucket(at: DateTime<Utc>, size: BucketSize, tz: Tz) -> DateTime<Utc> {
    let local = at.with_timezone(&tz);
    match size {
        BucketSize::QuarterHour => {
            // Every zone's offset is a whole number of quarter hours.
            let into_quarter = Duration::seconds(at.timestamp().rem_euclid(SLOT_SECONDS))
                + Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
            at - into_quarter
        }
        BucketSize::Hour => {
            // Local hours start where the local minute and second are zero; stepping back
            // in absolute time keeps DST's repeated hour as two buckets.
            let into_hour = Duration::seconds(i64::from(local.minute() * 60 + local.second()))
                + Duration::nanoseconds(i64::from(local.nanosecond()));
            at - into_hour
        }
        BucketSize::Day => start_of_day(local.date_naive(), tz),
    }
}

fn next_bucket(start: DateTime<Utc>, size: BucketSize, tz: Tz) -> DateTime<Utc> {
    match size {
        BucketSize::QuarterHour => start + Duration::seconds(SLOT_SECONDS),
        BucketSize::Hour => start + Duration::hours(1),
        BucketSize::Day => {
            let day = start.with_timezone(&tz).date_naive();
            start_of_day(day.succ_opt().unwrap_or(day), tz)
        }
    }
}

/// The first instant of a local day (midnight, or the first valid time when a DST change
/// skips midnight).
fn start_of_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut time = NaiveTime::MIN;
    loop {
        if let Some(at) = tz.from_local_datetime(&day.and_time(time)).earliest() {
            return at.with_timezone(&Utc);
        }
        time += Duration::minutes(15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_hours_follow_the_clock_in_a_zone_offset_by_45_minutes() {
        let spec = BucketSpec {
            size: BucketSize::QuarterHour,
            tz: chrono_tz::Asia::Kathmandu,
            from: "2026-03-01T10:07:00Z".parse().unwrap(),
            until: "2026-03-01T10:40:00Z".parse().unwrap(),
        };
        let slots = [(spec.from.timestamp() / SLOT_SECONDS, Outcome::Human, 2)];
        let buckets = bucketize(&slots, spec);
        let starts: Vec<String> = buckets.iter().map(|b| b.start.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2026-03-01T15:45:00+05:45",
                "2026-03-01T16:00:00+05:45",
                "2026-03-01T16:15:00+05:45",
            ]
        );
        assert_eq!(buckets[0].calls, 2);
    }

    #[test]
    fn time_to_answer_takes_the_mean_and_nearest_rank_percentiles() {
        // 10 calls: 1.0 s ×5, 2.0 s ×4, 9.0 s ×1.
        let figures = time_to_answer(&[(2_000, 4), (1_000, 5), (9_000, 1), (500, 0)]);
        assert_eq!(
            figures,
            TimeToAnswer {
                calls: 10,
                avg_ms: Some(2_200.0),
                p50_ms: Some(1_000),
                p90_ms: Some(2_000),
                p99_ms: Some(9_000),
            }
        );
        let none = time_to_answer(&[]);
        assert_eq!((none.calls, none.avg_ms, none.p50_ms), (0, None, None));
    }

    #[test]
    fn durations_fall_in_their_range_and_every_range_is_listed() {
        let bins = duration_histogram(&[(0, 2), (9, 1), (10, 4), (59, 1), (1800, 3), (7200, 1)]);
        let counted: Vec<(i64, Option<i64>, i64)> =
            bins.iter().map(|b| (b.min_s, b.max_s, b.calls)).collect();
        assert_eq!(
            counted,
            [
                (0, Some(10), 3),
                (10, Some(30), 4),
                (30, Some(60), 1),
                (60, Some(120), 0),
                (120, Some(300), 0),
                (300, Some(600), 0),
                (600, Some(1800), 0),
                (1800, None, 4),
            ]
        );
    }
}
