//! Playing a call: its notifications sent to `notifyurl` on time (simulated seconds divided
//! by `--speed`), non-2xx answers retried with backoff, and one JSON line written to the log
//! with what was decided and sent — the truth a test compares calltrail's records with.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::faults;
use super::outcome::SimOutcome;
use super::script::{Expected, Script};
use super::senders::{self, Rendered};
use super::settings::SimSettings;
use super::validate::DialRequest;
use crate::notification::{Format, NormalizeSettings};

/// A dial-out the simulator took, ready to play.
#[derive(Debug, Clone)]
pub struct Call {
    /// `v1` or `v2`: which API it came through.
    pub api: &'static str,
    pub sid: String,
    pub call_id: String,
    pub dialed_at: DateTime<Utc>,
    pub request: DialRequest,
    pub outcome: SimOutcome,
    pub script: Script,
    pub delivery: faults::Plan,
    /// The script's notifications as sent (keys possibly respelled).
    pub bodies: Vec<Value>,
}

/// The JSON-lines log, shared by every call.
#[derive(Clone)]
pub struct LogWriter(Arc<Mutex<BufWriter<File>>>);

impl LogWriter {
    /// Creates (or truncates) the log file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self(Arc::new(Mutex::new(BufWriter::new(File::create(
            path,
        )?)))))
    }

    /// Appends one line and flushes it, so that a reader sees whole lines.
    pub fn write(&self, entry: &impl Serialize) {
        let Ok(line) = serde_json::to_string(entry) else {
            return;
        };
        if let Ok(mut file) = self.0.lock() {
            let written = writeln!(file, "{line}").and_then(|()| file.flush());
            if let Err(err) = written {
                tracing::error!(%err, "cannot write the call log");
            }
        }
    }
}

/// One line of the log: a played call.
#[derive(Debug, Serialize)]
pub struct LogEntry<'a> {
    pub sid: &'a str,
    pub call_id: &'a str,
    pub api: &'a str,
    pub dialed_at: DateTime<Utc>,
    pub target: &'a str,
    pub caller: &'a str,
    pub trunk: Option<&'a str>,
    pub metadata: Option<&'a Value>,
    pub machine_detection: Option<&'a str>,
    pub timers: super::script::Timers,
    pub threshold_word_count: Option<u32>,
    pub outcome: SimOutcome,
    /// True when `metadata.sim_outcome` chose the outcome.
    pub forced: bool,
    /// What calltrail's call record should say.
    pub expected: &'a Expected,
    pub reordered: bool,
    /// False when the request had no `notifyurl` (nothing was sent).
    pub notified: bool,
    pub deliveries: Vec<Sent>,
}

/// One delivery of a notification and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    /// Which notification of the call (0 = first in the gateway's order).
    pub index: usize,
    pub copy: bool,
    pub body: Value,
    pub sent_at: DateTime<Utc>,
    /// Each try: the HTTP status, or 0 when there was no answer (for jambonz and Twilio, the
    /// tries of each request the notification became, in order).
    pub statuses: Vec<u16>,
    /// True when a try was answered 2xx.
    pub delivered: bool,
}

