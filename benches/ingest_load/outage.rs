//! The outage benchmark: the release `calltrail` on PostgreSQL behind a TCP proxy this
//! program controls; notifications at a fixed rate (latency counted from each request's
//! scheduled time, so a stall cannot hide); the proxy cut (every connection closed, new ones
//! refused, as in a database restart) for a while in the middle, then restored. Prints the
//! answers by status, p50/p99/max before, during and after the cut, the spool's depth over
//! time and the time to drain it; checks that every `200` is in the database and that the
//! call records equal those of the same notifications imported with no fault. Run it with
//! `bench/outage.sh` (`cargo bench --bench ingest_load -- --outage [options]`), which documents
//! the options. Loopback traffic only.

use crate::{load, notify_requests};

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use load::{Pace, Plan};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

struct Options {
    rate: f64,
    connections: usize,
    before: Duration,
    cut: Duration,
    after: Duration,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        rate: 500.0,
        connections: 64,
        before: Duration::from_secs(20),
        cut: Duration::from_secs(60),
        after: Duration::from_secs(30),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        let seconds = |v: String| v.parse().map(Duration::from_secs_f64);
        match arg.as_str() {
            "--bench" | "--outage" => {}
            "--rate" => options.rate = value()?.parse()?,
            "--connections" => options.connections = value()?.parse()?,
            "--before" => options.before = seconds(value()?)?,
            "--cut" => options.cut = seconds(value()?)?,
            "--after" => options.after = seconds(value()?)?,
            other => bail!(
                "unknown option {other}; options: --rate 500 --connections 64 --before 20 \
                 --cut 60 --after 30"
            ),
        }
    }
    Ok(options)
}

/// Runs the outage benchmark (`--outage`) with the options that follow it.
pub fn main() -> anyhow::Result<()> {
    let options = options()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(&options))
}

