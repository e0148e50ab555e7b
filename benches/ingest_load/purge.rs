//! `--purge N`: ingest latency at a fixed rate while retention deletes N old calls, against
//! the same rate on the same database with retention off (docs/benchmarks.md#retention).
//!
//! For each store: a fresh database, migrated by a first start; N calls of 2020 written
//! with SQL (each with an answered and a completed event and their two deliveries, 400-byte
//! bodies); then, alternating on that database, a start without retention and a start with
//! retention on (`retention.days` reaching back to 2022), each followed at once by the fixed rate. The purge runs
//! during the second phase of each pair; the pair is repeated `--purge-rounds` times with
//! a new N old calls seeded before each.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sqlx::Connection;

use crate::load::{self, Pace, Plan, Report};
use crate::{Database, Options, Server, free_port, notify_requests};

/// One store's pairs of phases.
pub struct PurgeResult {
    pub store: String,
    pub rounds: Vec<(Report, Report, Duration)>,
}

pub async fn bench_purge(
    store: &str,
    options: &Options,
    calls: u64,
) -> anyhow::Result<PurgeResult> {
    let database = Database::create(store).await?;
    let port = free_port()?;
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let server = Server::start(&database, target, &options.log_level, &[])?;
    server.wait_ready(target).await?;
    server.stop()?;
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    // The seeded calls are of 2020; the load's notifications are dated May 2023 and are
    // kept, so the purge deletes exactly the seeded calls.
    let days = (chrono::Utc::now()
        - "2022-01-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>()?)
    .num_days()
    .to_string();
    let mut rounds = Vec::new();
    for round in 0..options.purge_rounds {
        let started = Instant::now();
        seed(&database, calls, round).await?;
        eprintln!(
            "[{store}] seeded {calls} calls of 2020 in {:.0?}",
            started.elapsed()
        );
        let mut reports = Vec::new();
        for retention in [false, true] {
            let env: &[(&str, &str)] = if retention {
                &[("CALLTRAIL__RETENTION__DAYS", &days)]
            } else {
                &[]
            };
            let server = Server::start(&database, target, &options.log_level, env)?;
            // Readiness comes after the migrations, which refill the statistics tables
            // for the calls written with SQL; retention starts right after.
            server.wait_ready(target).await?;
            let ready = Instant::now();
            eprintln!(
                "[{store}] round {} {}: POST /notify at {} requests/s, {:?}",
                round + 1,
                if retention {
                    "with the purge"
                } else {
                    "without"
                },
                options.rate,
                options.rate_duration
            );
            let load = load::run(
                Plan {
                    target,
                    connections: options.connections,
                    duration: options.rate_duration,
                    pace: Pace::Rate(options.rate),
                },
                move |connection| {
                    notify_requests(target, run + reports_seed(round, retention), connection)
                },
            );
            // The purge is timed while the load runs, so that one ending before the load
            // does is timed too, not rounded up to the load's duration.
            let purged = async {
                if retention {
                    wait_purged(target, calls, ready).await
                } else {
                    Ok(Duration::ZERO)
                }
            };
            let (report, purge) = tokio::join!(load, purged);
            let purge = purge?;
            server.stop()?;
            reports.push((report, purge));
        }
        let (with, purge) = reports.pop().unwrap();
        let (without, _) = reports.pop().unwrap();
        rounds.push((without, with, purge));
    }
    database.drop().await?;
    Ok(PurgeResult {
        store: store.to_owned(),
        rounds,
    })
}

fn reports_seed(round: u32, retention: bool) -> u64 {
    1000 + u64::from(round) * 2 + u64::from(retention)
}

/// Waits until retention has deleted `calls` calls (its counter says so), and returns
/// how long after readiness that was.
async fn wait_purged(target: SocketAddr, calls: u64, ready: Instant) -> anyhow::Result<Duration> {
    let prefix = r#"calltrail_retention_deleted_total{kind="calls"} "#;
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while Instant::now() < deadline {
        let text = client
            .get(format!("http://{target}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let deleted = text
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|n| n.trim().parse::<u64>().ok());
        if deleted.is_some_and(|n| n >= calls) {
            return Ok(ready.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("retention did not delete {calls} calls within 30 minutes")
}

/// Writes `calls` calls of 2020 (one every 5 s from 2020-01-01), each with two events and
/// their two deliveries, as calltrail would have stored them.
async fn seed(database: &Database, calls: u64, round: u32) -> anyhow::Result<()> {
    let prefix = format!("old-{round}-");
    match database {
        Database::Sqlite { url, .. } => {
            let mut db = sqlx::SqliteConnection::connect(url).await?;
            let statements = [
                format!(
                    "create temporary table n as
                     with recursive n(i) as (select 1 union all select i + 1 from n where i < {calls})
                     select i, '{prefix}' || i as id,
                            strftime('%Y-%m-%dT%H:%M:%S.000000Z', '2020-01-01', '+' || (i * 5) || ' seconds') as t
                     from n"
                ),
                "insert into calls (conversation_id, state, status, outcome, reason_code, reason,
                     sip_code, sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                     occurred_at, first_seen_at, last_seen_at, event_count, updated_at)
                 select id, 'completed', 'completed', 'human', 'normal-clearing', '200 OK', 200,
                     'OK', 30 + i % 90, t, t, 'detect', 'amd_human_detected', t, t, t, 2, t from n"
                    .into(),
                "insert into events (conversation_id, content_hash, status, warnings, payload, received_at)
                 select id, 'answered-' || i, 'answered', '[]', '{}', t from n
                 union all
                 select id, 'completed-' || i, 'completed', '[]', '{}', t from n"
                    .into(),
                "insert into deliveries (received_at, content_type, body, result, conversation_id, event_id)
                 select received_at, 'application/json', zeroblob(400), 'accepted', conversation_id, id
                 from events where conversation_id in (select id from n)"
                    .into(),
                "drop table n".into(),
            ];
            for statement in statements {
                sqlx::query(&statement)
                    .execute(&mut db)
                    .await
                    .with_context(|| statement.clone())?;
            }
        }
        Database::Postgres { url, .. } => {
            let mut db = sqlx::PgConnection::connect(url).await?;
            let statements = [
                format!(
                    "create temporary table n as
                     select i, '{prefix}' || i as id,
                            timestamptz '2020-01-01 00:00:00+00' + i * interval '5 seconds' as t
                     from generate_series(1, {calls}) as i"
                ),
                "insert into calls (conversation_id, state, status, outcome, reason_code, reason,
                     sip_code, sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                     occurred_at, first_seen_at, last_seen_at, event_count, updated_at)
                 select id, 'completed', 'completed', 'human', 'normal-clearing', '200 OK', 200,
                     'OK', 30 + i % 90, t, t, 'detect', 'amd_human_detected', t, t, t, 2, t from n"
                    .into(),
                "insert into events (conversation_id, content_hash, status, warnings, payload, received_at)
                 select id, 'answered-' || i, 'answered', jsonb '[]', jsonb '{}', t from n
                 union all
                 select id, 'completed-' || i, 'completed', jsonb '[]', jsonb '{}', t from n"
                    .into(),
                "insert into deliveries (received_at, content_type, body, result, conversation_id, event_id)
                 select e.received_at, 'application/json', convert_to(repeat('x', 400), 'UTF8'),
                     'accepted', e.conversation_id, e.id
                 from events as e join n on n.id = e.conversation_id"
                    .into(),
                "drop table n".into(),
                "vacuum analyze".into(),
            ];
            for statement in statements {
                sqlx::query(&statement)
                    .execute(&mut db)
                    .await
                    .with_context(|| statement.clone())?;
            }
        }
    }
    Ok(())
}

/// Prints each round's pair, and the ratio of the p99s.
pub fn print_purge(result: &PurgeResult, calls: u64, rate: f64) {
    println!(
        "\n[{}] {calls} old calls purged while POST /notify runs at {rate} requests/s",
        result.store
    );
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10}",
        "round", "phase", "p50 ms", "p99 ms", "max ms", "non-200", "purge s"
    );
    for (i, (without, with, purge)) in result.rounds.iter().enumerate() {
        for (phase, report, purge) in [("no purge", without, None), ("purge", with, Some(purge))] {
            println!(
                "{:<8} {:>10} {:>10.2} {:>10.2} {:>10.2} {:>9} {:>10}",
                i + 1,
                phase,
                report.quantile_ms(0.5),
                report.quantile_ms(0.99),
                report.quantile_ms(1.0),
                report.answered() + report.io_errors - report.with_status(200),
                purge.map_or(String::new(), |d| format!("{:.1}", d.as_secs_f64())),
            );
        }
        println!(
            "{:<8} p99 with the purge / without: {:.2}",
            i + 1,
            with.quantile_ms(0.99) / without.quantile_ms(0.99)
        );
    }
}
