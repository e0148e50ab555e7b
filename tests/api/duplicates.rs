//! The same notification, many times at once: one event, every delivery logged.

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{TestApp, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const COPIES: usize = 20;

/// Posts `body` `COPIES` times at once, spreading the requests over `apps`.
async fn post_concurrently(apps: &[&TestApp], body: &str) -> Vec<Value> {
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..COPIES {
        let app = apps[i % apps.len()];
        let request = app.client.post(app.url("/notify")).body(body.to_owned());
        requests.spawn(async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        });
    }
    requests.join_all().await
}

async fn assert_one_event(app: &TestApp, receipts: &[Value]) {
    let results: Vec<&str> = receipts
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "accepted").count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|r| **r == "duplicate").count(),
        COPIES - 1
    );
    let event_ids: HashSet<i64> = receipts
        .iter()
        .map(|r| r["event_id"].as_i64().unwrap())
        .collect();
    assert_eq!(event_ids.len(), 1, "every copy points at the first event");
    let delivery_ids: HashSet<i64> = receipts
        .iter()
        .map(|r| r["delivery_id"].as_i64().unwrap())
        .collect();
    assert_eq!(delivery_ids.len(), COPIES, "one delivery per copy");
    for id in delivery_ids {
        let delivery = app
            .store
            .delivery(id)
            .await
            .unwrap()
            .expect("delivery stored");
        assert_eq!(delivery.event_id, event_ids.iter().next().copied());
    }
    let call = app
        .call_json(receipts[0]["conversation_id"].as_str().unwrap())
        .await;
    assert_eq!(call["event_count"], 1);
    assert_eq!(call["events"].as_array().unwrap().len(), 1);
}

async fn concurrent_copies_give_one_event(backend: Backend) {
    let Some(db) = fresh_db(backend, "concurrent_copies_give_one_event").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;

    let receipts = post_concurrently(&[&app], &fixture("samples/01-completed-human.json")).await;

    assert_one_event(&app, &receipts).await;
    app.stop().await;
}

both_stores!(concurrent_copies_give_one_event);

async fn two_instances_on_one_database_give_one_event(backend: Backend) {
    let Some(db) = fresh_db(backend, "two_instances_on_one_database_give_one_event").await else {
        return;
    };
    let first = spawn_ready(test_settings(&db.url)).await;
    let second = spawn_ready(test_settings(&db.url)).await;

    let receipts =
        post_concurrently(&[&first, &second], &fixture("samples/04-failed-503.json")).await;

    assert_one_event(&first, &receipts).await;
    first.stop().await;
    second.stop().await;
}

both_stores!(two_instances_on_one_database_give_one_event);

async fn key_order_and_whitespace_do_not_make_a_new_event(backend: Backend) {
    let name = "key_order_and_whitespace_do_not_make_a_new_event";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let compact =
        r#"{"conversationId":"dup-1","status":"answered","callconnecttime":"5/8/2023,11:32:49AM"}"#;
    let reordered = "{ \"callconnecttime\": \"5/8/2023,11:32:49AM\",\n  \"status\": \"answered\", \"conversationId\": \"dup-1\" }";
    let different =
        r#"{"conversationId":"dup-1","status":"answered","callconnecttime":"5/8/2023,11:32:50AM"}"#;

    let first: Value = app.notify(compact).await.json().await.unwrap();
    let again: Value = app.notify(reordered).await.json().await.unwrap();
    let other: Value = app.notify(different).await.json().await.unwrap();

    assert_eq!(first["result"], "accepted");
    assert_eq!(again["result"], "duplicate");
    assert_eq!(again["event_id"], first["event_id"]);
    assert_eq!(other["result"], "accepted");
    let stored = app
        .store
        .delivery(again["delivery_id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.body,
        reordered.as_bytes(),
        "the duplicate's own bytes are logged"
    );
    assert_eq!(app.call_json("dup-1").await["event_count"], 2);
    app.stop().await;
}

both_stores!(key_order_and_whitespace_do_not_make_a_new_event);
