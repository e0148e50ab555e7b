//! "200 means stored", tested the hard way: the real binary under concurrent load, killed
//! with SIGKILL mid-stream; every notification it had answered 200 must be in the database.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
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

/// The binary, on `database_url`, listening on `bind`, with a clean environment.
fn start(database_url: &str, bind: &str) -> Child {
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
    let mut server = start(&db.url, &bind);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "calltrail became ready");

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
