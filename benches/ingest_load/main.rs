//! The ingest benchmark (issue 5): starts the release `calltrail` on PostgreSQL and on
//! SQLite, drives `POST /notify` with realistic notifications at 64 connections, then at a
//! fixed 2,000 requests/s, then `GET /healthz` at 64 connections as the same binary's HTTP
//! ceiling; prints throughput, latency, errors and memory, and checks that every `200` is in
//! the database. Run it with `bench/ingest.sh` (which documents the options), or
//! `cargo bench --bench ingest_load -- [options]`. Loopback traffic only; every loop is
//! bounded in time.

mod cpu;
mod load;
mod notifications;
mod outage;
mod purge;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sqlx::Connection;

use cpu::{CpuSample, CpuUse};
use load::{Pace, Plan, Report, Requests};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone)]
struct Options {
    stores: Vec<String>,
    connections: usize,
    duration: Duration,
    rate: f64,
    rate_duration: Duration,
    settle: Duration,
    log_level: String,
    /// `--purge N`: the retention benchmark with N old calls instead (see `purge.rs`).
    purge: Option<u64>,
    purge_rounds: u32,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        stores: vec!["postgres".into(), "sqlite".into()],
        connections: 64,
        duration: Duration::from_secs(20),
        rate: 2000.0,
        rate_duration: Duration::from_secs(10),
        settle: Duration::from_secs(2),
        log_level: "info".into(),
        purge: None,
        purge_rounds: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            // `cargo bench` adds this for harness-less benches.
            "--bench" => {}
            "--stores" => options.stores = value()?.split(',').map(str::to_owned).collect(),
            "--connections" => options.connections = value()?.parse()?,
            "--duration" => options.duration = Duration::from_secs_f64(value()?.parse()?),
            "--rate" => options.rate = value()?.parse()?,
            "--rate-duration" => options.rate_duration = Duration::from_secs_f64(value()?.parse()?),
            "--settle" => options.settle = Duration::from_secs_f64(value()?.parse()?),
            "--log-level" => options.log_level = value()?,
            "--purge" => options.purge = Some(value()?.parse()?),
            "--purge-rounds" => options.purge_rounds = value()?.parse()?,
            other => bail!(
                "unknown option {other}; options: --stores postgres,sqlite --connections 64 \
                 --duration 20 --rate 2000 --rate-duration 10 --settle 2 --log-level info \
                 [--purge 500000 --purge-rounds 2]"
            ),
        }
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|arg| arg == "--outage") {
        return outage::main();
    }
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(calls) = options.purge {
        for store in &options.stores {
            let result = runtime.block_on(purge::bench_purge(store, &options, calls))?;
            purge::print_purge(&result, calls, options.rate);
        }
        return Ok(());
    }
    let mut results = Vec::new();
    for store in &options.stores {
        let result = runtime.block_on(bench_store(store, &options))?;
        print_store(&result, &options);
        results.push(result);
    }
    print_summary(&results);
    if results.iter().any(|r| !r.problems.is_empty()) {
        bail!("some checks failed (see above)");
    }
    Ok(())
}

/// Everything measured on one store.
struct StoreResult {
    store: String,
    notify: Report,
    /// The fixed rate right after the burst, while the machine writes out what it left.
    after_burst: Report,
    /// The fixed rate once the burst's writes are on disk: the steady state.
    fixed_rate: Report,
    healthz: Report,
    notify_cpu: CpuUse,
    healthz_cpu: CpuUse,
    idle_rss_kb: u64,
    peak_rss_kb: u64,
    after_rss_kb: u64,
    events: i64,
    duplicates: i64,
    deliveries: i64,
    problems: Vec<String>,
}

