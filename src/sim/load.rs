//! `calltrail-sim load`: realistic notifications posted at a fixed rate, with the latency of
//! each counted from when it was due (so that a stall in the server cannot hide behind a
//! slower send rate), reported as achieved rate, percentiles and errors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use super::faults::{self, Faults};
use super::outcome::Weights;
use super::script::{self, CallPlan, Timers};
use super::senders::{self, Rendered};
use crate::notification::{AmdMode, DateOrder, Format, NormalizeSettings};

/// How long requests still queued may take once the duration is over.
const GRACE: Duration = Duration::from_secs(30);

/// What to send, where and how fast.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// calltrail's notification URL, e.g. `http://127.0.0.1:8080/notify/TOKEN`.
    pub target: String,
    /// Requests per second.
    pub rate: f64,
    pub duration: Duration,
    /// Requests in flight at most (connections).
    pub concurrency: usize,
    /// Extra headers on every request (e.g. `X-Calltrail-Token`).
    pub headers: Vec<(String, String)>,
    pub weights: Weights,
    pub timezone: Tz,
    pub date_order: DateOrder,
    /// Duplicates, reordering and key variants, as the simulator injects them.
    pub faults: Faults,
    pub seed: Option<u64>,
    /// Which gateway to play: its body format (`target` must be its endpoint).
    pub source: Format,
    /// Signs every body as the source does, with this secret (Twilio: the auth token, over
    /// `target` as the URL).
    pub signing_secret: Option<String>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What a load run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// Requests due in the duration.
    pub scheduled: u64,
    /// Requests answered (any status) or failed on the wire.
    pub completed: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Everything else, by status (`"503"`) or `"transport"`, plus `"not sent"` for requests
    /// still queued when the grace period ran out.
    pub errors: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    /// Completed requests per second of `elapsed_s`.
    pub achieved_rate: f64,
    pub target_rate: f64,
    /// From each request's due time to its answer; `None` when nothing completed.
    pub latency: Option<Latency>,
}

impl LoadReport {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sent {} of {} in {:.2} s: {:.1} requests/s achieved (target {:.1}/s)",
            self.completed, self.scheduled, self.elapsed_s, self.achieved_rate, self.target_rate
        )?;
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        writeln!(
            f,
            "ok {}, errors {}{}",
            self.ok,
            self.error_count(),
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join(", "))
            }
        )?;
        match self.latency {
            Some(l) => write!(
                f,
                "latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
                l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            ),
            None => write!(f, "latency: nothing completed"),
        }
    }
}

/// Nearest-rank percentiles of `samples` (sorted here).
pub fn latency(samples: &mut [Duration]) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = |p: f64| {
        let index = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[index.clamp(1, samples.len()) - 1].as_secs_f64() * 1000.0
    };
    Some(Latency {
        p50_ms: rank(50.0),
        p95_ms: rank(95.0),
        p99_ms: rank(99.0),
        max_ms: rank(100.0),
    })
}

/// An endless stream of realistic notifications: calls with random outcomes and AMD modes,
/// each call's notifications in a row (faults applied).
pub struct Notifications {
    rng: fastrand::Rng,
    weights: Weights,
    timezone: Tz,
    date_order: DateOrder,
    faults: Faults,
    source: Format,
    queue: std::collections::VecDeque<Rendered>,
}

impl Notifications {
    pub fn new(settings: &LoadSettings) -> Self {
        Self {
            rng: settings
                .seed
                .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
            weights: settings.weights.clone(),
            timezone: settings.timezone,
            date_order: settings.date_order,
            faults: settings.faults.clone(),
            source: settings.source,
            queue: Default::default(),
        }
    }

    fn refill(&mut self) {
        let rng = &mut self.rng;
        let modes = [
            None,
            Some(AmdMode::Disabled),
            Some(AmdMode::Detect),
            Some(AmdMode::Disconnect),
        ];
        let plan = CallPlan {
            call_id: uuid::Builder::from_random_bytes(std::array::from_fn(|_| rng.u8(..)))
                .into_uuid()
                .to_string(),
            outcome: self.weights.choose(rng.f64()),
            amd_mode: modes[rng.usize(..modes.len())],
            timers: Timers::default(),
            dialed_at: Utc::now()
                .duration_trunc(TimeDelta::seconds(1))
                .unwrap_or_else(|_| Utc::now()),
            zone: self.timezone,
            date_order: self.date_order,
        };
        let script = script::script(&plan, rng);
        let delivery = faults::plan(&script, &self.faults, rng);
        let read = NormalizeSettings {
            timezone: self.timezone,
            date_order: self.date_order,
        };
        // Key variants are Kore.ai's spellings; the other sources send fixed names.
        let bodies: Vec<Vec<Rendered>> = script
            .notifications
            .iter()
            .map(|n| match self.source {
                Format::Kore => vec![Rendered {
                    content_type: "application/json",
                    body: faults::vary_keys(&n.body, self.faults.key_variants, rng)
                        .to_string()
                        .into_bytes(),
                }],
                source => senders::render(source, &n.body, &read),
            })
            .collect();
        self.queue.extend(
            delivery
                .deliveries
                .iter()
                .flat_map(|d| bodies[d.index].iter().cloned()),
        );
    }
}

impl Iterator for Notifications {
    type Item = Rendered;

    fn next(&mut self) -> Option<Rendered> {
        while self.queue.is_empty() {
            self.refill();
        }
        self.queue.pop_front()
    }
}

