//! jambonz and Twilio endpoints: their realistic bodies through HTTP into calls, on both
//! stores.

use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const FORM: &str = "application/x-www-form-urlencoded";

async fn post_as(app: &TestApp, path: &str, body: String, content_type: &str) -> Value {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn jambonz_webhooks_fold_into_calls(backend: Backend) {
    let Some(db) = fresh_db(backend, "jambonz_webhooks_fold_into_calls").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    // The AMD event before the status it belongs to: order does not matter.
    for name in [
        "04-amd-machine.json",
        "01-trying.json",
        "02-ringing.json",
        "03-in-progress.json",
        "05-completed.json",
        "06-busy.json",
        "07-no-answer.json",
        "08-failed-503.json",
    ] {
        let body = fixture(&format!("jambonz/{name}"));
        let receipt = post_as(&app, "/jambonz/notify", body, "application/json").await;
        assert_eq!(receipt["result"], "accepted", "{name}: {receipt}");
        assert_eq!(receipt["warnings"], serde_json::json!([]), "{name}");
    }

    let call = app.call_json("9b5c8f2e-3d41-4b7a-a6e0-1f2c3d4e5f60").await;
    assert_eq!(
        (&call["state"], &call["outcome"], &call["status"]),
        (&"completed".into(), &"machine".into(), &"completed".into())
    );
    assert_eq!(call["duration_s"], 27);
    assert_eq!(call["amd_result"], "amd_machine_detected");
    assert_eq!(call["reason_code"], "caller");
    assert_eq!(call["event_count"], 5);
    let amd = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["amd_result"] == "amd_machine_detected")
        .unwrap();
    assert_eq!(
        amd["payload"]["greeting"]
            .as_str()
            .map(|g| g.starts_with("Hi,")),
        Some(true)
    );

    for (id, outcome) in [
        ("2d7e1f3a-9c84-4e65-b0a1-7f6e5d4c3b2a", "busy"),
        ("5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "no_answer"),
        ("7c6d5e4f-3a2b-4c1d-9e8f-0a1b2c3d4e5f", "unavailable"),
    ] {
        let call = app.call_json(id).await;
        assert_eq!(
            (&call["state"], &call["outcome"]),
            (&"failed".into(), &outcome.into()),
            "{id}"
        );
    }

    // The same webhook again is a duplicate, as at /notify.
    let again = post_as(
        &app,
        "/jambonz/notify",
        fixture("jambonz/06-busy.json"),
        "text/plain",
    )
    .await;
    assert_eq!(again["result"], "duplicate");
    app.stop().await;
}

both_stores!(jambonz_webhooks_fold_into_calls);

async fn twilio_callbacks_fold_into_calls(backend: Backend) {
    let Some(db) = fresh_db(backend, "twilio_callbacks_fold_into_calls").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    for name in [
        "04-completed.form",
        "09-amd-async-machine.form",
        "01-initiated.form",
        "03-in-progress-human.form",
        "02-ringing.form",
        "05-busy.form",
        "06-no-answer.form",
        "07-canceled.form",
        "08-failed-404.form",
    ] {
        let body = fixture(&format!("twilio/{name}"));
        let receipt = post_as(&app, "/twilio/notify", body, FORM).await;
        assert_eq!(receipt["result"], "accepted", "{name}: {receipt}");
    }

    let call = app.call_json("CA9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c").await;
    assert_eq!(
        (&call["state"], &call["outcome"]),
        (&"completed".into(), &"machine".into())
    );
    assert_eq!(call["connected_at"], "2024-03-14T09:21:07Z");
    assert_eq!(call["ended_at"], "2024-03-14T09:21:41Z");
    assert_eq!(call["duration_s"], 34);
    assert_eq!(call["amd_result"], "amd_tone_detected");
    let completed = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "completed")
        .unwrap();
    assert_eq!(completed["payload"]["SequenceNumber"], "3");
    assert_eq!(
        completed["payload"]["Timestamp"],
        "Thu, 14 Mar 2024 09:21:41 +0000"
    );

    for (id, outcome) in [
        ("CA1b2c3d4e5f60718293a4b5c6d7e8f901", "busy"),
        ("CA2c3d4e5f60718293a4b5c6d7e8f9012a", "no_answer"),
        ("CA3d4e5f60718293a4b5c6d7e8f9012a3b", "no_answer"),
        ("CA4e5f60718293a4b5c6d7e8f9012a3b4c", "failed"),
    ] {
        let call = app.call_json(id).await;
        assert_eq!(
            (&call["state"], &call["outcome"]),
            (&"failed".into(), &outcome.into()),
            "{id}"
        );
    }
    app.stop().await;
}

