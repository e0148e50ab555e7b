//! The spool: while the database is away, notifications are synced to a local file and
//! answered `200 spooled`; once it is back they are replayed into it, ending up exactly as
//! they would have without the outage.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    TestApp, assert_problem, fixture, fresh_db, spawn, spawn_ready, test_settings, with_spool,
};
use crate::metrics::sample;
use crate::support::proxy::{Proxy, url_parts};
use crate::support::{Backend, both_stores};

/// A URL whose store never becomes ready.
fn unreachable_database(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Postgres => "postgres://postgres@127.0.0.1:9/calltrail".into(),
        Backend::Sqlite => {
            let not_a_directory = dir.join("file");
            std::fs::write(&not_a_directory, b"").unwrap();
            format!(
                "sqlite://{}",
                not_a_directory.join("calltrail.db").display()
            )
        }
    }
}

/// What is sent before, during and after the cut: new notifications, copies of one sent
/// during the cut and of one stored before it, and a body that is not JSON.
fn before() -> Vec<String> {
    vec![
        fixture("samples/01-completed-human.json"),
        fixture("samples/02-completed-machine.json"),
    ]
}

fn during() -> Vec<String> {
    vec![
        fixture("samples/03-completed-amd-disabled.json"),
        fixture("samples/05-failed-486-busy.json"),
        fixture("samples/03-completed-amd-disabled.json"),
        fixture("samples/01-completed-human.json"),
        "not json".into(),
        fixture("samples/06-failed-480-unavailable.json"),
    ]
}

fn after() -> Vec<String> {
    vec![
        fixture("samples/04-failed-503.json"),
        fixture("samples/05-failed-486-busy.json"),
    ]
}

async fn send_all(app: &TestApp, bodies: &[String]) -> Vec<(u16, Value)> {
    let mut answers = Vec::new();
    for body in bodies {
        let response = app.notify(body.clone()).await;
        let status = response.status().as_u16();
        answers.push((status, response.json().await.unwrap()));
    }
    answers
}

/// The scrape of `/metrics` (the tests' calltrail has no API key).
pub(crate) async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Polls `/readyz` until the spool is empty and notifications go to the database.
pub(crate) async fn wait_drained(app: &TestApp) -> Value {
    for _ in 0..400 {
        let response = app.get("/readyz").await;
        if response.status() == 200 {
            let ready: Value = response.json().await.unwrap();
            let empty = ready["spool"].is_null() || ready["spool"]["depth"] == 0;
            if ready["accepting"] == "database" && empty {
                return ready;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the spool was never drained");
}

/// Everything the API shows about the stored calls and deliveries, minus what depends on
/// when the test ran (ids, received times).
async fn stored(app: &TestApp) -> (Vec<Value>, Vec<Value>) {
    let export = app.get("/v1/calls/export?format=ndjson").await;
    let mut calls: Vec<Value> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| {
            let mut call: Value = serde_json::from_str(line).unwrap();
            for time in ["first_seen_at", "last_seen_at", "occurred_at"] {
                call.as_object_mut().unwrap().remove(time);
            }
            call
        })
        .collect();
    calls.sort_by_key(|c| c["conversation_id"].to_string());
    let page: Value = app
        .get("/v1/deliveries?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let mut deliveries: Vec<Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            serde_json::json!({
                "result": d["result"], "body": d["body"], "error": d["error"],
                "conversation_id": d["conversation_id"],
                "received_at": d["received_at"], "spooled_at": d["spooled_at"],
            })
        })
        .collect();
    deliveries.reverse(); // oldest first
    (calls, deliveries)
}

fn without_times(deliveries: &[Value]) -> Vec<Value> {
    deliveries
        .iter()
        .map(|d| {
            let mut d = d.clone();
            let d_ = d.as_object_mut().unwrap();
            d_.remove("received_at");
            d_.remove("spooled_at");
            d
        })
        .collect()
}

