//! "200 means stored", tested the hard way: the real binary under concurrent load, killed
//! with SIGKILL mid-stream; every notification it had answered 200 must be in the database.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::proxy::{Proxy, url_parts};
use support::{Backend, TestDb, both_stores};

both_stores!(sigkill_under_load_loses_no_answered_notification);

/// Concurrent senders, and how long they send before the kill.
const SENDERS: usize = 16;
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(1500);
/// Bounds each sender's loop whatever happens.
const MAX_POSTS_PER_SENDER: usize = 5_000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary, on `database_url`, listening on `bind`, its spool in `spool_dir` (on where
/// that is the default: PostgreSQL), with a clean environment.
fn start(database_url: &str, bind: &str, spool_dir: &std::path::Path) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calltrail"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CALLTRAIL_") {
            command.env_remove(key);
        }
    }
    command
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", database_url)
        .env("CALLTRAIL__SERVER__BIND", bind)
        .env("CALLTRAIL__LOG__LEVEL", "warn")
        .env("CALLTRAIL__SPOOL__PATH", spool_dir.join("spool.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start calltrail")
}

/// One notification per post; every fifth repeats the one before (a duplicate).
fn body(sender: usize, post: usize) -> String {
    let post = if post % 5 == 4 { post - 1 } else { post };
    let call = format!("crash-{sender}-{}", post / 2);
    if post % 2 == 0 {
        format!(
            r#"{{"conversationId":"{call}","status":"answered","callconnecttime":"5/8/2023,11:32:49AM"}}"#
        )
    } else {
        format!(
            r#"{{"conversationId":"{call}","status":"completed","duration":4,"callconnecttime":"5/8/2023,11:32:49AM","callDisconnectTime":"5/8/2023,11:32:53AM"}}"#
        )
    }
}

