//! The gateway's six sample notifications, posted over HTTP, on both stores.

use serde_json::Value;

use crate::helpers::{fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const SAMPLES: [&str; 6] = [
    "01-completed-human.json",
    "02-completed-machine.json",
    "03-completed-amd-disabled.json",
    "04-failed-503.json",
    "05-failed-486-busy.json",
    "06-failed-480-unavailable.json",
];

/// Copies the listed keys of `actual`, so that it compares with an expectation that omits
/// fields set at receipt time (ids, received times).
fn pick(actual: &Value, like: &Value) -> Value {
    let keys = like.as_object().expect("expected object").keys();
    Value::Object(keys.map(|k| (k.clone(), actual[k].clone())).collect())
}

async fn every_sample_is_normalized_and_folded(backend: Backend) {
    let Some(db) = fresh_db(backend, "every_sample_is_normalized_and_folded").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let expected: Value = serde_json::from_str(&fixture("samples_expected.json")).unwrap();
    let started = chrono::Utc::now();

    for sample in SAMPLES {
        let body = fixture(&format!("samples/{sample}"));
        let response = app.notify(body.clone()).await;

        assert_eq!(response.status(), 200, "{sample}");
        let receipt: Value = response.json().await.unwrap();
        let want = &expected["events"][sample];
        assert_eq!(receipt["result"], "accepted", "{sample}: {receipt}");
        assert_eq!(
            receipt["conversation_id"], want["conversation_id"],
            "{sample}"
        );
        assert_eq!(receipt["warnings"], serde_json::json!([]), "{sample}");
        assert!(
            receipt["delivery_id"].is_i64() && receipt["event_id"].is_i64(),
            "{receipt}"
        );

        let call = app
            .call_json(want["conversation_id"].as_str().unwrap())
            .await;
        let event = call["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == receipt["event_id"])
            .unwrap_or_else(|| panic!("{sample}: event {} not in {call}", receipt["event_id"]));
        assert_eq!(pick(event, want), *want, "{sample}: normalized event");
        let payload: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["payload"], payload, "{sample}: raw payload kept");
    }

    for (conversation_id, want) in expected["calls"].as_object().unwrap() {
        let call = app.call_json(conversation_id).await;
        assert_eq!(pick(&call, want), *want, "call {conversation_id}");
        for key in ["first_seen_at", "last_seen_at"] {
            let at: chrono::DateTime<chrono::Utc> = call[key].as_str().unwrap().parse().unwrap();
            assert!(at >= started && at <= chrono::Utc::now(), "{key} {at}");
        }
        let received: Vec<&Value> = call["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["received_at"])
            .collect();
        assert!(
            received.windows(2).all(|w| w[0].as_str() <= w[1].as_str()),
            "events in received order"
        );
    }
    app.stop().await;
}

both_stores!(every_sample_is_normalized_and_folded);

async fn unknown_call_is_a_404_problem(backend: Backend) {
    let Some(db) = fresh_db(backend, "unknown_call_is_a_404_problem").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;

    let response = app.get("/v1/calls/no-such-call").await;

    let problem = crate::helpers::assert_problem(response, 404).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("no-such-call"),
        "{problem}"
    );
    app.stop().await;
}

both_stores!(unknown_call_is_a_404_problem);
