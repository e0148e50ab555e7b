//! `GET /metrics`: the counters a Prometheus scrape sees move with what calltrail answered,
//! no secret or caller data shows in them, they are protected like `/v1`, and `promtool`
//! accepts the output.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::{TestApp, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const TOKEN: &str = "n0tify-t0ken";
const WRONG_TOKEN: &str = "wr0ng-t0ken";
const KEY: &str = "api-k3y";

/// The scrape, with the API key.
async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The value of the sample `name{labels}`, if the scrape has it.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == series).then(|| value.parse().unwrap())
    })
}

fn notifications(text: &str, result: &str) -> f64 {
    let labels = format!(r#"source="kore",result="{result}""#);
    sample(text, "calltrail_notifications_total", &labels).unwrap_or(0.0)
}

async fn counters_move_with_each_result(backend: Backend) {
    let Some(db) = fresh_db(backend, "counters_move_with_each_result").await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.notify.tokens = vec![TOKEN.into()];
    settings.api.keys = vec![KEY.into()];
    let app = spawn_ready(settings).await;
    let before = scrape(&app).await;
    assert_eq!(notifications(&before, "accepted"), 0.0);
    let sample_body = fixture("samples/01-completed-human.json");
    let notify = format!("/notify/{TOKEN}");

    let answers = [
        app.post(&notify, sample_body.clone()).await.status(),
        app.post(&notify, sample_body.clone()).await.status(),
        app.post(&notify, "{not json").await.status(),
        app.post(&notify, r#"{"status":"answered"}"#).await.status(),
        app.post(&format!("/notify/{WRONG_TOKEN}"), sample_body)
            .await
            .status(),
    ];

    assert_eq!(answers.map(|s| s.as_u16()), [200, 200, 400, 422, 401]);
    let text = scrape(&app).await;
    assert_eq!(notifications(&text, "accepted"), 1.0, "{text}");
    assert_eq!(notifications(&text, "duplicate"), 1.0);
    assert_eq!(notifications(&text, "rejected"), 2.0);
    assert_eq!(notifications(&text, "unauthorized"), 1.0);
    // The four stored bodies were timed and committed one batch each; the turned-away one
    // never reached the store.
    let ingest = sample(
        &text,
        "calltrail_ingest_duration_seconds_count",
        r#"source="kore""#,
    );
    assert_eq!(ingest, Some(4.0));
    let commits = sample(
        &text,
        "calltrail_writer_commits_total",
        r#"result="committed""#,
    );
    assert_eq!(commits, Some(4.0));
    assert_eq!(
        sample(&text, "calltrail_ingest_batch_size_sum", ""),
        Some(4.0)
    );
    // Requests are counted by their route's template, never by the path that holds a token.
    let route = |status: &str| {
        let labels = format!(r#"route="/notify/{{token}}",method="POST",status="{status}""#);
        sample(&text, "calltrail_http_requests_total", &labels)
    };
    assert_eq!(route("2xx"), Some(2.0));
    assert_eq!(route("4xx"), Some(3.0));
    for secret in [TOKEN, WRONG_TOKEN, KEY, "29e2d933"] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    app.stop().await;
}

both_stores!(counters_move_with_each_result);

fn calls_ended(text: &str, source: &str, outcome: &str) -> f64 {
    let labels = format!(r#"source="{source}",outcome="{outcome}""#);
    sample(text, "calltrail_calls_ended_total", &labels).unwrap_or(0.0)
}

async fn each_call_is_counted_once_when_it_ends(backend: Backend) {
    let Some(db) = fresh_db(backend, "each_call_is_counted_once").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let ringing = r#"{"conversationId":"ended-1","status":"answered","callconnecttime":"5/8/2023,11:32:49AM"}"#;
    let completed = r#"{"conversationId":"ended-1","status":"completed","duration":14,"machinedetection":"amd_human_detected","callconnecttime":"5/8/2023,11:32:49AM","callDisconnectTime":"5/8/2023,11:33:03AM"}"#;
    let late_amd = r#"{"conversationId":"ended-1","status":"completed","duration":14,"machinedetection":"amd_machine_detected","callconnecttime":"5/8/2023,11:32:49AM","callDisconnectTime":"5/8/2023,11:33:04AM"}"#;

    assert_eq!(app.post("/notify", ringing).await.status(), 200);
    let text = scrape(&app).await;
    assert!(!text.contains("calltrail_calls_ended_total{"), "{text}");
    assert_eq!(app.post("/notify", completed).await.status(), 200);
    let busy = fixture("samples/05-failed-486-busy.json");
    assert_eq!(app.post("/notify", busy).await.status(), 200);
    let text = scrape(&app).await;
    assert_eq!(calls_ended(&text, "kore", "human"), 1.0, "{text}");
    assert_eq!(calls_ended(&text, "kore", "busy"), 1.0, "{text}");

    // A duplicate, and a later terminal event that changes the call's outcome, end nothing.
    assert_eq!(app.post("/notify", completed).await.status(), 200);
    assert_eq!(app.post("/notify", late_amd).await.status(), 200);
    let call = app.call_json("ended-1").await;
    assert_eq!(call["outcome"], "machine");
    let text = scrape(&app).await;
    assert_eq!(calls_ended(&text, "kore", "human"), 1.0, "{text}");
    assert_eq!(calls_ended(&text, "kore", "busy"), 1.0);
    assert_eq!(calls_ended(&text, "kore", "machine"), 0.0);
    app.stop().await;
}

both_stores!(each_call_is_counted_once_when_it_ends);

async fn every_source_and_bad_signature_is_counted(backend: Backend) {
    let Some(db) = fresh_db(backend, "every_source_is_counted").await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.api.keys = vec![KEY.into()];
    settings.jambonz.signing_secrets = vec![calltrail::dialout::Secret::new("jamb0nz-s3cret")];
    let app = spawn_ready(settings).await;
    let twilio = app
        .client
        .post(app.url("/twilio/notify"))
        .body(fixture("twilio/05-busy.form"))
        .send()
        .await
        .unwrap();
    assert_eq!(twilio.status(), 200);
    let unsigned = app
        .client
        .post(app.url("/jambonz/notify"))
        .header("jambonz-signature", "t=1,v1=00")
        .body(fixture("jambonz/06-busy.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let text = scrape(&app).await;
    let count = |source: &str, result: &str| {
        let labels = format!(r#"source="{source}",result="{result}""#);
        sample(&text, "calltrail_notifications_total", &labels).unwrap_or(0.0)
    };
    assert_eq!(count("twilio", "accepted"), 1.0, "{text}");
    assert_eq!(count("jambonz", "bad_signature"), 1.0, "{text}");
    assert_eq!(count("jambonz", "accepted"), 0.0);
    assert_eq!(calls_ended(&text, "twilio", "busy"), 1.0);
    assert!(!text.contains("jamb0nz-s3cret"));
    app.stop().await;
}

both_stores!(every_source_and_bad_signature_is_counted);

#[tokio::test]
async fn metrics_need_the_api_key_unless_public() {
    let db = fresh_db(Backend::Sqlite, "metrics_need_the_api_key")
        .await
        .unwrap();
    let mut settings = test_settings(&db.url);
    settings.api.keys = vec![KEY.into()];
    let protected = spawn_ready(settings.clone()).await;
    settings.metrics.public = true;
    let public = spawn_ready(settings).await;

    let without_key = protected.get("/metrics").await;
    let wrong_key = protected
        .client
        .get(protected.url("/metrics"))
        .header("x-api-key", "not-the-key")
        .send()
        .await
        .unwrap();
    let open = public.get("/metrics").await;

    assert_eq!(without_key.status(), 401);
    assert_eq!(wrong_key.status(), 401);
    assert!(scrape(&protected).await.contains("calltrail_build_info"));
    assert_eq!(open.status(), 200);
    assert!(open.text().await.unwrap().contains("calltrail_build_info"));
    protected.stop().await;
    public.stop().await;
}

#[tokio::test]
async fn metrics_bind_serves_metrics_on_its_own_address_only() {
    let db = fresh_db(Backend::Sqlite, "metrics_bind").await.unwrap();
    let mut settings = test_settings(&db.url);
    settings.api.keys = vec![KEY.into()];
    settings.metrics.bind = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn_ready(settings).await;
    let metrics_url = format!("{}/metrics", app.metrics_address.as_deref().unwrap());
    let get = |key: Option<&str>| {
        let mut request = app.client.get(&metrics_url);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };

    let on_main = app
        .client
        .get(app.url("/metrics"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let without_key = get(None).await.unwrap();
    let with_key = get(Some(KEY)).await.unwrap();

    assert_eq!(on_main.status(), 404);
    assert_eq!(without_key.status(), 401);
    assert_eq!(with_key.status(), 200);
    assert!(
        with_key
            .text()
            .await
            .unwrap()
            .contains("calltrail_build_info")
    );
    app.stop().await;
}

/// Runs `promtool check metrics` when it is installed; CI sets `CALLTRAIL_REQUIRE_PROMTOOL=1`
/// so that a missing `promtool` fails there instead of skipping.
#[tokio::test]
async fn the_output_passes_promtool_check_metrics() {
    let required = std::env::var("CALLTRAIL_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
    let installed = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(!required, "promtool is not installed");
        eprintln!("skipped: promtool is not installed");
        return;
    }
    let db = fresh_db(Backend::Sqlite, "promtool").await.unwrap();
    let mut settings = test_settings(&db.url);
    settings.notify.tokens = vec![TOKEN.into()];
    settings.notify.max_body_bytes = 4096;
    settings.api.keys = vec![KEY.into()];
    let app = spawn_ready(settings).await;
    // A little of every kind of answer, so that every family has samples.
    let notify = format!("/notify/{TOKEN}");
    app.post(&notify, fixture("samples/01-completed-human.json"))
        .await;
    app.post(&notify, fixture("samples/01-completed-human.json"))
        .await;
    app.post(&notify, "[]").await;
    app.post(&notify, "x".repeat(5000)).await;
    app.post("/notify", "{}").await;
    app.get("/no/such/route").await;
    let text = scrape(&app).await;

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    let checked = promtool.wait_with_output().unwrap();

    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(text.contains(r#"result="too_large""#), "{text}");
    app.stop().await;
}
