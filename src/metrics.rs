//! Prometheus metrics (docs/operations.md#metrics): one registry per running calltrail,
//! rendered in the Prometheus text format at `GET /metrics`.
//!
//! Every part of calltrail records what it sees through a clone of [`Metrics`]. A label
//! value is always one of a closed set of words (a result, an outcome, a route template, a
//! status class), never a path, a token, a conversation id or a phone number.
//!
//! The registry is this application's own, not a process-wide one: two calltrails in one
//! process (as in the tests) count apart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

/// The `[metrics]` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics` without an API key (it is behind `api.keys` like `/v1` otherwise).
    pub public: bool,
    /// Serve `/metrics` on this address of its own instead of `server.bind`.
    pub bind: Option<SocketAddr>,
}

/// Notifications received, by `source` and `result`.
pub const NOTIFICATIONS: &str = "calltrail_notifications_total";
/// Request in to answer, for the bodies that reached the store or the spool, by `source`.
pub const INGEST_DURATION: &str = "calltrail_ingest_duration_seconds";
/// Bodies per group commit.
pub const BATCH_SIZE: &str = "calltrail_ingest_batch_size";
/// Bodies waiting for the group-commit writer (sampled when scraped).
pub const QUEUE_DEPTH: &str = "calltrail_ingest_queue_depth";
/// Room of that queue.
pub const QUEUE_CAPACITY: &str = "calltrail_ingest_queue_capacity";
/// Group commits made, by `result` (`committed`, `failed`).
pub const WRITER_COMMITS: &str = "calltrail_writer_commits_total";
/// Store errors on the ingest path, by `kind`.
pub const STORE_ERRORS: &str = "calltrail_store_errors_total";
/// HTTP requests answered, by `route`, `method` and `status` class.
pub const HTTP_REQUESTS: &str = "calltrail_http_requests_total";
/// HTTP request latency, by `route` and `method`.
pub const HTTP_DURATION: &str = "calltrail_http_request_duration_seconds";
/// Open client connections (sampled when scraped).
pub const HTTP_CONNECTIONS: &str = "calltrail_http_connections";
/// The cap on open client connections.
pub const HTTP_CONNECTIONS_MAX: &str = "calltrail_http_connections_max";
/// Connections closed by a timeout, by `timeout` (`header`, `idle`, `write`).
pub const HTTP_TIMEOUTS: &str = "calltrail_http_connection_timeouts_total";
/// Calls that reached a terminal state, by `source` and `outcome`.
pub const CALLS_ENDED: &str = "calltrail_calls_ended_total";
/// Notifications in the spool, waiting to be replayed (sampled when scraped).
pub const SPOOL_RECORDS: &str = "calltrail_spool_records";
/// The bytes they take, counted against `spool.max_bytes` (sampled when scraped).
pub const SPOOL_BYTES: &str = "calltrail_spool_bytes";
/// `spool.max_bytes`.
pub const SPOOL_MAX_BYTES: &str = "calltrail_spool_max_bytes";
/// Age of the oldest spooled notification, 0 when the spool is empty (sampled when scraped).
pub const SPOOL_OLDEST_AGE: &str = "calltrail_spool_oldest_age_seconds";
/// Spooled notifications replayed into the store, by `source` and `result`.
pub const SPOOL_REPLAYED: &str = "calltrail_spool_replayed_total";
/// Notifications the spool refused, by `source` and `reason` (`full`, `unwritable`).
pub const SPOOL_WRITE_FAILURES: &str = "calltrail_spool_write_failures_total";
/// Dial-outs, by `result`.
pub const DIALOUTS: &str = "calltrail_dialouts_total";
/// Rows deleted by retention, by `kind` (`calls`, `events`, `deliveries`, `dialouts`,
/// `rejected_deliveries`).
pub const RETENTION_DELETED: &str = "calltrail_retention_deleted_total";
/// Always 1, with the version as a label.
pub const BUILD_INFO: &str = "calltrail_build_info";