async fn bench_store(store: &str, options: &Options) -> anyhow::Result<StoreResult> {
    let database = Database::create(store).await?;
    let port = free_port()?;
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let server = Server::start(&database, target, &options.log_level, &[])?;
    server.wait_ready(target).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kb = server.memory("VmRSS")?;
    server.reset_peak_memory();
    eprintln!(
        "[{store}] POST /notify, {} connections, {:?}",
        options.connections, options.duration
    );
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let before = CpuSample::take(server.pid(), database.name());
    let notify = load::run(
        Plan {
            target,
            connections: options.connections,
            duration: options.duration,
            pace: Pace::ClosedLoop,
        },
        |connection| notify_requests(target, run, connection),
    )
    .await;
    let notify_cpu = CpuSample::take(server.pid(), database.name()).since(&before);
    let peak_rss_kb = server.memory("VmHWM")?;
    let at_fixed_rate = |seed: u64| {
        load::run(
            Plan {
                target,
                connections: options.connections,
                duration: options.rate_duration,
                pace: Pace::Rate(options.rate),
            },
            move |connection| notify_requests(target, seed, connection),
        )
    };
    eprintln!(
        "[{store}] POST /notify at {} requests/s right after the burst, {:?}",
        options.rate, options.rate_duration
    );
    let after_burst = at_fixed_rate(run + 1).await;
    eprintln!(
        "[{store}] sync, then {:?} of rest: the burst's writes reach the disk",
        options.settle
    );
    settle(options.settle).await?;
    eprintln!(
        "[{store}] POST /notify at {} requests/s, steady, {:?}",
        options.rate, options.rate_duration
    );
    let fixed_rate = at_fixed_rate(run + 2).await;
    eprintln!(
        "[{store}] GET /healthz, {} connections, {:?}",
        options.connections, options.duration
    );
    let before = CpuSample::take(server.pid(), database.name());
    let healthz = load::run(
        Plan {
            target,
            connections: options.connections,
            duration: options.duration,
            pace: Pace::ClosedLoop,
        },
        |_| healthz_requests(target),
    )
    .await;
    let healthz_cpu = CpuSample::take(server.pid(), database.name()).since(&before);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_rss_kb = server.memory("VmRSS")?;
    server.stop()?;
    let (events, duplicates, deliveries) = database.counts().await?;
    database.drop().await?;

    let mut problems = Vec::new();
    let phases = [&notify, &after_burst, &fixed_rate];
    let ok: u64 = phases.iter().map(|report| report.with_status(200)).sum();
    let accepted: u64 = phases.iter().map(|r| count(r, "200 accepted")).sum();
    let duplicate: u64 = phases.iter().map(|r| count(r, "200 duplicate")).sum();
    if (events + duplicates) as u64 != ok {
        problems.push(format!(
            "events {events} + duplicate deliveries {duplicates} != {ok} answers 200"
        ));
    }
    if (events as u64, duplicates as u64) != (accepted, duplicate) {
        problems.push(format!(
            "stored {events} events / {duplicates} duplicates, answered {accepted} accepted / {duplicate} duplicate"
        ));
    }
    if deliveries as u64 != ok {
        problems.push(format!(
            "{deliveries} deliveries stored for {ok} answers 200"
        ));
    }
    for (name, report) in [
        ("notify", &notify),
        ("fixed rate after the burst", &after_burst),
        ("fixed rate", &fixed_rate),
        ("healthz", &healthz),
    ] {
        let errors = report.io_errors + report.answered() - report.with_status(200);
        if errors > 0 {
            problems.push(format!("{name}: {errors} errors {:?}", report.answers));
        }
    }
    Ok(StoreResult {
        store: store.to_owned(),
        notify,
        after_burst,
        fixed_rate,
        healthz,
        notify_cpu,
        healthz_cpu,
        idle_rss_kb,
        peak_rss_kb,
        after_rss_kb,
        events,
        duplicates,
        deliveries,
        problems,
    })
}

/// Writes out what the burst left in the page cache (`sync`), then rests: without it the
/// kernel writes those pages back during the next phase, and the commits' syncs queue
/// behind them on the one disk.
async fn settle(rest: Duration) -> anyhow::Result<()> {
    let status = Command::new("sync").status()?;
    if !status.success() {
        bail!("sync failed: {status}");
    }
    tokio::time::sleep(rest).await;
    Ok(())
}

fn count(report: &Report, label: &str) -> u64 {
    report.answers.get(label).copied().unwrap_or(0)
}