/// What one request did.
struct Outcome {
    latency: Duration,
    /// `None` for a 2xx answer, else the error's label.
    error: Option<String>,
}

/// Runs the load and reports. Every request goes to `settings.target`; the run ends after the
/// duration plus at most [`GRACE`] for requests still queued.
pub async fn run(settings: &LoadSettings) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(
        settings.rate > 0.0 && settings.rate.is_finite(),
        "--rate must be above 0"
    );
    anyhow::ensure!(settings.concurrency > 0, "--concurrency must be at least 1");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency)
        .timeout(Duration::from_secs(10))
        .user_agent("calltrail-sim load")
        .build()?;
    let scheduled = (settings.rate * settings.duration.as_secs_f64()).floor() as u64;
    let (due_tx, due_rx) = mpsc::unbounded_channel::<(Instant, Rendered)>();
    let due_rx = Arc::new(Mutex::new(due_rx));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Outcome>();
    let start = Instant::now();

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..settings.concurrency {
        let (http, due_rx, done_tx) = (http.clone(), due_rx.clone(), done_tx.clone());
        let (target, headers) = (settings.target.clone(), settings.headers.clone());
        let (source, secret) = (settings.source, settings.signing_secret.clone());
        workers.spawn(async move {
            loop {
                let next = due_rx.lock().await.recv().await;
                let Some((due, rendered)) = next else { return };
                let mut request = http
                    .post(&target)
                    .header("content-type", rendered.content_type);
                if let Some(secret) = &secret {
                    let now = Utc::now().timestamp();
                    let (name, value) = senders::sign(source, secret, now, &target, &rendered.body);
                    request = request.header(name, value);
                }
                let mut request = request.body(rendered.body);
                for (name, value) in &headers {
                    request = request.header(name, value);
                }
                let error = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.bytes().await;
                        (!status.is_success()).then(|| status.as_u16().to_string())
                    }
                    Err(_) => Some("transport".to_owned()),
                };
                let _ = done_tx.send(Outcome {
                    latency: due.elapsed(),
                    error,
                });
            }
        });
    }
    drop(done_tx);

    let mut notifications = Notifications::new(settings);
    let interval = Duration::from_secs_f64(1.0 / settings.rate);
    for i in 0..scheduled {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let Some(body) = notifications.next() else {
            break;
        };
        if due_tx.send((due, body)).is_err() {
            break;
        }
    }
    drop(due_tx);
    let deadline = start + settings.duration + GRACE;
    let finished = tokio::time::timeout_at(deadline, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        workers.abort_all();
    }
    let elapsed = start.elapsed();

    let mut latencies = Vec::new();
    let mut errors = BTreeMap::new();
    let mut ok = 0;
    while let Ok(outcome) = done_rx.try_recv() {
        latencies.push(outcome.latency);
        match outcome.error {
            None => ok += 1,
            Some(label) => *errors.entry(label).or_insert(0) += 1,
        }
    }
    let completed = latencies.len() as u64;
    if completed < scheduled {
        errors.insert("not sent".to_owned(), scheduled - completed);
    }
    Ok(LoadReport {
        scheduled,
        completed,
        ok,
        errors,
        elapsed_s: elapsed.as_secs_f64(),
        achieved_rate: completed as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
        target_rate: settings.rate,
        latency: latency(&mut latencies),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = latency(&mut samples).unwrap();
        assert_eq!(
            (l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(latency(&mut one).unwrap().p50_ms, 7.0);
        assert_eq!(latency(&mut []), None);
    }

    #[test]
    fn generated_notifications_are_all_accepted_by_calltrail() {
        let settings = LoadSettings {
            target: String::new(),
            rate: 1.0,
            duration: Duration::from_secs(1),
            concurrency: 1,
            headers: Vec::new(),
            weights: Weights::default(),
            timezone: chrono_tz::UTC,
            date_order: DateOrder::Mdy,
            faults: Faults {
                duplicates: 0.2,
                reorder: 0.3,
                key_variants: 0.2,
                ..Faults::default()
            },
            seed: Some(4),
            source: Format::Kore,
            signing_secret: None,
        };
        for source in Format::ALL {
            let settings = LoadSettings {
                source,
                ..settings.clone()
            };
            let statuses: std::collections::HashSet<String> = Notifications::new(&settings)
                .take(500)
                .map(|rendered| {
                    let parsed = source
                        .parse(&rendered.body, &NormalizeSettings::default())
                        .unwrap();
                    assert!(parsed.event.warnings.is_empty(), "{rendered:?}");
                    parsed.event.status
                })
                .collect();
            // Kore.ai: answered, completed, failed; the others also busy and no-answer.
            let expected = if source == Format::Kore { 3 } else { 5 };
            assert_eq!(statuses.len(), expected, "{source:?} {statuses:?}");
        }
    }

    #[test]
    fn the_report_reads_well() {
        let report = LoadReport {
            scheduled: 10,
            completed: 10,
            ok: 9,
            errors: BTreeMap::from([("503".to_owned(), 1)]),
            elapsed_s: 1.0,
            achieved_rate: 10.0,
            target_rate: 10.0,
            latency: Some(Latency {
                p50_ms: 1.0,
                p95_ms: 2.0,
                p99_ms: 3.0,
                max_ms: 4.0,
            }),
        };
        let text = report.to_string();
        assert!(text.contains("10.0 requests/s achieved"), "{text}");
        assert!(text.contains("errors 1 (503: 1)"), "{text}");
        assert!(text.contains("p99 3.00"), "{text}");
    }
}