#[tokio::test]
async fn a_database_cut_is_ridden_out_and_replayed_as_if_nothing_happened() {
    let name = "a_database_cut_is_ridden_out_and_replayed_as_if_nothing_happened";
    let (Some(db), Some(reference_db)) = (
        fresh_db(Backend::Postgres, name).await,
        fresh_db(Backend::Postgres, name).await,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut url = url_parts(&db.url);
    let mut proxy = Proxy::start(url.addr).await;
    url.addr = proxy.listen;
    let app = spawn_ready(with_spool(test_settings(&url.to_string()), dir.path())).await;

    let stored_before = send_all(&app, &before()).await;
    proxy.cut();
    let spooled = send_all(&app, &during()).await;
    let readyz = app.get("/readyz").await;
    assert_eq!(readyz.status(), 200, "the spool takes notifications");
    let ready: Value = readyz.json().await.unwrap();
    let metrics_during = scrape(&app).await;
    proxy.restore().await;
    let drained = wait_drained(&app).await;
    let metrics_drained = scrape(&app).await;
    let stored_after = send_all(&app, &after()).await;
    let (calls, deliveries) = stored(&app).await;
    app.stop().await;

    assert!(
        stored_before
            .iter()
            .all(|(s, r)| *s == 200 && r["result"] == "accepted")
    );
    for (status, answer) in spooled.iter().filter(|(_, a)| a["status"].is_null()) {
        assert_eq!(*status, 200, "{answer}");
        assert_eq!(answer["result"], "spooled", "{answer}");
        assert!(answer["spool_id"].as_i64().is_some(), "{answer}");
        assert!(answer.get("delivery_id").is_none(), "{answer}");
    }
    let (status, problem) = &spooled[4];
    assert_eq!(
        *status, 400,
        "a body that is not JSON is still a 400: {problem}"
    );
    assert!(problem.get("delivery_id").is_none());
    assert_eq!(ready["accepting"], "spool");
    assert_eq!(ready["spool"]["depth"], 6);
    assert!(ready["spool"]["oldest_age_s"].as_f64().is_some());
    assert_eq!(drained["spool"]["depth"], 0);
    assert!(stored_after.iter().all(|(s, _)| *s == 200));
    let notifications = |text: &str, result: &str| {
        sample(
            text,
            "calltrail_notifications_total",
            &format!(r#"source="kore",result="{result}""#),
        )
    };
    assert_eq!(notifications(&metrics_during, "spooled"), Some(6.0));
    assert_eq!(notifications(&metrics_during, "accepted"), Some(2.0));
    assert_eq!(
        sample(&metrics_during, "calltrail_spool_records", ""),
        Some(6.0)
    );
    assert!(sample(&metrics_during, "calltrail_spool_bytes", "").unwrap() > 0.0);
    assert!(sample(&metrics_during, "calltrail_spool_oldest_age_seconds", "").unwrap() >= 0.0);
    assert_eq!(
        sample(&metrics_drained, "calltrail_spool_records", ""),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics_drained, "calltrail_spool_bytes", ""),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics_drained, "calltrail_spool_oldest_age_seconds", ""),
        Some(0.0)
    );
    let replayed = |result: &str| {
        sample(
            &metrics_drained,
            "calltrail_spool_replayed_total",
            &format!(r#"source="kore",result="{result}""#),
        )
    };
    // The first write of the cut may have committed after all: the replay finds it stored.
    let accepted = replayed("accepted").unwrap_or(0.0) + replayed("already_stored").unwrap_or(0.0);
    assert_eq!(accepted, 3.0);
    assert_eq!(replayed("duplicate"), Some(2.0));
    assert_eq!(replayed("rejected"), Some(1.0));

    // The same notifications with no cut.
    let reference = spawn_ready(test_settings(&reference_db.url)).await;
    for bodies in [before(), during(), after()] {
        send_all(&reference, &bodies).await;
    }
    let (reference_calls, reference_deliveries) = stored(&reference).await;
    reference.stop().await;

    assert_eq!(calls, reference_calls);
    assert_eq!(
        without_times(&deliveries),
        without_times(&reference_deliveries)
    );
    let results: Vec<&str> = deliveries
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        [
            "accepted",
            "accepted",
            "accepted",
            "accepted",
            "duplicate",
            "duplicate",
            "rejected",
            "accepted",
            "accepted",
            "duplicate"
        ]
    );
    for (index, delivery) in deliveries.iter().enumerate() {
        let spooled = (2..8).contains(&index);
        assert_eq!(!delivery["spooled_at"].is_null(), spooled, "{delivery}");
        if spooled {
            assert!(delivery["spooled_at"].as_str() >= delivery["received_at"].as_str());
        }
    }
}

