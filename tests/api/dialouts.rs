//! `POST /v1/dialouts`, `GET /v1/dialouts[/{id}]` and the dial-out on the call record, with
//! the simulator as the voice gateway, everything on 127.0.0.1.

use std::time::Duration;

use calltrail::config::Settings;
use calltrail::dialout::{ApiVersion, Secret};
use calltrail::sim::{SimHandle, SimSettings, Simulator};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::helpers::{TestApp, assert_problem, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

pub const CLIENT_ID: &str = "cs-test-client";
pub const CLIENT_SECRET: &str = "cs-test-5ecret";
pub const BOT_ID: &str = "st-e38782ff-0d89-52e9-5678769a49fdexxxx";
pub const TOKEN: &str = "n0tify-t0ken";

/// A running simulator.
pub struct Sim {
    pub handle: SimHandle,
    pub port: u16,
    pub log: tempfile::NamedTempFile,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Sim {
    /// Starts a simulator on a random loopback port, fast (speed 1000) and logging to a
    /// temporary file; `tweak` adjusts its settings.
    pub async fn start(tweak: impl FnOnce(&mut SimSettings)) -> Sim {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut settings = SimSettings {
            bind: "127.0.0.1:0".parse().unwrap(),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            bot_id: Some(BOT_ID.into()),
            speed: 1000.0,
            log: Some(log.path().to_owned()),
            seed: Some(42),
            ..SimSettings::default()
        };
        settings.faults.retry_backoff = Duration::from_millis(20);
        tweak(&mut settings);
        let simulator = Simulator::bind(settings)
            .await
            .expect("the simulator binds");
        let (port, handle) = (simulator.port(), simulator.handle());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(simulator.run_until(
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(10),
        ));
        Sim {
            handle,
            port,
            log,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until every accepted call has been played.
    pub async fn wait_idle(&self) {
        assert!(
            self.handle.wait_idle(Duration::from_secs(60)).await,
            "calls still playing"
        );
    }

    /// The log's entries, one per played call.
    pub fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log.path())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `settings` with dial-outs through the gateway at `base_url`, a notification token, and
/// quick retries.
pub fn with_gateway(mut settings: Settings, base_url: &str) -> Settings {
    settings.notify.tokens = vec![TOKEN.into()];
    let dialout = &mut settings.dialout;
    dialout.base_url = base_url.into();
    dialout.bot_id = BOT_ID.into();
    dialout.client_id = CLIENT_ID.into();
    dialout.client_secret = Secret::new(CLIENT_SECRET);
    dialout.timeout_ms = 5_000;
    dialout.retries = 2;
    dialout.retry_backoff_ms = 10;
    settings
}

/// Posts a dial-out, with an idempotency key when given.
pub async fn dial(app: &TestApp, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = app.client.post(app.url("/v1/dialouts")).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.expect("POST /v1/dialouts sent")
}

/// Asserts that `body` is what the served OpenAPI document's schema `name` describes.
pub async fn assert_documented(app: &TestApp, name: &str, body: &Value) {
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let schema = json!({"$ref": format!("#/components/schemas/{name}"), "components": document["components"]});
    let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{body}");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn placing_a_dialout_stores_it_and_sends_the_seeds_wire_body(backend: Backend) {
    let Some(db) = fresh_db(
        backend,
        "placing_a_dialout_stores_it_and_sends_the_seeds_wire_body",
    )
    .await
    else {
        return;
    };
    let sim = Sim::start(|_| {}).await;
    let app = spawn_ready(with_gateway(test_settings(&db.url), &sim.base_url())).await;
    let body = json!({"target": "tel:911234567890", "caller": "+127061657882", "trunk": "TRUNK",
        "machine_detection": "detect", "threshold_word_count": 4, "timers": {"no_speech_timeout_ms": 12000},
        "metadata": {"campaign": "spring", "userName": "John Doe", "sim_outcome": "human"}});

    let response = dial(&app, &body, None).await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let placed: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/v1/dialouts/{}", placed["id"]));
    assert_eq!(placed["state"], "placed");
    assert_eq!(placed["target"], "tel:911234567890");
    assert_eq!(placed["caller"], "+127061657882");
    assert_eq!(placed["machine_detection"], "detect");
    assert_eq!(
        placed["timers"],
        json!({"no_speech_timeout_ms": 12000, "decision_timeout_ms": 15000,
        "tone_timeout_ms": 20000, "greeting_completion_timeout_ms": 2000})
    );
    assert_eq!(placed["attempts"], 1);
    assert_eq!(placed["gateway_status"], 200);
    assert!(placed["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(placed["call_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(placed["requested_at"].is_string() && placed["completed_at"].is_string());
    let stored: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(stored, placed);
    assert_documented(&app, "Dialout", &placed).await;
    // The gateway got the seed's wire names, and calltrail's own notify URL with its token.
    let sent = sim.handle.accepted();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["notifyurl"], app.url(&format!("/notify/{TOKEN}")));
    assert_eq!(sent[0]["machineDetection"], "detect");
    assert_eq!(sent[0]["thresholdWordCount"], 4);
    assert_eq!(sent[0]["timers"]["noSpeechTimeoutMs"], 12000);
    assert_eq!(sent[0]["trunk"], "TRUNK");
    assert_eq!(sent[0]["metadata"]["campaign"], "spring");
    assert!(sent[0].get("machine_detection").is_none() && sent[0].get("botId").is_none());
    // The call comes back to calltrail and carries its dial-out.
    sim.wait_idle().await;
    let call = app.call_json(placed["call_id"].as_str().unwrap()).await;
    assert_eq!(call["outcome"], "human");
    assert_eq!(
        call["dialout"],
        json!({"id": placed["id"], "target": "tel:911234567890", "caller": "+127061657882",
            "metadata": body["metadata"], "requested_at": placed["requested_at"]})
    );
    assert_documented(&app, "CallDetail", &call).await;
    let listed: Value = app.get("/v1/dialouts").await.json().await.unwrap();
    assert_documented(&app, "DialoutPage", &listed).await;
    app.stop().await;
    sim.stop().await;
}

both_stores!(placing_a_dialout_stores_it_and_sends_the_seeds_wire_body);

async fn the_v2_api_takes_the_bot_id_in_the_body(backend: Backend) {
    let Some(db) = fresh_db(backend, "the_v2_api_takes_the_bot_id_in_the_body").await else {
        return;
    };
    let sim = Sim::start(|_| {}).await;
    let mut settings = with_gateway(test_settings(&db.url), &sim.base_url());
    settings.dialout.api_version = ApiVersion::V2;
    let app = spawn_ready(settings).await;

    let response = dial(
        &app,
        &json!({"target": "sip:1234567890@1.23.345.678:1234", "caller": "100"}),
        None,
    )
    .await;

    assert_eq!(response.status(), 201);
    assert_eq!(sim.handle.accepted()[0]["botId"], BOT_ID);
    app.stop().await;
    sim.stop().await;
}

both_stores!(the_v2_api_takes_the_bot_id_in_the_body);

async fn invalid_dialouts_are_refused_naming_each_field_and_never_sent(backend: Backend) {
    let name = "invalid_dialouts_are_refused_naming_each_field_and_never_sent";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let sim = Sim::start(|_| {}).await;
    let app = spawn_ready(with_gateway(test_settings(&db.url), &sim.base_url())).await;
    let ok = json!({"target": "tel:+911234567890", "caller": "+127061657882"});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    // One case per parameter rule of the seed.
    let cases = [
        (json!({"caller": "1"}), "target"),
        (with("target", json!("911234567890")), "target"),
        (with("target", json!("tel:91-123")), "target"),
        (with("target", json!("sip:1234567890")), "target"),
        (with("target", json!("sip:1234@host:99999")), "target"),
        (json!({"target": "tel:1"}), "caller"),
        (with("caller", json!("  ")), "caller"),
        (with("trunk", json!(7)), "trunk"),
        (with("metadata", json!(["a"])), "metadata"),
        (
            with("machine_detection", json!("sometimes")),
            "machine_detection",
        ),
        (
            with("threshold_word_count", json!(0)),
            "threshold_word_count",
        ),
        (
            with("threshold_word_count", json!(2.5)),
            "threshold_word_count",
        ),
        (
            with("timers", json!({"no_speech_timeout_ms": 0})),
            "timers.no_speech_timeout_ms",
        ),
        (
            with("timers", json!({"decision_timeout_ms": -1})),
            "timers.decision_timeout_ms",
        ),
        (
            with("timers", json!({"tone_timeout_ms": "20000"})),
            "timers.tone_timeout_ms",
        ),
        (
            with("timers", json!({"greeting_completion_timeout_ms": 1.5})),
            "timers.greeting_completion_timeout_ms",
        ),
        (
            with("timers", json!({"toneTimeoutMs": 5})),
            "timers.toneTimeoutMs",
        ),
        (with("timers", json!(100)), "timers"),
        (with("notifyurl", json!("https://elsewhere")), "notifyurl"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(dial(&app, &body, None).await, 422).await;
        assert_eq!(
            problem["type"], "urn:calltrail:problem:invalid-dialout",
            "{body}"
        );
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{problem}"
        );
    }
    // Several faults at once: each named.
    let problem = assert_problem(
        dial(&app, &json!({"target": "x", "machine_detection": 1}), None).await,
        422,
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["target", "caller", "machine_detection"]);
    // Not JSON: 400.
    let response = app
        .client
        .post(app.url("/v1/dialouts"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400).await;
    assert_eq!(sim.handle.requests(), 0, "nothing reached the gateway");
    let listed: Value = app.get("/v1/dialouts").await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]), "nothing stored");
    app.stop().await;
    sim.stop().await;
}

both_stores!(invalid_dialouts_are_refused_naming_each_field_and_never_sent);

async fn a_gateway_that_is_down_fails_the_dialout_after_bounded_retries(backend: Backend) {
    let name = "a_gateway_that_is_down_fails_the_dialout_after_bounded_retries";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let down = format!("http://127.0.0.1:{}", closed_port());
    let app = spawn_ready(with_gateway(test_settings(&db.url), &down)).await;

    let problem = assert_problem(
        dial(&app, &json!({"target": "tel:1", "caller": "2"}), None).await,
        502,
    )
    .await;

    assert_eq!(problem["type"], "urn:calltrail:problem:gateway-failed");
    assert!(problem.get("gateway_status").is_none(), "{problem}");
    let stored: Value = app
        .get(&format!("/v1/dialouts/{}", problem["dialout_id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["state"], "failed");
    assert_eq!(stored["attempts"], 3, "the first try and two retries");
    assert_eq!(stored["gateway_status"], Value::Null);
    assert!(
        stored["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the gateway"),
        "{stored}"
    );
    assert_eq!(stored["sid"], Value::Null);
    app.stop().await;
}

both_stores!(a_gateway_that_is_down_fails_the_dialout_after_bounded_retries);

async fn a_gateway_500_is_retried_until_it_answers_200(backend: Backend) {
    let Some(db) = fresh_db(backend, "a_gateway_500_is_retried_until_it_answers_200").await else {
        return;
    };
    let sim = Sim::start(|s| s.fail_first_dialouts = 1).await;
    let app = spawn_ready(with_gateway(test_settings(&db.url), &sim.base_url())).await;

    let response = dial(&app, &json!({"target": "tel:1", "caller": "2"}), None).await;

    assert_eq!(response.status(), 201);
    let placed: Value = response.json().await.unwrap();
    assert_eq!(placed["state"], "placed");
    assert_eq!(placed["attempts"], 2);
    assert_eq!(sim.handle.requests(), 2);
    app.stop().await;
    sim.stop().await;
}

both_stores!(a_gateway_500_is_retried_until_it_answers_200);

async fn a_gateway_401_is_not_retried(backend: Backend) {
    let Some(db) = fresh_db(backend, "a_gateway_401_is_not_retried").await else {
        return;
    };
    let sim = Sim::start(|_| {}).await;
    let mut settings = with_gateway(test_settings(&db.url), &sim.base_url());
    settings.dialout.client_secret = Secret::new("not-the-secret");
    let app = spawn_ready(settings).await;

    let problem = assert_problem(
        dial(&app, &json!({"target": "tel:1", "caller": "2"}), None).await,
        502,
    )
    .await;

    assert_eq!(problem["gateway_status"], 401);
    assert_eq!(sim.handle.requests(), 1, "a 4xx is not retried");
    let stored: Value = app
        .get(&format!("/v1/dialouts/{}", problem["dialout_id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["state"], "failed");
    assert_eq!(stored["attempts"], 1);
    assert_eq!(stored["gateway_status"], 401);
    assert!(
        stored["gateway_body"].as_str().unwrap().contains("invalid"),
        "{stored}"
    );
    app.stop().await;
    sim.stop().await;
}

both_stores!(a_gateway_401_is_not_retried);

async fn an_idempotency_key_dials_once_under_concurrent_retries(backend: Backend) {
    let name = "an_idempotency_key_dials_once_under_concurrent_retries";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    // The gateway fails once, so the first request is still in flight while the others arrive.
    let sim = Sim::start(|s| s.fail_first_dialouts = 1).await;
    let mut settings = with_gateway(test_settings(&db.url), &sim.base_url());
    settings.dialout.retry_backoff_ms = 300;
    let app = spawn_ready(settings).await;
    let body =
        json!({"target": "tel:911234567890", "caller": "+127061657882", "metadata": {"n": 1}});

    let requests = (0..8).map(|_| dial(&app, &body, Some("order-4711")));
    let responses = futures_join_all(requests).await;

    let mut ids = Vec::new();
    let mut replayed = 0;
    for response in responses {
        assert_eq!(response.status(), 201);
        replayed += usize::from(response.headers().get("idempotent-replayed").is_some());
        let placed: Value = response.json().await.unwrap();
        ids.push(placed["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(replayed, 7);
    assert_eq!(sim.handle.accepted().len(), 1, "dialed once");
    assert_eq!(sim.handle.requests(), 2, "one failure, one retry");
    // A later retry gets the same answer; the key with another body is refused.
    let again: Value = dial(&app, &body, Some("order-4711"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], ids[0]);
    let other =
        json!({"target": "tel:911234567890", "caller": "+127061657882", "metadata": {"n": 2}});
    let problem = assert_problem(dial(&app, &other, Some("order-4711")).await, 422).await;
    assert_eq!(
        problem["type"],
        "urn:calltrail:problem:idempotency-key-reused"
    );
    let listed: Value = app.get("/v1/dialouts").await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    app.stop().await;
    sim.stop().await;
}

both_stores!(an_idempotency_key_dials_once_under_concurrent_retries);

async fn a_failed_dialout_replays_its_502_for_the_same_key(backend: Backend) {
    let Some(db) = fresh_db(backend, "a_failed_dialout_replays_its_502_for_the_same_key").await
    else {
        return;
    };
    let down = format!("http://127.0.0.1:{}", closed_port());
    let app = spawn_ready(with_gateway(test_settings(&db.url), &down)).await;
    let body = json!({"target": "tel:1", "caller": "2"});

    let first = assert_problem(dial(&app, &body, Some("k-1")).await, 502).await;
    let second = dial(&app, &body, Some("k-1")).await;

    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second = assert_problem(second, 502).await;
    assert_eq!(second["dialout_id"], first["dialout_id"]);
    let stored: Value = app
        .get(&format!("/v1/dialouts/{}", first["dialout_id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored["attempts"], 3, "the replay did not dial again");
    app.stop().await;
}

both_stores!(a_failed_dialout_replays_its_502_for_the_same_key);

async fn dialouts_are_listed_newest_first_with_filters_and_pages(backend: Backend) {
    let name = "dialouts_are_listed_newest_first_with_filters_and_pages";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let sim = Sim::start(|_| {}).await;
    let app = spawn_ready(with_gateway(test_settings(&db.url), &sim.base_url())).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = json!({"target": format!("tel:+10{i}"), "caller": if i % 2 == 0 { "+100" } else { "200" },
            "metadata": {"campaign": if i < 3 { "spring" } else { "fall" }, "tier": i}});
        let placed: Value = dial(&app, &body, None).await.json().await.unwrap();
        ids.push(placed["id"].as_i64().unwrap());
    }
    let ids_of = |page: &Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect()
    };
    let get = |query: &str| {
        let url = format!("/v1/dialouts?{query}");
        let app = &app;
        async move {
            let response = app.get(&url).await;
            assert_eq!(response.status(), 200, "{url}");
            response.json::<Value>().await.unwrap()
        }
    };

    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(ids_of(&get("").await), newest_first);
    assert_eq!(
        ids_of(&get("metadata.campaign=spring").await),
        [ids[2], ids[1], ids[0]]
    );
    assert_eq!(ids_of(&get("metadata.tier=3").await), [ids[3]]);
    assert_eq!(
        ids_of(&get("caller=%2B100").await),
        [ids[4], ids[2], ids[0]]
    );
    assert_eq!(
        ids_of(&get("target=tel:%2B101,tel:%2B104").await),
        [ids[4], ids[1]]
    );
    assert_eq!(ids_of(&get("state=failed").await), Vec::<i64>::new());
    assert_eq!(
        ids_of(&get("state=placed&metadata.campaign=fall&caller=200").await),
        [ids[3]]
    );
    // Pages of two cover all five, once each.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = get(&query).await;
        seen.extend(ids_of(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    for bad in [
        "state=ringing",
        "metadata=x",
        "limit=0",
        "cursor=zz",
        "statee=placed",
    ] {
        assert_problem(app.get(&format!("/v1/dialouts?{bad}")).await, 400).await;
    }
    assert_problem(app.get("/v1/dialouts/999999").await, 404).await;
    app.stop().await;
    sim.stop().await;
}

both_stores!(dialouts_are_listed_newest_first_with_filters_and_pages);

async fn calls_and_stats_filter_on_their_dialout(backend: Backend) {
    let Some(db) = fresh_db(backend, "calls_and_stats_filter_on_their_dialout").await else {
        return;
    };
    let sim = Sim::start(|_| {}).await;
    let app = spawn_ready(with_gateway(test_settings(&db.url), &sim.base_url())).await;
    let campaigns = [
        ("spring", "busy", "tel:+1001"),
        ("spring", "human", "tel:+1002"),
        ("fall", "busy", "tel:+1003"),
    ];
    let mut call_ids = Vec::new();
    for (campaign, outcome, target) in campaigns {
        let body = json!({"target": target, "caller": "+100", "machine_detection": "detect",
            "metadata": {"campaign": campaign, "sim_outcome": outcome}});
        let placed: Value = dial(&app, &body, None).await.json().await.unwrap();
        call_ids.push(placed["call_id"].as_str().unwrap().to_owned());
    }
    // A call calltrail did not place.
    let stray =
        json!({"conversationId": "not-ours", "status": "failed", "reason": "486 Busy Here"});
    assert_eq!(
        app.post(&format!("/notify/{TOKEN}"), stray.to_string())
            .await
            .status(),
        200
    );
    sim.wait_idle().await;
    let listed = |query: &str| {
        let url = format!("/v1/calls?{query}");
        let app = &app;
        async move {
            let page: Value = app.get(&url).await.json().await.unwrap();
            let mut ids: Vec<String> = page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["conversation_id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |ids: &[&String]| {
        let mut ids: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
        ids.sort();
        ids
    };

    assert_eq!(listed("").await.len(), 4);
    assert_eq!(
        listed("metadata.campaign=spring").await,
        sorted(&[&call_ids[0], &call_ids[1]])
    );
    assert_eq!(
        listed("metadata.campaign=spring&outcome=busy").await,
        sorted(&[&call_ids[0]])
    );
    assert_eq!(listed("target=tel:%2B1003").await, sorted(&[&call_ids[2]]));
    assert_eq!(
        listed("caller=%2B100").await.len(),
        3,
        "the stray call has no dial-out"
    );
    assert_eq!(
        listed("metadata.campaign=winter").await,
        Vec::<String>::new()
    );
    let stats: Value = app
        .get("/v1/stats?metadata.campaign=spring")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["calls"], 2);
    assert_eq!(stats["by_outcome"]["busy"], 1);
    assert_eq!(stats["by_outcome"]["human"], 1);
    let stats: Value = app
        .get("/v1/stats?caller=%2B100&outcome=busy")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["calls"], 2);
    let stray: Value = app.call_json("not-ours").await;
    assert_eq!(stray["dialout"], Value::Null);
    // The export carries the dial-out too.
    let csv = app
        .get("/v1/calls/export?metadata.campaign=fall")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("dialout_id,dialout_target,dialout_caller"),
        "{csv}"
    );
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",tel:+1003,'+100"),
        "{csv}"
    );
    app.stop().await;
    sim.stop().await;
}

both_stores!(calls_and_stats_filter_on_their_dialout);

/// Runs futures concurrently and collects their outputs in order.
pub async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs = Vec::with_capacity(set.len());
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.extend(
        results
            .into_iter()
            .map(|r| r.expect("every future finished")),
    );
    outputs
}

/// A gateway that, before answering a dial-out, sends the call's first notification and
/// looks the call up in calltrail: the notification arrives before the dial-out is recorded.
async fn early_notifying_gateway() -> (String, oneshot::Receiver<Value>) {
    use axum::routing::post;
    let (seen_tx, seen_rx) = oneshot::channel::<Value>();
    let seen_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(seen_tx)));
    let handler = move |axum::Json(body): axum::Json<Value>| {
        let seen_tx = seen_tx.clone();
        async move {
            let client = reqwest::Client::new();
            let notify_url = body["notifyurl"].as_str().unwrap().to_owned();
            let answered = json!({"conversationId": "early-call", "status": "answered",
                "callconnecttime": "5/8/2023,11:32:49AM"});
            let status = client
                .post(&notify_url)
                .json(&answered)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
            let base = &notify_url[..notify_url.find("/notify").unwrap()];
            let before: Value = client
                .get(format!("{base}/v1/calls/early-call"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(tx) = seen_tx.lock().unwrap().take() {
                let _ = tx.send(before);
            }
            axum::Json(json!({"sid": "early-sid", "callId": "early-call"}))
        }
    };
    let app = axum::Router::new().fallback(post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen_rx)
}

async fn a_notification_that_arrives_before_its_dialout_is_attached_once_it_is_recorded(
    backend: Backend,
) {
    let name = "a_notification_that_arrives_before_its_dialout_is_attached_once_it_is_recorded";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let (gateway, seen_before) = early_notifying_gateway().await;
    let app = spawn_ready(with_gateway(test_settings(&db.url), &gateway)).await;
    let body =
        json!({"target": "tel:+4930123", "caller": "+100", "metadata": {"campaign": "early"}});

    let placed: Value = dial(&app, &body, None).await.json().await.unwrap();

    let before = seen_before.await.unwrap();
    assert_eq!(before["state"], "in_progress");
    assert_eq!(before["dialout"], Value::Null, "not yet recorded: {before}");
    let after = app.call_json("early-call").await;
    assert_eq!(after["dialout"]["id"], placed["id"]);
    assert_eq!(after["dialout"]["metadata"]["campaign"], "early");
    let listed: Value = app
        .get("/v1/calls?metadata.campaign=early")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["conversation_id"], "early-call");
    // A notification naming the dial-out's sid is correlated too.
    let by_sid =
        json!({"conversationId": "early-sid", "status": "failed", "reason": "486 Busy Here"});
    assert_eq!(
        app.post(&format!("/notify/{TOKEN}"), by_sid.to_string())
            .await
            .status(),
        200
    );
    assert_eq!(
        app.call_json("early-sid").await["dialout"]["id"],
        placed["id"]
    );
    app.stop().await;
}

both_stores!(a_notification_that_arrives_before_its_dialout_is_attached_once_it_is_recorded);

async fn dialouts_answer_501_when_not_configured(backend: Backend) {
    let Some(db) = fresh_db(backend, "dialouts_answer_501_when_not_configured").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;

    let problem = assert_problem(
        dial(&app, &json!({"target": "tel:1", "caller": "2"}), None).await,
        501,
    )
    .await;

    assert_eq!(problem["type"], "urn:calltrail:problem:dialouts-disabled");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("dialout.base_url")
    );
    let listed: Value = app.get("/v1/dialouts").await.json().await.unwrap();
    assert_eq!(listed, json!({"data": [], "next_cursor": null}));
    app.stop().await;
}

both_stores!(dialouts_answer_501_when_not_configured);
