//! Slow and stalling clients, played by a real TCP client: headers or a body that never
//! complete, a kept-alive connection left idle, more connections than allowed, a `/v1`
//! query that does not finish. Each deadline here is short; every wait on the server has a
//! guard many times longer, so that a broken limit fails the test instead of hanging it.

use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, fresh_db, spawn_ready, test_settings};
use crate::support::Backend;

/// How long a test waits for something the server must do within its short limits.
const GUARD: Duration = Duration::from_secs(20);

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    TcpStream::connect(address).await.unwrap()
}

/// Reads until the server closes the connection; panics if it does not within [`GUARD`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(GUARD, stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads one response whose body has a `content-length`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed before a whole response");
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |l| l.parse::<usize>().unwrap());
                if body.len() >= length {
                    return text.into_owned();
                }
            }
        }
    };
    tokio::time::timeout(GUARD, read).await.expect("a response")
}

async fn scrape(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

fn timeouts(text: &str, kind: &str) -> usize {
    let series = format!(r#"calltrail_http_connection_timeouts_total{{timeout="{kind}"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn headers_that_never_complete_are_cut_off() {
    let db = fresh_db(Backend::Sqlite, "headers").await.unwrap();
    let mut settings = test_settings(&db.url);
    settings.server.header_timeout_ms = 300;
    let app = spawn_ready(settings).await;
    let mut silent = connect(&app).await;
    let mut half_line = connect(&app).await;
    let mut half_headers = connect(&app).await;

    half_line.write_all(b"POST /noti").await.unwrap();
    half_headers
        .write_all(b"POST /notify HTTP/1.1\r\nHost: calltrail\r\nContent-")
        .await
        .unwrap();

    for stream in [&mut silent, &mut half_line, &mut half_headers] {
        assert_eq!(read_until_closed(stream).await, "");
    }
    assert_eq!(timeouts(&scrape(&app).await, "header"), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_trickled_body_gets_408_and_is_not_stored() {
    let db = fresh_db(Backend::Sqlite, "trickled_body").await.unwrap();
    let mut settings = test_settings(&db.url);
    settings.server.body_timeout_ms = 300;
    let app = spawn_ready(settings).await;
    let body = br#"{"conversationId":"trickled","status":"completed"}"#;
    let mut stream = connect(&app).await;

    let head = format!(
        "POST /notify HTTP/1.1\r\nHost: calltrail\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    let response = read_until_closed(&mut stream).await;

    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{response}"
    );
    assert!(response.contains("content-type: application/problem+json\r\n"));
    let (_, problem) = response.split_once("\r\n\r\n").unwrap();
    let problem: Value = serde_json::from_str(problem).unwrap();
    assert_eq!(problem["status"], 408);
    assert_eq!(problem["type"], "urn:calltrail:problem:body-timeout");
    let deliveries: Value = app.get("/v1/deliveries").await.json().await.unwrap();
    assert_eq!(deliveries["data"], Value::Array(vec![]), "{deliveries}");
    assert!(
        scrape(&app)
            .await
            .contains(r#"calltrail_notifications_total{source="kore",result="timeout"} 1"#)
    );
    app.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let db = fresh_db(Backend::Sqlite, "idle").await.unwrap();
    let mut settings = test_settings(&db.url);
    settings.server.idle_timeout_ms = 300;
    let app = spawn_ready(settings).await;
    let mut stream = connect(&app).await;

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: calltrail\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut stream).await;

    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert_eq!(read_until_closed(&mut stream).await, "");
    // The test client's own kept-alive connection may have idled out too.
    assert!(timeouts(&scrape(&app).await, "idle") >= 1);
    app.stop().await;
}

#[tokio::test]
async fn beyond_max_connections_new_ones_wait_until_one_closes() {
    let db = fresh_db(Backend::Sqlite, "max_connections").await.unwrap();
    let mut settings = test_settings(&db.url);
    settings.server.max_connections = 3;
    let app = spawn_ready(settings).await;
    // The test client's kept-alive connection (it waited for readiness on it) is one.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let stalled = connect(&app).await;
    let mut kept = connect(&app).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: calltrail\r\n\r\n")
        .await
        .unwrap();
    // Both are accepted: the second is answered.
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    let mut third = connect(&app).await;

    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: calltrail\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(waited.is_err(), "served a third connection beyond the cap");
    drop(stalled);
    let response = read_until_closed(&mut third).await;

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(kept);
    app.stop().await;
}

/// A `/v1` query blocked by a lock answers `503` at `api.timeout_ms`, while a streamed
/// export read slowly is not cut off. PostgreSQL only: a lock there blocks readers.
#[tokio::test]
async fn a_slow_query_answers_503_and_a_slow_export_completes() {
    let Some(db) = fresh_db(Backend::Postgres, "slow_query").await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.api.timeout_ms = 500;
    let app = spawn_ready(settings).await;
    let calls = 300;
    for n in 0..calls {
        let body = format!(r#"{{"conversationId":"slow-{n}","status":"answered"}}"#);
        assert_eq!(app.notify(body).await.status(), 200);
    }
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("lock table calls in access exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();

    let blocked = app.get("/v1/calls").await;

    let problem = crate::helpers::assert_problem(blocked, 503).await;
    assert_eq!(problem["type"], "urn:calltrail:problem:timeout");
    lock.rollback().await.unwrap();
    let mut export = app.get("/v1/calls/export?format=ndjson").await;
    let mut lines = 0;
    while let Some(chunk) = export.chunk().await.unwrap() {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(lines, calls);
    app.stop().await;
}