both_stores!(
    a_notification_before_the_database_is_ready_is_spooled,
    a_full_spool_answers_503,
    a_spool_that_cannot_be_written_answers_503,
    the_startup_window_refuses_nothing
);

async fn a_notification_before_the_database_is_ready_is_spooled(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = unreachable_database(backend, dir.path());
    let app = spawn(with_spool(test_settings(&url), dir.path())).await;

    let response = app.notify(fixture("samples/01-completed-human.json")).await;
    assert_eq!(response.status(), 200);
    let receipt: Value = response.json().await.unwrap();
    let readyz = app.get("/readyz").await;

    assert_eq!(receipt["result"], "spooled");
    assert_eq!(readyz.status(), 200);
    let ready: Value = readyz.json().await.unwrap();
    assert_eq!(ready["accepting"], "spool");
    assert_eq!(ready["spool"]["depth"], 1);
    app.stop().await;
}

async fn a_full_spool_answers_503(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = unreachable_database(backend, dir.path());
    let mut settings = with_spool(test_settings(&url), dir.path());
    settings.spool.max_bytes = 600;
    let app = spawn(settings).await;

    let first = app.notify(fixture("samples/01-completed-human.json")).await;
    let second = app
        .notify(fixture("samples/02-completed-machine.json"))
        .await;

    assert_eq!(first.status(), 200);
    assert_eq!(second.headers()["retry-after"], "5");
    assert_problem(second, 503).await;
    assert_eq!(
        app.get("/readyz").await.status(),
        503,
        "nothing can take one"
    );
    let metrics = scrape(&app).await;
    let full = sample(
        &metrics,
        "calltrail_spool_write_failures_total",
        r#"source="kore",reason="full""#,
    );
    assert_eq!(full, Some(1.0));
    let refused = r#"source="kore",result="unavailable""#;
    assert_eq!(
        sample(&metrics, "calltrail_notifications_total", refused),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "calltrail_spool_max_bytes", ""),
        Some(600.0)
    );
    app.stop().await;
}

async fn a_spool_that_cannot_be_written_answers_503(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = unreachable_database(backend, dir.path());
    let not_a_directory = dir.path().join("not-a-directory");
    std::fs::write(&not_a_directory, b"").unwrap();
    let app = spawn(with_spool(test_settings(&url), &not_a_directory)).await;

    let response = app.notify(fixture("samples/01-completed-human.json")).await;

    assert_eq!(response.headers()["retry-after"], "5");
    assert_problem(response, 503).await;
    let readyz = app.get("/readyz").await;
    assert_eq!(readyz.status(), 503);
    let metrics = scrape(&app).await;
    let unwritable = r#"source="kore",reason="unwritable""#;
    let failures = sample(&metrics, "calltrail_spool_write_failures_total", unwritable);
    assert_eq!(failures, Some(1.0));
    app.stop().await;
}