async fn sigkill_under_load_loses_no_answered_notification(backend: Backend) {
    let name = "sigkill_under_load_loses_no_answered_notification";
    let Some(db) = TestDb::new(backend, name).await else {
        return;
    };
    db.store().await.close().await; // migrated before the binary starts
    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let spool_dir = tempfile::tempdir().unwrap();
    let mut server = start(&db.url, &bind, spool_dir.path());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_for(&client, &base, "the database", |r| {
        r["accepting"] == "database"
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (client, url, stop) = (client.clone(), format!("{base}/notify"), stop.clone());
        senders.spawn(async move {
            let mut answered = Vec::new();
            for post in 0..MAX_POSTS_PER_SENDER {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = body(sender, post);
                let Ok(response) = client.post(&url).body(body.clone()).send().await else {
                    break; // the server is gone
                };
                if response.status() != 200 {
                    continue;
                }
                // A 200 whose body is cut off by the kill is not an answer the client got.
                if let Ok(receipt) = response.json::<Value>().await {
                    answered.push((body, receipt));
                }
            }
            answered
        });
    }
    let started = Instant::now();
    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    server.kill().expect("SIGKILL calltrail"); // Child::kill sends SIGKILL on Unix
    let killed_after = started.elapsed();
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let answered: Vec<(String, Value)> = senders.join_all().await.into_iter().flatten().collect();

    assert!(
        answered.len() >= 50,
        "load was running when killed: {} answered in {killed_after:?}",
        answered.len()
    );
    let store = db.store().await;
    for (body, receipt) in &answered {
        if receipt["result"] == "spooled" {
            continue; // in the spool, replayed by the next run (see the test below)
        }
        let delivery_id = receipt["delivery_id"].as_i64().unwrap();
        let event_id = receipt["event_id"].as_i64().unwrap();
        let delivery = store
            .delivery(delivery_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("delivery {delivery_id} answered 200 but not stored"));
        assert_eq!(delivery.body, body.as_bytes());
        assert_eq!(delivery.event_id, Some(event_id));
        assert_eq!(
            delivery.result.as_str(),
            receipt["result"].as_str().unwrap()
        );
        let conversation_id = receipt["conversation_id"].as_str().unwrap();
        let (call, events) = store.call(conversation_id).await.unwrap().unwrap();
        assert!(
            events.iter().any(|e| e.recorded.id == event_id),
            "event {event_id} answered 200 but not stored"
        );
        let records: Vec<_> = events.into_iter().map(|e| e.recorded).collect();
        assert_eq!(Some(call), calltrail::call::fold(&records));
    }
    store.close().await;
}

/// `/readyz` as JSON once it answers 200 and `ready` holds for it (at most ~20 s).
async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..400 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status() == 200 {
                let body: Value = response.json().await.unwrap();
                if ready(&body) {
                    return body;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("calltrail never got to: {what}");
}

/// Notifications spooled while PostgreSQL is cut off; calltrail killed with SIGKILL with
/// them in the spool, started again, and killed again just after the database is back (in
/// the middle of the replay, or about); started once more: every one is stored, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_spooled_replays_every_notification_once() {
    const NOTIFICATIONS: usize = 600;
    const SENDERS: usize = 8;
    let Some(db) = TestDb::new(Backend::Postgres, "sigkill_while_spooled").await else {
        return;
    };
    db.store().await.close().await;
    let mut url = url_parts(&db.url);
    let mut proxy = Proxy::start(url.addr).await;
    url.addr = proxy.listen;
    let url = url.to_string();
    let spool_dir = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut server = start(&url, &bind, spool_dir.path());
    wait_for(&client, &base, "the database", |r| {
        r["accepting"] == "database"
    })
    .await;

    proxy.cut();
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (client, url) = (client.clone(), format!("{base}/notify"));
        senders.spawn(async move {
            let mut answers = Vec::new();
            for post in (sender..NOTIFICATIONS).step_by(SENDERS) {
                let body = body(sender, post);
                let response = client.post(&url).body(body.clone()).send().await.unwrap();
                let status = response.status().as_u16();
                let receipt: Value = response.json().await.unwrap();
                answers.push((body, status, receipt));
            }
            answers
        });
    }
    let answers: Vec<(String, u16, Value)> =
        senders.join_all().await.into_iter().flatten().collect();
    server.kill().expect("SIGKILL calltrail");
    server.wait().unwrap();
    let mut server = start(&url, &bind, spool_dir.path());
    let restarted = wait_for(&client, &base, "the spool", |r| r["accepting"] == "spool").await;
    proxy.restore().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.kill().expect("SIGKILL calltrail again");
    server.wait().unwrap();
    let mut server = start(&url, &bind, spool_dir.path());
    wait_for(&client, &base, "an empty spool", |r| {
        r["accepting"] == "database" && r["spool"]["depth"] == 0
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    for (body, status, receipt) in &answers {
        assert_eq!(*status, 200, "{body}: {receipt}");
        assert_eq!(receipt["result"], "spooled", "{receipt}");
    }
    assert_eq!(restarted["spool"]["depth"], answers.len());
    let store = db.store().await;
    let mut connection = store_connection(&db.url).await;
    let stored: Vec<(Vec<u8>, bool)> =
        sqlx::query_as("select body, spooled_at is not null from deliveries order by id")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    let mut bodies: Vec<&[u8]> = stored.iter().map(|(body, _)| body.as_slice()).collect();
    bodies.sort();
    let mut sent: Vec<&[u8]> = answers.iter().map(|(body, ..)| body.as_bytes()).collect();
    sent.sort();
    assert_eq!(
        bodies, sent,
        "every spooled notification stored exactly once"
    );
    assert!(stored.iter().all(|(_, spooled)| *spooled));
    for (body, ..) in answers.iter().take(20) {
        let parsed: Value = serde_json::from_str(body).unwrap();
        let id = parsed["conversationId"].as_str().unwrap();
        let (call, events) = store.call(id).await.unwrap().unwrap();
        let records: Vec<_> = events.into_iter().map(|e| e.recorded).collect();
        assert_eq!(Some(call), calltrail::call::fold(&records));
    }
    store.close().await;
}

async fn store_connection(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap()
}