fn notify_requests(target: SocketAddr, run: u64, connection: usize) -> Requests {
    let mut stream = notifications::Stream::new(run, connection);
    Box::new(move |buffer: &mut Vec<u8>| {
        let body = stream.next_body();
        buffer.extend_from_slice(
            format!(
                "POST /notify HTTP/1.1\r\nhost: {target}\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    })
}

fn healthz_requests(target: SocketAddr) -> Requests {
    let request = format!("GET /healthz HTTP/1.1\r\nhost: {target}\r\n\r\n").into_bytes();
    Box::new(move |buffer: &mut Vec<u8>| buffer.extend_from_slice(&request))
}

fn print_store(r: &StoreResult, options: &Options) {
    let line = |name: &str, report: &Report| {
        let errors = report.io_errors + report.answered() - report.with_status(200);
        println!(
            "  {name:<26} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms   errors {errors}",
            report.per_second(),
            report.quantile_ms(0.50),
            report.quantile_ms(0.99),
            report.quantile_ms(1.0),
        );
    };
    println!();
    println!("== {} ==", r.store);
    line(
        &format!("POST /notify ({} conns)", options.connections),
        &r.notify,
    );
    line(
        &format!("POST /notify ({} req/s)*", options.rate),
        &r.after_burst,
    );
    line(
        &format!("POST /notify ({} req/s)", options.rate),
        &r.fixed_rate,
    );
    line(
        &format!("GET /healthz ({} conns)", options.connections),
        &r.healthz,
    );
    println!(
        "  notify/healthz             {:.1}%",
        100.0 * r.notify.per_second() / r.healthz.per_second()
    );
    for (name, usage, report) in [
        ("CPU, notify (64 conns)", &r.notify_cpu, &r.notify),
        ("CPU, healthz (64 conns)", &r.healthz_cpu, &r.healthz),
    ] {
        let per = |seconds: f64| 1e6 * seconds / report.answered().max(1) as f64;
        println!(
            "  {name:<26} per request: calltrail {:.0} µs, postgres {:.0} µs, load generator {:.0} µs; \
             machine busy {:.0}% of {} cores, {:.0}% of it other processes",
            per(usage.calltrail_s),
            per(usage.postgres_s),
            per(usage.generator_s),
            100.0 * usage.busy_fraction(),
            usage.cores,
            100.0 * usage.others_fraction(),
        );
    }
    println!(
        "  RSS of calltrail           idle {:.1} MB   peak under notify load {:.1} MB   after the runs {:.1} MB",
        r.idle_rss_kb as f64 / 1024.0,
        r.peak_rss_kb as f64 / 1024.0,
        r.after_rss_kb as f64 / 1024.0
    );
    println!(
        "  answers                    notify {:?}   fixed rate {:?} and {:?}",
        r.notify.answers, r.after_burst.answers, r.fixed_rate.answers
    );
    println!("  * right after the burst, before its writes reached the disk");
    println!(
        "  stored                     {} events + {} duplicate deliveries = {} (deliveries {})",
        r.events,
        r.duplicates,
        r.events + r.duplicates,
        r.deliveries
    );
    if r.problems.is_empty() {
        println!("  check                      every 200 is in the database");
    }
    for problem in &r.problems {
        println!("  PROBLEM                    {problem}");
    }
}

fn print_summary(results: &[StoreResult]) {
    println!();
    println!("== targets ==");
    for r in results {
        let rate = r.notify.per_second();
        let ratio = rate / r.healthz.per_second();
        let (min_rate, min_ratio) = if r.store == "postgres" {
            (12_000.0, 0.30)
        } else {
            (8_000.0, 0.0)
        };
        let mark = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  {:<9} throughput {:>7.0}/s (target >= {min_rate:.0}): {}",
            r.store,
            rate,
            mark(rate >= min_rate)
        );
        if min_ratio > 0.0 {
            println!(
                "  {:<9} notify/healthz {:>5.1}% (target >= 30%): {}",
                r.store,
                100.0 * ratio,
                mark(ratio >= min_ratio)
            );
        }
        let p99 = r.fixed_rate.quantile_ms(0.99);
        println!(
            "  {:<9} p99 at fixed rate {p99:.2} ms (target < 10 ms): {}; right after the burst {:.2} ms",
            r.store,
            mark(p99 < 10.0),
            r.after_burst.quantile_ms(0.99)
        );
        let peak = r.peak_rss_kb as f64 / 1024.0;
        let idle = r.idle_rss_kb as f64 / 1024.0;
        println!(
            "  {:<9} peak RSS {peak:.1} MB (target < 150), idle {idle:.1} MB (target < 30): {}",
            r.store,
            mark(peak < 150.0 && idle < 30.0)
        );
        println!(
            "  {:<9} errors and lost acknowledgements: {}",
            r.store,
            if r.problems.is_empty() {
                "none"
            } else {
                "SOME"
            }
        );
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh database for one store, removed afterwards.
enum Database {
    Sqlite {
        dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl Database {
    async fn create(store: &str) -> anyhow::Result<Self> {
        match store {
            "sqlite" => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Ok(Database::Sqlite { dir, url })
            }
            "postgres" => {
                let admin_url = std::env::var("DATABASE_URL")
                    .ok()
                    .filter(|url| url.starts_with("postgres"))
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
                let name = format!("calltrail_bench_{}", std::process::id());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .context("connect to DATABASE_URL (a PostgreSQL server is needed)")?;
                sqlx::query(&format!(r#"drop database if exists "{name}" with (force)"#))
                    .execute(&mut admin)
                    .await?;
                sqlx::query(&format!(r#"create database "{name}""#))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                let url = with_database(&admin_url, &name);
                Ok(Database::Postgres {
                    admin_url,
                    name,
                    url,
                })
            }
            other => bail!("unknown store {other}: postgres or sqlite"),
        }
    }

    /// The PostgreSQL database's name; empty for SQLite.
    fn name(&self) -> &str {
        match self {
            Database::Sqlite { .. } => "",
            Database::Postgres { name, .. } => name,
        }
    }

    fn url(&self) -> &str {
        match self {
            Database::Sqlite { url, .. } | Database::Postgres { url, .. } => url,
        }
    }

    /// `(events, duplicate deliveries, deliveries)`.
    async fn counts(&self) -> anyhow::Result<(i64, i64, i64)> {
        const COUNTS: &str = "select (select count(*) from events),
                                     (select count(*) from deliveries where result = 'duplicate'),
                                     (select count(*) from deliveries)";
        Ok(match self {
            Database::Sqlite { url, .. } => {
                let mut db = sqlx::SqliteConnection::connect(url).await?;
                sqlx::query_as(COUNTS).fetch_one(&mut db).await?
            }
            Database::Postgres { url, .. } => {
                let mut db = sqlx::PgConnection::connect(url).await?;
                sqlx::query_as(COUNTS).fetch_one(&mut db).await?
            }
        })
    }

    async fn drop(self) -> anyhow::Result<()> {
        match self {
            Database::Sqlite { dir, .. } => dir.close()?,
            Database::Postgres {
                admin_url, name, ..
            } => {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!(r#"drop database if exists "{name}" with (force)"#))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
            }
        }
        Ok(())
    }
}

/// `url` with its database (the path) replaced by `database`; the query string is kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The release binary under test, killed if the benchmark stops early.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    /// Starts calltrail on `database` at `bind`, with the variables `env` besides.
    fn start(
        database: &Database,
        bind: SocketAddr,
        log_level: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let log = std::env::temp_dir().join(format!("calltrail-bench-{}.log", bind.port()));
        // `CALLTRAIL_BENCH_BIN` runs another build, e.g. to compare two commits back to back.
        let binary = std::env::var_os("CALLTRAIL_BENCH_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_calltrail")),
            PathBuf::from,
        );
        let child = Command::new(binary)
            .env("DATABASE_URL", database.url())
            .env("CALLTRAIL__SERVER__BIND", bind.to_string())
            .env("CALLTRAIL__LOG__LEVEL", log_level)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("start calltrail")?;
        Ok(Server {
            child: Some(child),
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    async fn wait_ready(&self, target: SocketAddr) -> anyhow::Result<()> {
        let report_ready = || async {
            load::run(
                Plan {
                    target,
                    connections: 1,
                    duration: Duration::from_millis(20),
                    pace: Pace::ClosedLoop,
                },
                |_| {
                    let request = format!("GET /readyz HTTP/1.1\r\nhost: {target}\r\n\r\n");
                    Box::new(move |b: &mut Vec<u8>| b.extend_from_slice(request.as_bytes()))
                },
            )
            .await
        };
        for _ in 0..300 {
            if report_ready().await.with_status(200) > 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("calltrail did not become ready; see {}", self.log.display())
    }

    /// A `/proc/PID/status` memory line, in kB.
    fn memory(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches(" kB").parse().ok()
            })
            .with_context(|| format!("no {field} in /proc/{}/status", self.pid()))
    }

    /// Resets the peak RSS (VmHWM) to the current RSS, so that the peak is the load's.
    fn reset_peak_memory(&self) {
        let path = format!("/proc/{}/clear_refs", self.pid());
        if std::fs::write(&path, "5").is_err() {
            eprintln!("cannot reset the peak RSS ({path}); it includes startup");
        }
    }

    /// SIGTERM, then waits (at most 30 s) for a clean exit; otherwise `Drop` kills it.
    fn stop(mut self) -> anyhow::Result<()> {
        let child = self.child.as_mut().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        for _ in 0..300 {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                if !status.success() {
                    bail!("calltrail exited with {status}; see {}", self.log.display());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("calltrail did not stop within 30 s of SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