/// With each store's default (the spool on for PostgreSQL, off for SQLite), notifications
/// sent while calltrail is still starting are all taken, and all end up stored.
async fn the_startup_window_refuses_nothing(backend: Backend) {
    let Some(db) = fresh_db(backend, "the_startup_window_refuses_nothing").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&db.url);
    settings.spool.enabled = None;
    settings.spool.path = dir.path().join("spool.db");
    let app = spawn(settings).await;

    let mut sends = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (client, url) = (app.client.clone(), app.url("/notify"));
        let body = format!(r#"{{"conversationId":"startup-{n}","status":"answered"}}"#);
        sends.spawn(async move { client.post(url).body(body).send().await.unwrap().status() });
    }
    let statuses: Vec<u16> = sends.join_all().await.iter().map(|s| s.as_u16()).collect();
    wait_drained(&app).await;
    let page: Value = app.get("/v1/deliveries").await.json().await.unwrap();

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(page["data"].as_array().unwrap().len(), 20);
    app.stop().await;
}

/// Every delivery of `conversation_id`, oldest first: its result, its body's `duration`.
async fn durations(app: &TestApp, conversation_id: &str) -> Vec<(String, i64)> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/deliveries?conversation_id={conversation_id}&limit=500{cursor}");
        let page: Value = app.get(&path).await.json().await.unwrap();
        for d in page["data"].as_array().unwrap() {
            let result = d["result"].as_str().unwrap().to_owned();
            all.push((
                d["id"].as_i64().unwrap(),
                result,
                d["body"]["duration"].as_i64().unwrap(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    all.sort_by_key(|(id, _, _)| *id);
    all.into_iter().map(|(_, result, n)| (result, n)).collect()
}

#[tokio::test]
async fn under_steady_traffic_the_spool_empties_and_intake_returns_to_the_database() {
    let name = "under_steady_traffic_the_spool_empties";
    let Some(db) = fresh_db(Backend::Postgres, name).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut url = url_parts(&db.url);
    let mut proxy = Proxy::start(url.addr).await;
    url.addr = proxy.listen;
    let app = std::sync::Arc::new(
        spawn_ready(with_spool(test_settings(&url.to_string()), dir.path())).await,
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each sender posts one call's notifications one after the other, without pause.
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = format!(
                        r#"{{"conversationId":"steady-{sender}","status":"completed","reasonCode":"caller-disconnected","reason":"200 OK","duration":{n}}}"#
                    );
                    let response = app.notify(body).await;
                    let status = response.status().as_u16();
                    let receipt: Value = response.json().await.unwrap();
                    answers.push((status, receipt["result"].as_str().map(str::to_owned)));
                    n += 1;
                }
                answers
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ready_during: Value = app.get("/readyz").await.json().await.unwrap();
    proxy.restore().await;
    let drained = wait_drained(&app).await;
    let still_sending = senders.iter().all(|s| !s.is_finished());
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = Vec::new();
    for sender in senders {
        sent.push(sender.await.unwrap());
    }
    let ready_after: Value = app.get("/readyz").await.json().await.unwrap();
    let mut stored = Vec::new();
    for sender in 0..sent.len() {
        stored.push(durations(&app, &format!("steady-{sender}")).await);
    }

    assert_eq!(ready_during["accepting"], "spool");
    assert!(
        still_sending,
        "the spool emptied while the senders were sending"
    );
    assert_eq!(drained["accepting"], "database");
    assert_eq!(drained["spool"]["depth"], 0);
    assert_eq!(ready_after["spool"]["depth"], 0);
    for (answers, stored) in sent.iter().zip(&stored) {
        let spooled = answers
            .iter()
            .filter(|(_, r)| r.as_deref() == Some("spooled"));
        assert!(spooled.count() > 0, "some were spooled");
        assert!(
            answers.iter().all(|(status, _)| *status == 200),
            "{answers:?}"
        );
        let expected: Vec<(String, i64)> = (0..answers.len() as i64)
            .map(|n| ("accepted".to_owned(), n))
            .collect();
        assert_eq!(stored, &expected, "each stored once, in the order sent");
    }
}