async fn run(options: &Options) -> anyhow::Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
    let database = Database::create(&admin_url, "outage").await?;
    let reference = Database::create(&admin_url, "outage_reference").await?;
    let upstream = server_address(&admin_url)?;
    let mut proxy = Proxy::start(upstream).await?;
    let spool_dir = tempfile::tempdir()?;
    let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let proxied = database.url.replacen(
        &format!("@{}", authority(&admin_url)),
        &format!("@{}", proxy.listen),
        1,
    );
    let server = Server::start(&proxied, target, &spool_dir.path().join("spool.db"))?;
    wait_until(target, Duration::from_secs(30), |r| {
        r.contains("\"accepting\":\"database\"")
    })
    .await
    .context("calltrail did not become ready")?;

    let started = Instant::now();
    let depths = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample_depth(
        target,
        started,
        depths.clone(),
        sampling.clone(),
    ));
    let seed = std::process::id() as u64;
    let phase = |duration: Duration, seed: u64| {
        load::run(
            Plan {
                target,
                connections: options.connections,
                duration,
                pace: Pace::Rate(options.rate),
            },
            move |connection| notify_requests(target, seed, connection),
        )
    };
    eprintln!(
        "POST /notify at {}/s: {:?} before the cut",
        options.rate, options.before
    );
    let before = phase(options.before, seed).await;
    eprintln!("cut for {:?}", options.cut);
    proxy.cut();
    let cut_at = started.elapsed();
    let during = phase(options.cut, seed + 1).await;
    proxy.restore().await?;
    let restored_at = Instant::now();
    eprintln!("restored; {:?} after", options.after);
    let drained = tokio::spawn(async move {
        wait_until(target, Duration::from_secs(600), |r| {
            r.contains("\"accepting\":\"database\"") && r.contains("\"depth\":0")
        })
        .await
        .map(|()| restored_at.elapsed())
    });
    let after = phase(options.after, seed + 2).await;
    let drain_time = drained.await?;
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    server.stop()?;

    let counts = database.counts().await?;
    let bodies = database.bodies().await?;
    let import = spool_dir.path().join("notifications.jsonl");
    std::fs::write(&import, bodies.join("\n"))?;
    let imported = Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(["import", import.to_str().context("a UTF-8 path")?])
        .env("DATABASE_URL", &reference.url)
        .env("CALLTRAIL__LOG__LEVEL", "warn")
        .output()?;
    let same_calls = database.calls().await? == reference.calls().await?;

    println!();
    println!(
        "== outage: {}/s, cut {:?} at {:.0?} ==",
        options.rate, options.cut, cut_at
    );
    for (name, report) in [
        ("before", &before),
        ("during the cut", &during),
        ("after", &after),
    ] {
        println!(
            "  {name:<15} answers {:?}  io errors {}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            report.answers,
            report.io_errors,
            report.quantile_ms(0.5),
            report.quantile_ms(0.99),
            report.quantile_ms(1.0)
        );
    }
    println!("  spool depth (s since start: records, where notifications go)");
    for (at, line) in depths.lock().unwrap().iter() {
        println!("    {at:>5.0} s  {line}");
    }
    let ok: u64 = [&before, &during, &after]
        .iter()
        .map(|r| r.with_status(200))
        .sum();
    let non_2xx: u64 = [&before, &during, &after]
        .iter()
        .map(|r| r.answered() - r.with_status(200) + r.io_errors)
        .sum();
    match &drain_time {
        Ok(time) => println!(
            "  drain           {:.1} s after the restore; {} replayed: {:.0}/s while {}/s kept arriving",
            time.as_secs_f64(),
            counts.spooled,
            counts.spooled as f64 / time.as_secs_f64(),
            options.rate
        ),
        Err(err) => println!("  drain           NOT DRAINED: {err}"),
    }
    println!(
        "  stored          {} deliveries ({} replayed from the spool), {} events, for {ok} answers 200",
        counts.deliveries, counts.spooled, counts.events
    );
    println!(
        "  reference       {} imported with no fault: {}",
        bodies.len(),
        String::from_utf8_lossy(&imported.stdout).trim()
    );
    let mut problems = Vec::new();
    if counts.deliveries as u64 != ok {
        problems.push(format!(
            "{} deliveries for {ok} answers 200",
            counts.deliveries
        ));
    }
    if non_2xx > 0 {
        problems.push(format!("{non_2xx} answers not 2xx (or no answer)"));
    }
    if !same_calls {
        problems.push("the call records differ from the no-fault import".into());
    }
    if drain_time.is_err() {
        problems.push("the spool was not drained".into());
    }
    println!(
        "  p99 during the cut {:.2} ms (target < 50 ms)",
        during.quantile_ms(0.99)
    );
    if problems.is_empty() {
        println!(
            "  check           every 200 is in the database; the calls equal the no-fault run's"
        );
    }
    for problem in &problems {
        println!("  PROBLEM         {problem}");
    }
    database.drop().await?;
    reference.drop().await?;
    if !problems.is_empty() {
        bail!("some checks failed (see above)");
    }
    Ok(())
}

