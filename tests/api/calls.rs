//! `GET /v1/calls/{conversation_id}`: the folded call and its events.

use serde_json::{Value, json};

use crate::helpers::{fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

async fn a_call_folds_events_whatever_their_arrival_order(backend: Backend) {
    let name = "a_call_folds_events_whatever_their_arrival_order";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let answered = json!({"conversationId": "order-1", "status": "answered",
        "callconnecttime": "5/8/2023,11:32:49AM", "machinedetection": "amd_human_detected"});
    let completed = json!({"conversationId": "order-1", "status": "completed", "reasonCode": "Caller-disconnected",
        "reason": "200 OK", "duration": "14", "callconnecttime": "5/8/2023,11:32:49AM",
        "callDisconnectTime": "5/8/2023,11:33:03AM"});
    let mut reversed = completed.clone();
    reversed["conversationId"] = json!("order-2");
    let mut reversed_answered = answered.clone();
    reversed_answered["conversationId"] = json!("order-2");

    for body in [&answered, &completed, &reversed, &reversed_answered] {
        assert_eq!(app.notify(body.to_string()).await.status(), 200);
    }

    let in_order = app.call_json("order-1").await;
    let out_of_order = app.call_json("order-2").await;
    let expected = json!({"state": "completed", "status": "completed", "outcome": "human",
        "reason_code": "caller-disconnected", "sip_code": 200, "duration_s": 14,
        "connected_at": "2023-05-08T11:32:49Z", "ended_at": "2023-05-08T11:33:03Z",
        "occurred_at": "2023-05-08T11:32:49Z", "amd_result": "amd_human_detected", "event_count": 2});
    for call in [&in_order, &out_of_order] {
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(call[key], *value, "{key} in {call}");
        }
    }
    let statuses = |call: &Value| -> Vec<String> {
        call["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(statuses(&in_order), ["answered", "completed"]);
    assert_eq!(
        statuses(&out_of_order),
        ["completed", "answered"],
        "events listed in received order"
    );
    app.stop().await;
}

both_stores!(a_call_folds_events_whatever_their_arrival_order);

async fn warnings_are_returned_and_stored(backend: Backend) {
    let Some(db) = fresh_db(backend, "warnings_are_returned_and_stored").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let body = json!({"conversationId": "warn-1", "status": "Transferred", "machinedetection": "amd_maybe",
        "callconnecttime": "not a time", "duration": -3, "customField": {"campaign": "spring"}});

    let response = app.notify(body.to_string()).await;

    assert_eq!(response.status(), 200);
    let receipt: Value = response.json().await.unwrap();
    let warnings = receipt["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 4, "{receipt}");
    let call = app.call_json("warn-1").await;
    assert_eq!(call["state"], "unknown");
    assert_eq!(call["outcome"], "unknown");
    assert_eq!(call["status"], "transferred");
    let event = &call["events"][0];
    assert_eq!(event["warnings"], receipt["warnings"]);
    assert_eq!(event["status"], "transferred");
    assert_eq!(event["amd_result"], Value::Null);
    assert_eq!(event["connect_time"], Value::Null);
    assert_eq!(event["duration_s"], Value::Null);
    assert_eq!(
        event["payload"]["customField"]["campaign"], "spring",
        "unknown keys kept"
    );
    app.stop().await;
}

both_stores!(warnings_are_returned_and_stored);