both_stores!(twilio_callbacks_fold_into_calls);

async fn bad_bodies_get_problems_and_are_kept(backend: Backend) {
    let Some(db) = fresh_db(backend, "gateway_bad_bodies_get_problems").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;

    let not_json = app.post("/jambonz/notify", "call_sid=1").await;
    assert_problem(not_json, 400).await;
    let no_sid = app
        .post("/jambonz/notify", r#"{"call_status":"busy"}"#)
        .await;
    let problem = assert_problem(no_sid, 422).await;
    assert_eq!(problem["errors"][0]["field"], "call_sid");
    let not_form = app.post("/twilio/notify", "").await;
    assert_problem(not_form, 400).await;
    let no_status = app.post("/twilio/notify", "CallSid=CA1").await;
    let problem = assert_problem(no_status, 422).await;
    assert_eq!(problem["errors"][0]["field"], "CallStatus");
    assert!(problem["delivery_id"].is_i64(), "{problem}");

    let deliveries: Value = app.get("/v1/deliveries").await.json().await.unwrap();
    assert_eq!(
        deliveries["data"].as_array().map(Vec::len),
        Some(4),
        "{deliveries}"
    );
    app.stop().await;
}

both_stores!(bad_bodies_get_problems_and_are_kept);

async fn tokens_guard_every_source(backend: Backend) {
    let Some(db) = fresh_db(backend, "tokens_guard_every_source").await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.notify.tokens = vec!["t0ken".into()];
    let app = spawn_ready(settings).await;
    let jambonz = || fixture("jambonz/06-busy.json");
    let twilio = || fixture("twilio/05-busy.form");

    assert_problem(app.post("/jambonz/notify", jambonz()).await, 401).await;
    assert_problem(app.post("/twilio/notify/wrong", twilio()).await, 401).await;
    assert_eq!(
        app.post("/jambonz/notify/t0ken", jambonz()).await.status(),
        200
    );
    assert_eq!(
        app.post("/twilio/notify?token=t0ken", twilio())
            .await
            .status(),
        200
    );
    let header = app
        .client
        .post(app.url("/twilio/notify"))
        .header("X-Calltrail-Token", "t0ken")
        .body(fixture("twilio/06-no-answer.form"))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 200);
    app.stop().await;
}

both_stores!(tokens_guard_every_source);

async fn jambonz_and_twilio_deliveries_reprocess_in_their_format(backend: Backend) {
    let Some(db) = fresh_db(backend, "gateway_deliveries_reprocess_in_their_format").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let jambonz = post_as(
        &app,
        "/jambonz/notify",
        fixture("jambonz/06-busy.json"),
        "application/json",
    )
    .await;
    let twilio = post_as(&app, "/twilio/notify", fixture("twilio/05-busy.form"), FORM).await;

    for receipt in [jambonz, twilio] {
        let path = format!("/v1/deliveries/{}/reprocess", receipt["delivery_id"]);
        let response = app.client.post(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{receipt}");
        let again: Value = response.json().await.unwrap();
        assert_eq!(again["result"], "accepted", "{again}");
        assert_eq!(again["event_id"], receipt["event_id"]);
    }
    let bulk: Value = app
        .client
        .post(app.url("/v1/deliveries/reprocess"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&bulk["reprocessed"], &bulk["rejected"]),
        (&2.into(), &0.into()),
        "{bulk}"
    );
    let call = app.call_json("CA1b2c3d4e5f60718293a4b5c6d7e8f901").await;
    assert_eq!(call["outcome"], "busy");
    app.stop().await;
}

both_stores!(jambonz_and_twilio_deliveries_reprocess_in_their_format);
