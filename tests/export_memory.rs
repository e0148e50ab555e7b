//! Exporting 100,000 calls streams them: the process's peak memory does not grow with the
//! export. A test binary of its own, so that no other test shares the measured process.

mod support;

use std::time::Duration;

use calltrail::config::Settings;
use calltrail::startup::Application;
use sqlx::Connection;
use support::{Backend, TestDb};

const CALLS: usize = 100_000;

/// Peak resident memory of this process so far, from the kernel.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Inserts `CALLS` calls straight into the table, one minute apart.
async fn seed(db: &TestDb) {
    let sql = match db.backend {
        Backend::Postgres => format!(
            "insert into calls (conversation_id, state, status, outcome, reason_code, reason, sip_code,
                                sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                                occurred_at, first_seen_at, last_seen_at, event_count, updated_at)
             select 'bulk-' || lpad(n::text, 6, '0'), 'completed', 'completed', 'human',
                    'caller-disconnected', '200 OK', 200, 'OK', 30,
                    t, t + interval '30 seconds', 'detect', 'amd_human_detected', t, t, t, 2, t
             from generate_series(1, {CALLS}) as n,
                  lateral (select timestamptz '2026-01-01T00:00:00Z' + n * interval '1 minute') as at(t)"
        ),
        Backend::Sqlite => format!(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < {CALLS}),
                  at(i, t) as (select i, strftime('%Y-%m-%dT%H:%M:%S', '2026-01-01', '+' || i || ' minutes')
                                         || '.000000Z' from n)
             insert into calls (conversation_id, state, status, outcome, reason_code, reason, sip_code,
                                sip_reason, duration_s, connected_at, ended_at, amd_mode, amd_result,
                                occurred_at, first_seen_at, last_seen_at, event_count, updated_at)
             select 'bulk-' || printf('%06d', i), 'completed', 'completed', 'human',
                    'caller-disconnected', '200 OK', 200, 'OK', 30, t, t, 'detect',
                    'amd_human_detected', t, t, t, 2, t
             from at"
        ),
    };
    let store = db.store().await;
    store.close().await;
    match db.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        }
    }
}

async fn export_streams_with_flat_memory(backend: Backend) {
    let Some(db) = TestDb::new(backend, "export_streams_with_flat_memory").await else {
        return;
    };
    seed(&db).await;
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.database.url = db.url.clone();
    // `/readyz` then answers 200 only once the database is ready.
    settings.spool.enabled = Some(false);
    let app = Application::build(&settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = peak_rss_kib();

    let mut response = client
        .get(format!("{url}/v1/calls/export?format=ndjson"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (mut lines, mut bytes, mut last) = (0usize, 0usize, Vec::new());
    while let Some(chunk) = response.chunk().await.unwrap() {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        bytes += chunk.len();
        last = chunk.to_vec();
    }

    let grown_kib = peak_rss_kib().saturating_sub(before);
    assert_eq!(lines, CALLS, "every call exported");
    let last_line = String::from_utf8_lossy(&last);
    assert!(
        last_line
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("\"bulk-000001\""),
        "oldest last"
    );
    // Buffered, the export (~{bytes} bytes of NDJSON plus the calls behind it) would raise
    // the peak by far more than its size; streamed, it stays near one page of calls.
    assert!(
        (grown_kib as usize) * 1024 < bytes / 2,
        "peak memory grew by {grown_kib} KiB while exporting {bytes} bytes"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_with_flat_memory_on_both_stores() {
    // Sequential, in one test: a parallel test would share the measured process.
    export_streams_with_flat_memory(Backend::Sqlite).await;
    export_streams_with_flat_memory(Backend::Postgres).await;
}