/// Plays `call` to the end and logs it.
pub async fn play(
    http: &reqwest::Client,
    settings: &SimSettings,
    log: Option<&LogWriter>,
    call: Call,
) {
    let start = tokio::time::Instant::now();
    let mut sent = Vec::new();
    if let Some(url) = &call.request.notify_url {
        let url = source_url(settings.source, url);
        let read = NormalizeSettings {
            timezone: settings.timezone,
            date_order: settings.date_order,
        };
        for delivery in &call.delivery.deliveries {
            let due =
                start + Duration::from_secs_f64(f64::from(delivery.offset_s) / settings.speed);
            tokio::time::sleep_until(due).await;
            let body = &call.bodies[delivery.index];
            let mut statuses = Vec::new();
            let mut delivered = true;
            // jambonz and Twilio send an AMD result as a request of its own, before the status.
            for rendered in render(settings.source, body, &read) {
                let tries = deliver(http, settings, &url, &call.request, &rendered).await;
                delivered &= tries.last().is_some_and(|s| (200..300).contains(s));
                statuses.extend(tries);
            }
            if !delivered {
                tracing::warn!(call_id = %call.call_id, ?statuses, "a notification was not delivered");
            }
            sent.push(Sent {
                index: delivery.index,
                copy: delivery.copy,
                body: body.clone(),
                sent_at: Utc::now(),
                statuses,
                delivered,
            });
        }
    }
    if let Some(log) = log {
        let request = &call.request;
        log.write(&LogEntry {
            sid: &call.sid,
            call_id: &call.call_id,
            api: call.api,
            dialed_at: call.dialed_at,
            target: &request.target,
            caller: &request.caller,
            trunk: request.trunk.as_deref(),
            metadata: request.metadata.as_ref(),
            machine_detection: request.amd_mode.map(|m| m.as_str()),
            timers: request.timers,
            threshold_word_count: request.threshold_word_count,
            outcome: call.outcome,
            forced: request.forced.is_some(),
            expected: &call.script.expected,
            reordered: call.delivery.reordered,
            notified: request.notify_url.is_some(),
            deliveries: sent,
        });
    }
}

/// The script's notification as `source`'s gateway sends it.
fn render(source: Format, body: &Value, read: &NormalizeSettings) -> Vec<Rendered> {
    match source {
        // As the script made it, its keys possibly respelled.
        Format::Kore => vec![Rendered {
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }],
        source => senders::render(source, body, read),
    }
}

/// Where `source`'s gateway posts, given calltrail's `notifyurl`: its path's `/notify`
/// becomes `/jambonz/notify` or `/twilio/notify` (the token suffix and query kept).
pub fn source_url(source: Format, notify_url: &str) -> String {
    let Ok(mut url) = reqwest::Url::parse(notify_url) else {
        return notify_url.to_owned();
    };
    if source == Format::Kore {
        return notify_url.to_owned();
    }
    let path = url.path().to_owned();
    let Some(at) = path.rfind("/notify") else {
        return notify_url.to_owned();
    };
    url.set_path(&format!(
        "{}/{}{}",
        &path[..at],
        source.source(),
        &path[at..]
    ));
    url.into()
}

/// Posts `body` to `url`, signed when the simulator has a secret, retrying a non-2xx answer
/// (or none) with backoff. Returns each try's status (0 for no answer).
async fn deliver(
    http: &reqwest::Client,
    settings: &SimSettings,
    url: &str,
    request: &DialRequest,
    body: &Rendered,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    let faults = &settings.faults;
    for attempt in 0..=faults.retries {
        if attempt > 0 {
            tokio::time::sleep(faults.retry_backoff * 2u32.saturating_pow(attempt - 1)).await;
        }
        let mut post = http
            .post(url)
            .header("user-agent", "calltrail-sim")
            .header("content-type", body.content_type)
            .body(body.body.clone());
        if let Some(secret) = &settings.signing_secret {
            // Signed at each try, as a gateway does: a retry is not a stale replay.
            let now = Utc::now().timestamp();
            let (name, value) =
                senders::sign(settings.source, secret.expose(), now, url, &body.body);
            post = post.header(name, value);
        }
        for (name, value) in &request.notify_headers {
            post = post.header(name, value);
        }
        let status = match post.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the answer through, so that the connection can be reused.
                let _ = response.bytes().await;
                status
            }
            Err(_) => 0,
        };
        statuses.push(status);
        if (200..300).contains(&status) {
            break;
        }
    }
    statuses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_posts_to_its_own_endpoint_beside_notify() {
        let cases = [
            (
                Format::Kore,
                "http://h:1/notify/t0k?x=1",
                "http://h:1/notify/t0k?x=1",
            ),
            (
                Format::Jambonz,
                "http://h:1/notify/t0k?x=1",
                "http://h:1/jambonz/notify/t0k?x=1",
            ),
            (
                Format::Twilio,
                "https://h/base/notify",
                "https://h/base/twilio/notify",
            ),
            (Format::Twilio, "not a url", "not a url"),
        ];
        for (source, notify_url, expected) in cases {
            assert_eq!(source_url(source, notify_url), expected, "{source:?}");
        }
    }
}
