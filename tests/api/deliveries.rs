//! The delivery log and reprocessing: listing, one entry, and running stored bodies
//! through today's normalizer and configuration again.

use calltrail::notification::{FieldError, Rejection};
use calltrail::store::NewDelivery;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_counts_match_calls, assert_problem, fixture, fresh_db, spawn_ready,
    test_settings,
};
use crate::support::{Backend, both_stores};

async fn json_of(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn the_log_lists_every_delivery_newest_first(backend: Backend) {
    let name = "the_log_lists_every_delivery_newest_first";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let sample = fixture("samples/01-completed-human.json");
    app.notify(sample.clone()).await;
    app.notify(sample.clone()).await;
    app.client
        .post(app.url("/notify"))
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    app.notify(r#"{"status":"failed"}"#).await;
    app.client
        .post(app.url("/notify"))
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();

    let all = json_of(&app, "/v1/deliveries").await;
    let rejected = json_of(&app, "/v1/deliveries?result=rejected&limit=2").await;
    let rest = json_of(
        &app,
        &format!(
            "/v1/deliveries?result=rejected&limit=2&cursor={}",
            rejected["next_cursor"].as_str().unwrap()
        ),
    )
    .await;
    let one = json_of(&app, "/v1/deliveries/3").await;

    let results: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["rejected", "rejected", "rejected", "duplicate", "accepted"]
    );
    let ids = |page: &Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&rejected), [5, 4]);
    assert_eq!(ids(&rest), [3]);
    assert_eq!(rest["next_cursor"], Value::Null);
    assert_eq!(one["body"], "not json");
    assert_eq!(one["body_encoding"], "text");
    assert_eq!(one["content_type"], "text/plain");
    assert!(one["error"].as_str().unwrap().contains("not valid JSON"));
    let binary = &all["data"][0];
    assert_eq!(
        (binary["body"].as_str(), binary["body_encoding"].as_str()),
        (Some("//4A"), Some("base64"))
    );
    let invalid = &all["data"][1];
    assert_eq!(invalid["body"], json!({"status": "failed"}));
    assert_eq!(invalid["errors"][0]["field"], "conversationId");
    let accepted = &all["data"][4];
    assert_eq!(accepted["body_encoding"], "json");
    assert_eq!(
        accepted["body"],
        serde_json::from_str::<Value>(&sample).unwrap()
    );
    assert_eq!(accepted["event_id"], all["data"][3]["event_id"]);
    let of_the_call = json_of(
        &app,
        "/v1/deliveries?conversation_id=29e2d933-527e-429c-95b9-ba4f7c7bxxxx&since=2020-01-01",
    )
    .await;
    let results: Vec<&str> = of_the_call["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["duplicate", "accepted"],
        "only the call's, duplicates too"
    );
    assert_problem(app.get("/v1/deliveries/999").await, 404).await;
    app.stop().await;
}

both_stores!(the_log_lists_every_delivery_newest_first);

async fn reprocessing_after_a_timezone_change_shifts_the_times(backend: Backend) {
    let name = "reprocessing_after_a_timezone_change_shifts_the_times";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let utc = spawn_ready(test_settings(&db.url)).await;
    let receipt: Value = utc
        .notify(fixture("samples/03-completed-amd-disabled.json"))
        .await
        .json()
        .await
        .unwrap();
    let id = "4e010fea-cd93-47a0-a548-36d5f621xxxx";
    assert_eq!(
        utc.call_json(id).await["connected_at"],
        "2023-05-08T11:29:55Z"
    );
    utc.stop().await;

    // The operator learns the gateway speaks Indian time and restarts with that zone.
    let mut settings = test_settings(&db.url);
    settings.notify.timezone = chrono_tz::Asia::Kolkata;
    let kolkata = spawn_ready(settings).await;
    let path = format!("/v1/deliveries/{}/reprocess", receipt["delivery_id"]);
    let again: Value = kolkata
        .client
        .post(kolkata.url(&path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(again["result"], "accepted");
    assert_eq!(
        again["event_id"], receipt["event_id"],
        "the event is recomputed in place"
    );
    assert_eq!(again["delivery_id"], receipt["delivery_id"]);
    let call = kolkata.call_json(id).await;
    assert_eq!(call["connected_at"], "2023-05-08T05:59:55Z");
    assert_eq!(call["ended_at"], "2023-05-08T06:00:05Z");
    assert_eq!(call["events"][0]["connect_time"], "2023-05-08T05:59:55Z");
    assert_eq!(call["event_count"], 1);
    // The call moved to another quarter hour: its count moved with it.
    assert_counts_match_calls(&db, &kolkata).await;
    kolkata.stop().await;
}

both_stores!(reprocessing_after_a_timezone_change_shifts_the_times);

async fn a_body_rejected_by_older_rules_becomes_an_event(backend: Backend) {
    let name = "a_body_rejected_by_older_rules_becomes_an_event";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    // A body an older calltrail refused, kept in the log as rejected.
    let body = fixture("samples/05-failed-486-busy.json");
    let older = Err(Rejection::Invalid {
        conversation_id: None,
        errors: vec![FieldError {
            field: "reasonCode".into(),
            message: "was not understood".into(),
        }],
    });
    let stored = NewDelivery {
        received_at: chrono::Utc::now(),
        source: calltrail::notification::Format::Kore,
        content_type: Some("application/json"),
        body: body.as_bytes(),
    };
    app.store.record(stored, &older).await.unwrap();
    app.notify(r#"{"conversationId":"x"}"#).await;
    assert_problem(
        app.get("/v1/calls/80af8588-31c7-4877-a798-a3603c30xxxx")
            .await,
        404,
    )
    .await;

    let one: Value = app
        .client
        .post(app.url("/v1/deliveries/1/reprocess"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let still_bad = app
        .client
        .post(app.url("/v1/deliveries/2/reprocess"))
        .send()
        .await
        .unwrap();
    let bulk: Value = app
        .client
        .post(app.url("/v1/deliveries/reprocess?result=accepted"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(one["result"], "accepted");
    assert_eq!(
        one["conversation_id"],
        "80af8588-31c7-4877-a798-a3603c30xxxx"
    );
    let problem = assert_problem(still_bad, 422).await;
    assert_eq!(problem["delivery_id"], 2);
    assert_eq!(
        bulk,
        json!({"reprocessed": 1, "accepted": 1, "duplicate": 0, "rejected": 0})
    );
    let call = app.call_json("80af8588-31c7-4877-a798-a3603c30xxxx").await;
    assert_eq!(call["outcome"], "busy");
    let delivery = json_of(&app, "/v1/deliveries/1").await;
    assert_eq!(
        (delivery["result"].as_str(), delivery["error"].as_str()),
        (Some("accepted"), None)
    );
    assert_eq!(delivery["event_id"], one["event_id"]);
    let everything: Value = app
        .client
        .post(app.url("/v1/deliveries/reprocess"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        everything,
        json!({"reprocessed": 2, "accepted": 1, "duplicate": 0, "rejected": 1})
    );
    app.stop().await;
}

both_stores!(a_body_rejected_by_older_rules_becomes_an_event);
