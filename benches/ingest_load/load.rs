//! A small HTTP/1.1 load generator: N keep-alive connections on loopback, each sending one
//! request at a time, either as fast as answers come back (closed loop) or on a fixed
//! schedule (open loop, latency counted from the scheduled time so that a stalled server
//! cannot hide its queueing). Plain tokio sockets and a minimal response reader keep the
//! generator's own CPU cost low, which matters when it shares two cores with the server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Writes the next request of one connection into the buffer (cleared by the caller).
pub type Requests = Box<dyn FnMut(&mut Vec<u8>) + Send>;

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each connection sends its next request as soon as the answer to the last arrives.
    ClosedLoop,
    /// All connections together send this many requests per second, evenly spread.
    Rate(f64),
}

/// One run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub target: SocketAddr,
    pub connections: usize,
    pub duration: Duration,
    pub pace: Pace,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub elapsed: Duration,
    /// Answers by status and, for JSON answers with a `"result"`, that result:
    /// `"200 accepted"`, `"200 duplicate"`, `"503"`, …
    pub answers: BTreeMap<String, u64>,
    /// Requests that got no answer (connection refused, reset, malformed answer).
    pub io_errors: u64,
    /// Latency of every answered request, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Report {
    pub fn answered(&self) -> u64 {
        self.answers.values().sum()
    }

    /// Answers with this status.
    pub fn with_status(&self, status: u16) -> u64 {
        let prefix = status.to_string();
        self.answers
            .iter()
            .filter(|(label, _)| label.split(' ').next() == Some(prefix.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn per_second(&self) -> f64 {
        self.answered() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `q` (0..=1) of the answers came, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[rank]) / 1000.0
    }

    fn merge(&mut self, other: Report) {
        for (label, n) in other.answers {
            *self.answers.entry(label).or_default() += n;
        }
        self.io_errors += other.io_errors;
        self.latencies_us.extend(other.latencies_us);
    }
}

/// Runs `plan`, with `requests(i)` producing connection `i`'s requests.
pub async fn run(plan: Plan, requests: impl Fn(usize) -> Requests) -> Report {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..plan.connections {
        let schedule = match plan.pace {
            Pace::ClosedLoop => None,
            Pace::Rate(rate) => {
                // Each connection sends every `connections / rate` seconds, the connections
                // staggered evenly across that interval.
                let interval = Duration::from_secs_f64(plan.connections as f64 / rate);
                let offset = interval.mul_f64(index as f64 / plan.connections as f64);
                Some((start + offset, interval))
            }
        };
        tasks.spawn(connection(plan.target, requests(index), deadline, schedule));
    }
    let mut report = Report::default();
    while let Some(done) = tasks.join_next().await {
        report.merge(done.expect("a connection task"));
    }
    report.elapsed = start
        .elapsed()
        .min(plan.duration.max(Duration::from_millis(1)));
    report.latencies_us.sort_unstable();
    report
}

/// At most this many reconnections per connection and run, so that a dead server ends the
/// run instead of spinning.
const MAX_RECONNECTS: u32 = 100;

async fn connection(
    target: SocketAddr,
    mut requests: Requests,
    deadline: Instant,
    schedule: Option<(Instant, Duration)>,
) -> Report {
    let mut report = Report::default();
    let mut request = Vec::with_capacity(1024);
    let mut buffer = Vec::with_capacity(8192);
    let mut stream: Option<TcpStream> = None;
    let mut reconnects = 0;
    let mut next_at = schedule.map(|(first, _)| first);
    loop {
        let sent_at = match (next_at, schedule) {
            (Some(at), Some((_, interval))) => {
                if at >= deadline {
                    break;
                }
                tokio::time::sleep_until(at).await;
                next_at = Some(at + interval);
                at
            }
            _ => {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                now
            }
        };
        if stream.is_none() {
            if reconnects > MAX_RECONNECTS {
                break;
            }
            reconnects += 1;
            match TcpStream::connect(target).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(_) => {
                    report.io_errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let socket = stream.as_mut().expect("connected");
        request.clear();
        requests(&mut request);
        let answer = async {
            socket.write_all(&request).await?;
            read_response(socket, &mut buffer).await
        };
        match answer.await {
            Ok(label) => {
                let micros = sent_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                report.latencies_us.push(micros);
                *report.answers.entry(label).or_default() += 1;
            }
            Err(_) => {
                report.io_errors += 1;
                stream = None;
            }
        }
    }
    report
}

/// Reads one response; returns its label (`"200 accepted"`, `"503"`, …). Handles what
/// calltrail sends: `Content-Length` bodies, no chunked encoding.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<String> {
    buffer.clear();
    let header_end = loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if read_more(stream, buffer).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    };
    let head = std::str::from_utf8(&buffer[..header_end]).map_err(invalid)?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status"))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| invalid("no content-length"))?;
    while buffer.len() < header_end + length {
        if read_more(stream, buffer).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    let body = &buffer[header_end..header_end + length];
    let label = match find(body, b"\"result\":\"") {
        Some(at) => {
            let rest = &body[at + 10..];
            let end = find(rest, b"\"").unwrap_or(0);
            format!("{status} {}", String::from_utf8_lossy(&rest[..end]))
        }
        None => status.to_string(),
    };
    Ok(label)
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(why: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}
