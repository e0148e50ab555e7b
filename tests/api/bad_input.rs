//! Bad input gets a clear error and loses nothing (docs/api.md, "Answers").

use calltrail::store::DeliveryResult;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const TOKEN: &str = "test-token-1";

async fn app_with_token(backend: Backend, name: &str) -> Option<(crate::support::TestDb, TestApp)> {
    let db = fresh_db(backend, name).await?;
    let mut settings = test_settings(&db.url);
    settings.notify.tokens = vec![TOKEN.into()];
    let app = spawn_ready(settings).await;
    Some((db, app))
}

/// Asserts the delivery log holds `body` byte for byte as a rejected delivery.
async fn assert_rejected_delivery(
    app: &TestApp,
    problem: &Value,
    body: &[u8],
) -> calltrail::store::Delivery {
    let id = problem["delivery_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("delivery_id in {problem}"));
    let delivery = app
        .store
        .delivery(id)
        .await
        .unwrap()
        .expect("delivery stored");
    assert_eq!(delivery.body, body, "raw bytes kept");
    assert_eq!(delivery.result, DeliveryResult::Rejected);
    assert_eq!(delivery.event_id, None);
    assert_eq!(delivery.content_type.as_deref(), Some("application/json"));
    delivery
}

async fn bodies_that_are_not_json_objects_get_400_and_are_kept(backend: Backend) {
    let name = "bodies_that_are_not_json_objects_get_400_and_are_kept";
    let Some((_db, app)) = app_with_token(backend, name).await else {
        return;
    };
    let cases: [(&[u8], &str); 4] = [
        (b"{\"conversationId\": ", "not valid JSON"),
        (b"not json at all", "not valid JSON"),
        (b"[1, 2, 3]", "array"),
        (b"\"hello\"", "string"),
    ];

    for (body, detail_mentions) in cases {
        let response = app.post(&format!("/notify/{TOKEN}"), body.to_vec()).await;

        let problem = assert_problem(response, 400).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(detail_mentions),
            "{detail:?} should mention {detail_mentions:?}"
        );
        let delivery = assert_rejected_delivery(&app, &problem, body).await;
        assert_eq!(delivery.error.as_deref(), Some(detail));
    }
    app.stop().await;
}

both_stores!(bodies_that_are_not_json_objects_get_400_and_are_kept);

async fn objects_with_invalid_fields_get_422_naming_each_field(backend: Backend) {
    let name = "objects_with_invalid_fields_get_422_naming_each_field";
    let Some((_db, app)) = app_with_token(backend, name).await else {
        return;
    };
    let cases = [
        (json!({"status": "completed"}), vec!["conversationId"]),
        (
            json!({"conversationId": "c-1", "status": "   "}),
            vec!["status"],
        ),
        (
            json!({"conversationId": "c-1", "status": "completed", "duration": true}),
            vec!["duration"],
        ),
        (
            json!({"conversationId": 42, "status": ["x"]}),
            vec!["conversationId", "status"],
        ),
        (
            json!({"conversationId": "c-1", "status": "failed", "callconnecttime": {"t": 1}}),
            vec!["callconnecttime"],
        ),
    ];

    for (payload, fields) in cases {
        let body = serde_json::to_vec(&payload).unwrap();
        let response = app
            .post(&format!("/notify?token={TOKEN}"), body.clone())
            .await;

        let problem = assert_problem(response, 422).await;
        let errors = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors in {problem}"));
        let named: Vec<&str> = errors
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{payload}");
        assert!(
            errors
                .iter()
                .all(|e| !e["message"].as_str().unwrap().is_empty())
        );
        let delivery = assert_rejected_delivery(&app, &problem, &body).await;
        let stored: Vec<&str> = delivery.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(stored, fields, "errors kept with the delivery");
    }
    app.stop().await;
}

both_stores!(objects_with_invalid_fields_get_422_naming_each_field);

async fn oversized_bodies_and_wrong_tokens_are_refused_unstored(backend: Backend) {
    let name = "oversized_bodies_and_wrong_tokens_are_refused_unstored";
    let Some((_db, app)) = app_with_token(backend, name).await else {
        return;
    };
    let sample = fixture("samples/01-completed-human.json");
    let first = app.post(&format!("/notify/{TOKEN}"), sample.clone()).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();

    let mut huge = br#"{"conversationId":"big","status":"completed","padding":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    huge.extend(br#""}"#);
    let too_large = app.post(&format!("/notify/{TOKEN}"), huge).await;
    let problem = assert_problem(too_large, 413).await;
    assert!(problem.get("delivery_id").is_none(), "{problem}");

    let other = fixture("samples/03-completed-amd-disabled.json");
    for path in [
        "/notify/wrong-token",
        "/notify?token=wrong-token",
        "/notify",
    ] {
        let response = app.post(path, other.clone()).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_problem(response, 401).await;
    }

    // Nothing was stored for the refused requests: the next delivery follows the first.
    let next = app.post(&format!("/notify/{TOKEN}"), other).await;
    assert_eq!(next.status(), 200);
    let next: Value = next.json().await.unwrap();
    assert_eq!(
        next["delivery_id"].as_i64(),
        first["delivery_id"].as_i64().map(|id| id + 1)
    );
    app.stop().await;
}

both_stores!(oversized_bodies_and_wrong_tokens_are_refused_unstored);

async fn a_body_just_under_the_limit_is_accepted(backend: Backend) {
    let Some(db) = fresh_db(backend, "a_body_just_under_the_limit_is_accepted").await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.notify.max_body_bytes = 200;
    let app = spawn_ready(settings).await;
    let body = |pad: usize| {
        format!(
            r#"{{"conversationId":"c-1","status":"answered","p":"{}"}}"#,
            "x".repeat(pad)
        )
    };
    let base = body(0).len();

    let fits = app.notify(body(200 - base)).await;
    let over = app.notify(body(201 - base)).await;

    assert_eq!(fits.status(), 200);
    assert_problem(over, 413).await;
    app.stop().await;
}

both_stores!(a_body_just_under_the_limit_is_accepted);

async fn a_nul_character_is_refused_but_kept(backend: Backend) {
    let Some((_db, app)) = app_with_token(backend, "a_nul_character_is_refused_but_kept").await
    else {
        return;
    };
    let body = br#"{"conversationId":"nul-1","status":"failed","reason":"486 Busy\u0000Here","x":{"y":["\u0000"]}}"#;

    let response = app.post(&format!("/notify/{TOKEN}"), body.to_vec()).await;

    let problem = assert_problem(response, 422).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["reason", "x"]);
    assert_rejected_delivery(&app, &problem, body).await;
    app.stop().await;
}

both_stores!(a_nul_character_is_refused_but_kept);
