//! The simulator on its own: the `auth` JWT, the seed's rules on the wire, and the load
//! generator against calltrail.

use std::time::Duration;

use calltrail::dialout::{Secret, jwt};
use calltrail::sim::faults::Faults;
use calltrail::sim::load::{self, LoadSettings};
use calltrail::sim::outcome::Weights;
use chrono::Utc;
use serde_json::{Value, json};

use crate::dialouts::{BOT_ID, CLIENT_ID, CLIENT_SECRET, Sim};
use crate::helpers::{fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

fn v1(sim: &Sim) -> String {
    format!(
        "{}/api/1.1/public/bot/{BOT_ID}/smartassist/dialout",
        sim.base_url()
    )
}

async fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).json(body);
    if let Some(token) = token {
        request = request.header("auth", token);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_simulator_verifies_the_jwt() {
    let sim = Sim::start(|_| {}).await;
    let body = json!({"target": "tel:911234567890", "caller": "+127061657882"});
    let good = jwt::sign(CLIENT_ID, &Secret::new(CLIENT_SECRET), Utc::now()).unwrap();
    let wrong_secret = jwt::sign(CLIENT_ID, &Secret::new("guess"), Utc::now()).unwrap();
    let wrong_app = jwt::sign("someone-else", &Secret::new(CLIENT_SECRET), Utc::now()).unwrap();
    let expired = jwt::sign(
        CLIENT_ID,
        &Secret::new(CLIENT_SECRET),
        Utc::now() - chrono::TimeDelta::hours(2),
    )
    .unwrap();

    for token in [
        None,
        Some(wrong_secret.as_str()),
        Some(wrong_app.as_str()),
        Some(expired.as_str()),
        Some("x.y.z"),
    ] {
        let (status, _) = post(&v1(&sim), token, &body).await;
        assert_eq!(status, 401, "{token:?}");
    }
    let (status, answer) = post(&v1(&sim), Some(&good), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["sid"].is_string() && answer["callId"].is_string(),
        "{answer}"
    );
    let (status, _) = post(&v1(&sim).replace(BOT_ID, "st-other"), Some(&good), &body).await;
    assert_eq!(status, 404, "another bot");
    let v2 = format!("{}/api/1.1/public/V2/smartassist/dialout", sim.base_url());
    let (status, _) = post(&v2, Some(&good), &body).await;
    assert_eq!(status, 400, "v2 needs botId in the body");
    let (status, _) = post(
        &v2,
        Some(&good),
        &json!({"botId": BOT_ID, "target": "tel:1", "caller": "2"}),
    )
    .await;
    assert_eq!(status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn the_simulator_checks_each_rule_of_the_seed() {
    let sim = Sim::start(|_| {}).await;
    let token = jwt::sign(CLIENT_ID, &Secret::new(CLIENT_SECRET), Utc::now()).unwrap();
    let ok = json!({"target": "tel:+911234567890", "caller": "+127061657882"});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let cases = [
        (json!({"caller": "1"}), "target"),
        (with("target", json!("911234567890")), "target"),
        (with("target", json!("sip:nobody")), "target"),
        (json!({"target": "tel:1"}), "caller"),
        (with("machineDetection", json!("maybe")), "machineDetection"),
        (with("thresholdWordCount", json!(-2)), "thresholdWordCount"),
        (
            with("timers", json!({"noSpeechTimeoutMs": 0})),
            "timers.noSpeechTimeoutMs",
        ),
        (
            with("timers", json!({"decisionTimeoutMs": "15000"})),
            "timers.decisionTimeoutMs",
        ),
        (with("notifyurl", json!("not a url")), "notifyurl"),
        (with("metadata", json!([])), "metadata"),
    ];
    for (body, field) in cases {
        let (status, answer) = post(&v1(&sim), Some(&token), &body).await;
        assert_eq!(status, 400, "{body}");
        let message = answer["errors"][0]["msg"].as_str().unwrap();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    assert_eq!(sim.handle.accepted().len(), 0);
    sim.stop().await;
}

/// What a notification receiver answered, the token header it got, and the body.
type Received = (u16, Option<String>, Value);

#[tokio::test]
async fn the_simulator_sends_notify_headers_and_retries_failed_deliveries() {
    use axum::routing::post as route_post;
    use std::sync::{Arc, Mutex};
    // A receiver that answers 503 twice, then 200, and records what it got.
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let record = received.clone();
    let handler = move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
        let record = record.clone();
        async move {
            let mut record = record.lock().unwrap();
            let status = if record.len() < 2 { 503 } else { 200 };
            let token = headers
                .get("x-calltrail-token")
                .map(|v| v.to_str().unwrap().to_owned());
            record.push((status, token, body));
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/notify", route_post(handler)),
        )
        .await
    });
    let sim = Sim::start(|_| {}).await;
    let token = jwt::sign(CLIENT_ID, &Secret::new(CLIENT_SECRET), Utc::now()).unwrap();
    let body = json!({"target": "tel:1", "caller": "2", "notifyurl": notify, "machineDetection": "disconnect",
        "notifyHeaders": {"X-Calltrail-Token": "s3cret"}, "metadata": {"sim_outcome": "busy"}});

    let (status, answer) = post(&v1(&sim), Some(&token), &body).await;
    assert_eq!(status, 200);
    sim.wait_idle().await;

    let received = received.lock().unwrap().clone();
    let statuses: Vec<u16> = received.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert!(
        received
            .iter()
            .all(|(_, token, _)| token.as_deref() == Some("s3cret"))
    );
    let sent = &received[2].2;
    assert_eq!(sent["conversationId"], answer["callId"]);
    assert_eq!(sent["status"], "failed");
    assert_eq!(sent["reason"], "486 Busy Here");
    assert_eq!(sent["machinedetection"], "disconnect");
    let entry = &sim.entries()[0];
    assert_eq!(entry["outcome"], "busy");
    assert_eq!(entry["forced"], true);
    assert_eq!(entry["deliveries"][0]["statuses"], json!([503, 503, 200]));
    sim.stop().await;
}

async fn the_load_generator_reports_rate_latency_and_errors(backend: Backend) {
    let Some(db) = fresh_db(
        backend,
        "the_load_generator_reports_rate_latency_and_errors",
    )
    .await
    else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let settings = LoadSettings {
        target: app.url("/notify"),
        rate: 100.0,
        duration: Duration::from_secs(1),
        concurrency: 4,
        headers: Vec::new(),
        weights: Weights::default(),
        timezone: chrono_tz::UTC,
        date_order: calltrail::notification::DateOrder::Mdy,
        faults: Faults {
            duplicates: 0.1,
            reorder: 0.3,
            key_variants: 0.1,
            ..Faults::default()
        },
        seed: Some(1),
        source: calltrail::notification::Format::Kore,
        signing_secret: None,
    };

    let report = load::run(&settings).await.unwrap();

    assert_eq!(report.scheduled, 100);
    assert_eq!(report.completed, 100);
    assert_eq!(report.ok, 100, "{report}");
    assert_eq!(report.error_count(), 0);
    // The rate achieved depends on the machine; what the report must get right is its
    // arithmetic, and the pacing: the 100th request is not due before 0.99 s.
    assert!(report.elapsed_s >= 0.98, "{report}");
    assert!(
        (report.achieved_rate - report.completed as f64 / report.elapsed_s).abs() < 1e-9,
        "{report}"
    );
    let latency = report.latency.unwrap();
    assert!(
        latency.p50_ms <= latency.p95_ms
            && latency.p95_ms <= latency.p99_ms
            && latency.p99_ms <= latency.max_ms
    );
    let deliveries: Value = app
        .get("/v1/deliveries?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        deliveries["data"].as_array().unwrap().len(),
        100,
        "every request was stored"
    );
    // Against a wrong path, every request is an error, counted by status.
    let wrong = LoadSettings {
        target: app.url("/nowhere"),
        duration: Duration::from_millis(200),
        ..settings
    };
    let report = load::run(&wrong).await.unwrap();
    assert_eq!(report.errors.get("404").copied(), Some(report.scheduled));
    app.stop().await;
}

both_stores!(the_load_generator_reports_rate_latency_and_errors);

/// The load generator plays jambonz and Twilio too, signed: calltrail, with the sources'
/// secrets set, accepts every body and folds every call.
async fn the_load_generator_plays_every_source_signed(backend: Backend) {
    use calltrail::dialout::Secret;
    use calltrail::notification::Format;

    let Some(db) = fresh_db(backend, "the_load_generator_plays_every_source_signed").await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.notify.signing_secrets = vec![Secret::new("k")];
    settings.jambonz.signing_secrets = vec![Secret::new("j")];
    settings.twilio.auth_tokens = vec![Secret::new("t")];
    let app = spawn_ready(settings).await;
    // Twilio signs the URL it calls: without twilio.public_url, http:// and the Host.
    for (source, path, secret) in [
        (Format::Kore, "/notify", "k"),
        (Format::Jambonz, "/jambonz/notify", "j"),
        (Format::Twilio, "/twilio/notify", "t"),
    ] {
        let load = LoadSettings {
            target: app.url(path),
            rate: 60.0,
            duration: Duration::from_secs(1),
            concurrency: 4,
            headers: Vec::new(),
            weights: Weights::default(),
            timezone: chrono_tz::UTC,
            date_order: calltrail::notification::DateOrder::Mdy,
            faults: Faults {
                duplicates: 0.1,
                reorder: 0.3,
                ..Faults::default()
            },
            seed: Some(3),
            source,
            signing_secret: Some(secret.to_owned()),
        };
        let report = load::run(&load).await.unwrap();
        assert_eq!(
            (report.ok, report.error_count()),
            (60, 0),
            "{source:?}: {report}"
        );

        let unsigned = LoadSettings {
            signing_secret: None,
            duration: Duration::from_millis(100),
            rate: 20.0,
            ..load
        };
        let report = load::run(&unsigned).await.unwrap();
        assert_eq!(
            report.errors.get("401").copied(),
            Some(report.scheduled),
            "{source:?}"
        );
    }
    let calls: Value = app.get("/v1/calls?limit=1000").await.json().await.unwrap();
    let calls = calls["data"].as_array().unwrap();
    assert!(calls.len() > 30, "{}", calls.len());
    assert!(calls.iter().any(|c| c["state"] == "completed"));
    assert!(calls.iter().any(|c| c["outcome"] == "busy"));
    app.stop().await;
}

both_stores!(the_load_generator_plays_every_source_signed);
