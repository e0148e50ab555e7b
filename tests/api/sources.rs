//! Every call, event and delivery carries its source; calls carry their ring and connect
//! times; `/v1/calls`, `/v1/stats` and the export filter by both; reprocessing reads a
//! delivery with its own source's normalizer. On both stores.

use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const KORE_ID: &str = "7f3c2a10-5b1e-4d8a-9c61-2e0f4b7axxxx";
const JAMBONZ_ID: &str = "2d7e1f3a-9c84-4e65-b0a1-7f6e5d4c3b2a";
const TWILIO_ID: &str = "CA1b2c3d4e5f60718293a4b5c6d7e8f901";

async fn post(app: &TestApp, path: &str, body: String, content_type: &str) -> Value {
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

async fn get_json(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The conversation ids of the calls `/v1/calls?{query}` lists, sorted.
async fn listed(app: &TestApp, query: &str) -> Vec<String> {
    let page = get_json(app, &format!("/v1/calls?{query}")).await;
    let mut ids: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// One call from each source: Kore.ai's with ring and connect times (the in-progress
/// notification after the completed one: order does not matter), jambonz's and Twilio's
/// busy calls.
async fn one_call_per_source(app: &TestApp) -> Vec<Value> {
    let mut receipts = Vec::new();
    for name in ["03-completed.json", "01-call-in-progress-machine.json"] {
        let body = fixture(&format!("kore/{name}"));
        receipts.push(post(app, "/notify", body, "application/json").await);
    }
    let jambonz = fixture("jambonz/06-busy.json");
    receipts.push(post(app, "/jambonz/notify", jambonz, "application/json").await);
    let twilio = fixture("twilio/05-busy.form");
    let form = "application/x-www-form-urlencoded";
    receipts.push(post(app, "/twilio/notify", twilio, form).await);
    for receipt in &receipts {
        assert_eq!(receipt["result"], "accepted", "{receipt}");
    }
    receipts
}

async fn calls_events_and_deliveries_carry_their_source(backend: Backend) {
    let Some(db) = fresh_db(backend, "calls_carry_their_source").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let receipts = one_call_per_source(&app).await;

    let kore = app.call_json(KORE_ID).await;
    assert_eq!(
        (&kore["source"], &kore["ring_ms"], &kore["connect_ms"]),
        (&"kore".into(), &5230.into(), &6118.into()),
        "{kore}"
    );
    for event in kore["events"].as_array().unwrap() {
        assert_eq!(event["source"], "kore", "{event}");
        assert_eq!(
            (&event["ring_ms"], &event["connect_ms"]),
            (&5230.into(), &6118.into())
        );
    }
    for (id, source) in [(JAMBONZ_ID, "jambonz"), (TWILIO_ID, "twilio")] {
        let call = app.call_json(id).await;
        assert_eq!(
            (&call["source"], &call["ring_ms"], &call["outcome"]),
            (&source.into(), &Value::Null, &"busy".into()),
            "{call}"
        );
    }
    for (receipt, source) in receipts.iter().zip(["kore", "kore", "jambonz", "twilio"]) {
        let delivery = get_json(&app, &format!("/v1/deliveries/{}", receipt["delivery_id"])).await;
        assert_eq!(delivery["source"], source, "{delivery}");
    }
    app.stop().await;
}

both_stores!(calls_events_and_deliveries_carry_their_source);

async fn calls_stats_and_export_filter_by_source_and_ring_time(backend: Backend) {
    let Some(db) = fresh_db(backend, "calls_filter_by_source").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    one_call_per_source(&app).await;

    assert_eq!(listed(&app, "source=jambonz").await, [JAMBONZ_ID]);
    assert_eq!(
        listed(&app, "source=twilio,kore").await,
        [KORE_ID, TWILIO_ID]
    );
    assert_eq!(
        listed(&app, "source=kore&source=twilio&outcome=busy").await,
        [TWILIO_ID]
    );
    assert_eq!(listed(&app, "min_ring_ms=5000").await, [KORE_ID]);
    assert!(listed(&app, "max_ring_ms=5000").await.is_empty());
    assert_eq!(
        listed(&app, "min_connect_ms=6118&max_connect_ms=6118").await,
        [KORE_ID]
    );

    let range = "since=2000-01-01&until=2100-01-01";
    for (query, calls) in [("", 3), ("&source=jambonz", 1), ("&source=kore,twilio", 2)] {
        let stats = get_json(&app, &format!("/v1/stats?{range}{query}")).await;
        assert_eq!(stats["calls"], calls, "{query}: {stats}");
    }

    let csv = app
        .get("/v1/calls/export?source=kore")
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(lines.next().is_none(), "{csv}");
    let cell = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(
        (
            cell("conversation_id"),
            cell("source"),
            cell("ring_ms"),
            cell("connect_ms")
        ),
        (KORE_ID, "kore", "5230", "6118")
    );

    for query in [
        "source=sip",
        "source=Kore",
        "min_ring_ms=-1",
        "max_connect_ms=soon",
    ] {
        for path in ["/v1/calls", "/v1/stats", "/v1/calls/export"] {
            let problem = assert_problem(app.get(&format!("{path}?{query}")).await, 400).await;
            let parameter = query.split('=').next().unwrap();
            assert!(
                problem.to_string().contains(parameter),
                "{path}?{query}: {problem}"
            );
        }
    }
    app.stop().await;
}

both_stores!(calls_stats_and_export_filter_by_source_and_ring_time);

async fn reprocessing_reads_a_delivery_with_its_own_source(backend: Backend) {
    let Some(db) = fresh_db(backend, "reprocessing_reads_its_source").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    // The same JSON body at two endpoints: as a Kore.ai notification it has no
    // conversationId (422), as a jambonz webhook it is a busy call.
    let body = r#"{"call_sid":"c-1","call_status":"busy","sip_status":486}"#;
    let kore = app.notify(body).await;
    let kore = assert_problem(kore, 422).await;
    let jambonz = post(&app, "/jambonz/notify", body.into(), "application/json").await;
    assert_eq!(jambonz["result"], "accepted");

    let reprocess = |delivery_id: &Value| {
        let path = format!("/v1/deliveries/{delivery_id}/reprocess");
        app.client.post(app.url(&path)).send()
    };
    assert_problem(reprocess(&kore["delivery_id"]).await.unwrap(), 422).await;
    let again: Value = reprocess(&jambonz["delivery_id"])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&again["result"], &again["event_id"]),
        (&"accepted".into(), &jambonz["event_id"]),
        "{again}"
    );
    let call = app.call_json("c-1").await;
    assert_eq!(
        (&call["source"], &call["outcome"]),
        (&"jambonz".into(), &"busy".into())
    );
    app.stop().await;
}

both_stores!(reprocessing_reads_a_delivery_with_its_own_source);