/// A kind of metric, for its description.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric with its help text.
const DESCRIPTIONS: &[(&str, Kind, Option<Unit>, &str)] = &[
    (
        NOTIFICATIONS,
        Kind::Counter,
        None,
        "Notifications received, by source and result (accepted, duplicate, rejected, spooled, unauthorized, bad_signature, too_large, timeout, overloaded, unavailable, error).",
    ),
    (
        INGEST_DURATION,
        Kind::Histogram,
        Some(Unit::Seconds),
        "Time from a notification's request to its answer, for the bodies that reached the store or the spool.",
    ),
    (
        BATCH_SIZE,
        Kind::Histogram,
        Some(Unit::Count),
        "Notifications recorded per group commit.",
    ),
    (
        QUEUE_DEPTH,
        Kind::Gauge,
        Some(Unit::Count),
        "Notifications waiting for the group-commit writer.",
    ),
    (
        QUEUE_CAPACITY,
        Kind::Gauge,
        Some(Unit::Count),
        "Notifications that may wait for the group-commit writer before 503 (notify.queue_capacity).",
    ),
    (
        WRITER_COMMITS,
        Kind::Counter,
        None,
        "Group commits, by result (committed, failed).",
    ),
    (
        STORE_ERRORS,
        Kind::Counter,
        None,
        "Store errors while recording notifications, by kind (unavailable, sync, other).",
    ),
    (
        HTTP_REQUESTS,
        Kind::Counter,
        None,
        "HTTP requests answered, by route template, method and status class.",
    ),
    (
        HTTP_DURATION,
        Kind::Histogram,
        Some(Unit::Seconds),
        "HTTP request latency until the response head, by route template and method.",
    ),
    (
        HTTP_CONNECTIONS,
        Kind::Gauge,
        Some(Unit::Count),
        "Open client connections.",
    ),
    (
        HTTP_CONNECTIONS_MAX,
        Kind::Gauge,
        Some(Unit::Count),
        "The most client connections served at once (server.max_connections).",
    ),
    (
        HTTP_TIMEOUTS,
        Kind::Counter,
        None,
        "Client connections closed by a timeout, by timeout (header, idle, write).",
    ),
    (
        CALLS_ENDED,
        Kind::Counter,
        None,
        "Calls that reached a terminal state (completed or failed), by source and the outcome they had then; each call once.",
    ),
    (
        SPOOL_RECORDS,
        Kind::Gauge,
        Some(Unit::Count),
        "Notifications in the spool, waiting to be replayed into the database.",
    ),
    (
        SPOOL_BYTES,
        Kind::Gauge,
        Some(Unit::Bytes),
        "Bytes the spooled notifications take, counted against spool.max_bytes.",
    ),
    (
        SPOOL_MAX_BYTES,
        Kind::Gauge,
        Some(Unit::Bytes),
        "The most bytes the spool takes before 503 (spool.max_bytes).",
    ),
    (
        SPOOL_OLDEST_AGE,
        Kind::Gauge,
        Some(Unit::Seconds),
        "Seconds since the oldest spooled notification was received; 0 when the spool is empty.",
    ),
    (
        SPOOL_REPLAYED,
        Kind::Counter,
        None,
        "Spooled notifications replayed into the database, by source and result (accepted, duplicate, rejected, already_stored).",
    ),
    (
        SPOOL_WRITE_FAILURES,
        Kind::Counter,
        None,
        "Notifications the spool could not take, by source and reason (full, unwritable); each was answered 503.",
    ),
    (
        DIALOUTS,
        Kind::Counter,
        None,
        "Dial-outs sent to the voice gateway, by result (placed, refused, unreachable).",
    ),
    (
        RETENTION_DELETED,
        Kind::Counter,
        None,
        "Rows deleted by retention, by kind (calls, events, deliveries of those calls, dialouts, rejected_deliveries).",
    ),
    (
        BUILD_INFO,
        Kind::Gauge,
        None,
        "Always 1; the version of calltrail as a label.",
    ),
];

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the batch-size buckets.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// At most two labels of fixed words, unused ones `("", "")`: a key for the handle caches
/// that is built without allocating.
type Labels = [(&'static str, &'static str); 2];

/// The application's metrics: cheap to clone, shared by every part that records.
///
/// Recording looks up a cached handle (an atomic counter, a histogram's sample buffer)
/// under a read lock; the registry is asked only the first time a metric and label set is
/// seen, so that the request path does not allocate.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    handle: PrometheusHandle,
    counters: RwLock<HashMap<(&'static str, Labels), Counter>>,
    histograms: RwLock<HashMap<(&'static str, Labels), Histogram>>,
    /// Per route template, its request handles by method and status class.
    routes: RwLock<HashMap<String, Arc<RouteHandles>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry with every metric described and `calltrail_build_info` set.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_BUCKETS))
            .expect("bucket lists are not empty")
            .build_recorder();
        for &(name, kind, unit, help) in DESCRIPTIONS {
            let help = SharedString::const_str(help);
            match kind {
                Kind::Counter => recorder.describe_counter(name.into(), unit, help),
                Kind::Gauge => recorder.describe_gauge(name.into(), unit, help),
                Kind::Histogram => recorder.describe_histogram(name.into(), unit, help),
            }
        }
        let handle = recorder.handle();
        let metrics = Self {
            inner: Arc::new(Inner {
                recorder,
                handle,
                counters: RwLock::default(),
                histograms: RwLock::default(),
                routes: RwLock::default(),
            }),
        };
        metrics.set(BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        metrics
    }

    /// Everything recorded so far, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }

    /// Folds the latency samples recorded since the last call into their buckets, so that
    /// they take no memory between scrapes. Run every few seconds.
    pub fn upkeep(&self) {
        self.inner.handle.run_upkeep();
    }

    /// Adds `by` to a counter with at most two labels.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &'static str)], by: u64) {
        let counter = cached(&self.inner.counters, name, labels, |key| {
            self.inner.recorder.register_counter(key, &METADATA)
        });
        counter.increment(by);
    }

    /// Sets a gauge (seldom: when scraped, or once).
    pub fn set(&self, name: &'static str, labels: &[(&'static str, &'static str)], value: f64) {
        self.inner
            .recorder
            .register_gauge(&key(name, labels), &METADATA)
            .set(value);
    }

    /// Records one value of a histogram with at most two labels.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &'static str)], value: f64) {
        let histogram = cached(&self.inner.histograms, name, labels, |key| {
            self.inner.recorder.register_histogram(key, &METADATA)
        });
        histogram.record(value);
    }

    /// One notification answered; `elapsed` for those recorded as a delivery.
    pub fn notification(
        &self,
        source: &'static str,
        result: &'static str,
        elapsed: Option<Duration>,
    ) {
        self.add(NOTIFICATIONS, &[("source", source), ("result", result)], 1);
        if let Some(elapsed) = elapsed {
            self.observe(
                INGEST_DURATION,
                &[("source", source)],
                elapsed.as_secs_f64(),
            );
        }
    }

    /// One HTTP request answered. `route` is the matched route template (`/v1/calls/{id}`)
    /// or `unmatched`, never the request's path.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let found = self
            .inner
            .routes
            .read()
            .ok()
            .and_then(|r| r.get(route).cloned());
        let handles = found.unwrap_or_else(|| {
            let mut routes = self
                .inner
                .routes
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            routes.entry(route.to_owned()).or_default().clone()
        });
        let method = method_index(method);
        let class = usize::from(status.clamp(100, 599) / 100 - 1);
        let requests = handles.requests[method][class].get_or_init(|| {
            let labels = vec![
                Label::new("route", route.to_owned()),
                Label::from_static_parts("method", METHODS[method]),
                Label::from_static_parts("status", CLASSES[class]),
            ];
            let key = Key::from_parts(HTTP_REQUESTS, labels);
            self.inner.recorder.register_counter(&key, &METADATA)
        });
        requests.increment(1);
        let duration = handles.duration[method].get_or_init(|| {
            let labels = vec![
                Label::new("route", route.to_owned()),
                Label::from_static_parts("method", METHODS[method]),
            ];
            let key = Key::from_parts(HTTP_DURATION, labels);
            self.inner.recorder.register_histogram(&key, &METADATA)
        });
        duration.record(elapsed.as_secs_f64());
    }
}