/// `GET /readyz`'s body, or `None` when it did not answer.
async fn readyz(target: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(target).await.ok()?;
    let request = format!("GET /readyz HTTP/1.1\r\nhost: {target}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    Some(answer.split_once("\r\n\r\n")?.1.to_owned())
}

async fn wait_until(
    target: SocketAddr,
    limit: Duration,
    ready: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if readyz(target).await.is_some_and(|body| ready(&body)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("not within {limit:?}")
}

/// The spool's depth every 5 s, and once more when it changes from or to empty.
async fn sample_depth(
    target: SocketAddr,
    started: Instant,
    depths: Arc<std::sync::Mutex<Vec<(f64, String)>>>,
    sampling: Arc<AtomicBool>,
) {
    let mut last = Instant::now() - Duration::from_secs(10);
    let mut was_empty = true;
    while sampling.load(Ordering::Relaxed) {
        if let Some(body) = readyz(target).await {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let depth = value["spool"]["depth"].as_u64().unwrap_or(0);
            let empty = depth == 0;
            if last.elapsed() >= Duration::from_secs(5) || empty != was_empty {
                let line = format!("{depth:>7}  {}", value["accepting"].as_str().unwrap_or("-"));
                depths
                    .lock()
                    .unwrap()
                    .push((started.elapsed().as_secs_f64(), line));
                last = Instant::now();
                was_empty = empty;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP proxy in front of PostgreSQL: `cut` closes every connection and refuses new ones.
struct Proxy {
    listen: SocketAddr,
    upstream: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut proxy = Proxy {
            listen: listener.local_addr()?,
            upstream,
            tasks: JoinSet::new(),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream;
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = server.set_nodelay(true);
                        let _ = client.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    }

    fn cut(&mut self) {
        self.tasks.abort_all();
    }

    async fn restore(&mut self) -> anyhow::Result<()> {
        while self.tasks.join_next().await.is_some() {}
        let listener = TcpListener::bind(self.listen).await?;
        self.serve(listener);
        Ok(())
    }
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

fn server_address(url: &str) -> anyhow::Result<SocketAddr> {
    let authority = authority(url).replace("localhost", "127.0.0.1");
    let authority = if authority.contains(':') {
        authority
    } else {
        format!("{authority}:5432")
    };
    authority
        .parse()
        .with_context(|| format!("DATABASE_URL's host must be an IP address: {authority}"))
}

struct Database {
    admin_url: String,
    name: String,
    url: String,
}

struct Counts {
    deliveries: i64,
    spooled: i64,
    events: i64,
}

impl Database {
    async fn create(admin_url: &str, what: &str) -> anyhow::Result<Self> {
        let name = format!("calltrail_bench_{what}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connect to DATABASE_URL (a PostgreSQL server is needed)")?;
        sqlx::query(&format!(r#"drop database if exists "{name}" with (force)"#))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!(r#"create database "{name}""#))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let (base, _) = admin_url
            .rsplit_once('/')
            .context("a database in DATABASE_URL")?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    async fn counts(&self) -> anyhow::Result<Counts> {
        let mut db = sqlx::PgConnection::connect(&self.url).await?;
        let (deliveries, spooled, events) = sqlx::query_as(
            "select (select count(*) from deliveries),
                    (select count(*) from deliveries where spooled_at is not null),
                    (select count(*) from events)",
        )
        .fetch_one(&mut db)
        .await?;
        Ok(Counts {
            deliveries,
            spooled,
            events,
        })
    }

    /// Every delivery's body, in the order received.
    async fn bodies(&self) -> anyhow::Result<Vec<String>> {
        let mut db = sqlx::PgConnection::connect(&self.url).await?;
        let bodies: Vec<Vec<u8>> =
            sqlx::query_scalar("select body from deliveries order by received_at, id")
                .fetch_all(&mut db)
                .await?;
        Ok(bodies
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect())
    }

    /// The call records, without what depends on when notifications were received.
    async fn calls(&self) -> anyhow::Result<Vec<String>> {
        let mut db = sqlx::PgConnection::connect(&self.url).await?;
        Ok(sqlx::query_scalar(
            "select concat_ws('|', conversation_id, state, status, outcome, reason_code,
                              sip_code, duration_s, connected_at, ended_at, amd_result,
                              event_count)
             from calls order by conversation_id",
        )
        .fetch_all(&mut db)
        .await?)
    }

    async fn drop(self) -> anyhow::Result<()> {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            r#"drop database if exists "{}" with (force)"#,
            self.name
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(())
    }
}

/// The release binary under test, killed if the benchmark stops early.
struct Server(Option<Child>);

impl Server {
    fn start(
        database_url: &str,
        bind: SocketAddr,
        spool: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let child = Command::new(env!("CARGO_BIN_EXE_calltrail"))
            .env("DATABASE_URL", database_url)
            .env("CALLTRAIL__SERVER__BIND", bind.to_string())
            .env("CALLTRAIL__SPOOL__PATH", spool)
            .env("CALLTRAIL__LOG__LEVEL", "warn")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start calltrail")?;
        Ok(Server(Some(child)))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let mut child = self.0.take().context("running")?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let status = child.wait()?;
        if !status.success() {
            bail!("calltrail exited with {status}");
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