/// The request handles of one route: by method, and by method and status class.
#[derive(Default)]
struct RouteHandles {
    requests: [[OnceLock<Counter>; CLASSES.len()]; METHODS.len()],
    duration: [OnceLock<Histogram>; METHODS.len()],
}

/// The handle of `name` with `labels` from `cache`, registered by `register` the first time.
fn cached<H: Clone>(
    cache: &RwLock<HashMap<(&'static str, Labels), H>>,
    name: &'static str,
    labels: &[(&'static str, &'static str)],
    register: impl FnOnce(&Key) -> H,
) -> H {
    let mut fixed: Labels = [("", ""); 2];
    fixed[..labels.len()].copy_from_slice(labels);
    if let Some(handle) = cache
        .read()
        .ok()
        .and_then(|c| c.get(&(name, fixed)).cloned())
    {
        return handle;
    }
    let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
    cache
        .entry((name, fixed))
        .or_insert_with(|| register(&key(name, labels)))
        .clone()
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|&(k, v)| Label::from_static_parts(k, v))
        .collect();
    Key::from_parts(name, labels)
}

/// Status classes, by the status's hundreds digit less one.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Request methods as labels: the standard ones by name, anything else as `other`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other",
];

fn method_index(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|known| *known == method)
        .unwrap_or(METHODS.len() - 1)
}

/// A request method as a label.
pub fn method_label(method: &str) -> &'static str {
    METHODS[method_index(method)]
}

/// How long a latency sample may wait for [`Metrics::upkeep`].
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_build_info_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.notification("kore", "accepted", Some(Duration::from_millis(3)));
        metrics.notification("kore", "accepted", Some(Duration::from_millis(30)));
        metrics.notification("kore", "unauthorized", None);
        metrics.http_request("/v1/calls/{conversation_id}", "GET", 404, Duration::ZERO);

        let text = metrics.render();

        assert!(
            text.contains(r#"calltrail_notifications_total{source="kore",result="accepted"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"calltrail_notifications_total{source="kore",result="unauthorized"} 1"#
            )
        );
        assert!(text.contains("# TYPE calltrail_notifications_total counter"));
        assert!(
            text.contains(
                r#"calltrail_ingest_duration_seconds_bucket{source="kore",le="0.005"} 1"#
            )
        );
        assert!(text.contains(r#"calltrail_ingest_duration_seconds_count{source="kore"} 2"#));
        assert!(text.contains(
            r#"calltrail_http_requests_total{route="/v1/calls/{conversation_id}",method="GET",status="4xx"} 1"#
        ));
        assert!(text.contains(&format!(
            r#"calltrail_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn two_registries_count_apart() {
        let (one, two) = (Metrics::new(), Metrics::new());
        one.add(DIALOUTS, &[("result", "placed")], 1);
        assert!(
            one.render()
                .contains(r#"calltrail_dialouts_total{result="placed"} 1"#)
        );
        assert!(!two.render().contains("calltrail_dialouts_total{"));
    }

    #[test]
    fn unknown_methods_are_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "other");
    }
}
