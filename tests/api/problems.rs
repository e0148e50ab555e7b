//! Every refusal is a problem document naming what is at fault: path parameters that do not
//! parse, query parameters, bodies and headers; and every credential presented must be valid.

use reqwest::RequestBuilder;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, TestDb, both_stores};

const TOKEN: &str = "n0tify-t0ken";
const KEY: &str = "api-k3y";

async fn secured_app(backend: Backend, name: &str) -> Option<(TestDb, TestApp)> {
    let db = fresh_db(backend, name).await?;
    let mut settings = test_settings(&db.url);
    settings.notify.tokens = vec![TOKEN.into()];
    settings.api.keys = vec![KEY.into()];
    let app = spawn_ready(settings).await;
    Some((db, app))
}

/// Sends `request` and asserts a `status` problem whose `errors` name `field` alone.
async fn assert_names(request: RequestBuilder, status: u16, field: &str) -> Value {
    let problem = assert_problem(request.send().await.unwrap(), status).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
    assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    problem
}

async fn path_parameters_that_do_not_parse_are_named(backend: Backend) {
    let name = "path_parameters_that_do_not_parse_are_named";
    let Some((_db, app)) = secured_app(backend, name).await else {
        return;
    };
    let get = |path: &str| app.client.get(app.url(path)).header("x-api-key", KEY);

    let problem = assert_names(get("/v1/deliveries/9223372036854775808"), 400, "id").await;
    assert_eq!(problem["type"], "urn:calltrail:problem:invalid-parameter");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`9223372036854775808` is not a whole number"),
        "{problem}"
    );
    assert_names(get("/v1/dialouts/seven"), 400, "id").await;
    let reprocess = app
        .client
        .post(app.url("/v1/deliveries/1.5/reprocess"))
        .header("x-api-key", KEY);
    assert_names(reprocess, 400, "id").await;
    assert_names(get("/v1/calls/%FF%FE"), 400, "conversation_id").await;
    // A well-formed id that names nothing is still a 404.
    assert_problem(
        get("/v1/deliveries/9223372036854775807")
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    app.stop().await;
}

both_stores!(path_parameters_that_do_not_parse_are_named);

async fn query_parameters_and_headers_are_named(backend: Backend) {
    let name = "query_parameters_and_headers_are_named";
    let Some((_db, app)) = secured_app(backend, name).await else {
        return;
    };
    let get = |path: &str| app.client.get(app.url(path)).header("x-api-key", KEY);
    assert_names(get("/v1/calls?limit=0"), 400, "limit").await;
    assert_names(get("/v1/deliveries?cursor=WyJ4Il0"), 400, "cursor").await;
    assert_names(
        get("/v1/dialouts?since=2024-05-02&until=2024-05-01"),
        400,
        "until",
    )
    .await;
    assert_names(
        get("/v1/deliveries?since=2024-05-02T00:00:00Z&until=2024-05-02T00:00:00Z"),
        400,
        "until",
    )
    .await;
    assert_names(
        get("/v1/calls?since=2024-05-02&until=2024-05-01"),
        400,
        "until",
    )
    .await;
    // An empty value is as if absent.
    let empty = get("/v1/calls?limit=&state=&since=").send().await.unwrap();
    assert_eq!(empty.status(), 200);

    let dialout = |key: &str| {
        app.client
            .post(app.url("/v1/dialouts"))
            .header("x-api-key", KEY)
            .header("idempotency-key", key)
            .body(r#"{"target": "tel:911234567890", "caller": "+1"}"#)
    };
    let problem = assert_names(dialout(&"k".repeat(256)), 400, "Idempotency-Key").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("1 to 255 printable ASCII characters"),
        "{problem}"
    );
    assert_names(dialout("a\tb"), 400, "Idempotency-Key").await;
    app.stop().await;
}

both_stores!(query_parameters_and_headers_are_named);

async fn bodies_that_are_not_json_or_too_large_are_problems(backend: Backend) {
    let name = "bodies_that_are_not_json_or_too_large_are_problems";
    let Some((_db, app)) = secured_app(backend, name).await else {
        return;
    };
    let dialout = |body: Vec<u8>| {
        app.client
            .post(app.url("/v1/dialouts"))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(body)
    };

    let malformed = dialout(b"{\"target\": ".to_vec()).send().await.unwrap();
    let problem = assert_problem(malformed, 400).await;
    assert_eq!(problem["type"], "urn:calltrail:problem:malformed-body");
    assert!(
        problem["detail"].as_str().unwrap().contains("not JSON"),
        "{problem}"
    );

    let large = dialout(vec![b' '; (2 << 20) + 1]).send().await.unwrap();
    let problem = assert_problem(large, 413).await;
    assert_eq!(problem["type"], "urn:calltrail:problem:body-too-large");
    app.stop().await;
}

both_stores!(bodies_that_are_not_json_or_too_large_are_problems);

async fn a_wrong_api_key_is_refused_beside_a_right_one(backend: Backend) {
    let name = "a_wrong_api_key_is_refused_beside_a_right_one";
    let Some((_db, app)) = secured_app(backend, name).await else {
        return;
    };
    let get = || app.client.get(app.url("/v1/calls"));

    let refused = [
        get().header("x-api-key", KEY).bearer_auth("wrong"),
        get().bearer_auth(KEY).header("x-api-key", "wrong"),
        get().header("x-api-key", KEY).basic_auth("user", Some(KEY)),
        get()
            .header("x-api-key", KEY)
            .header("authorization", "Bearer"),
    ];
    for request in refused {
        let problem = assert_problem(request.send().await.unwrap(), 401).await;
        assert_eq!(problem["type"], "urn:calltrail:problem:unauthorized");
    }
    let both = get().bearer_auth(KEY).header("x-api-key", KEY);
    assert_eq!(both.send().await.unwrap().status(), 200);
    app.stop().await;
}

both_stores!(a_wrong_api_key_is_refused_beside_a_right_one);

async fn a_wrong_notify_token_is_refused_beside_a_right_one(backend: Backend) {
    let name = "a_wrong_notify_token_is_refused_beside_a_right_one";
    let Some((_db, app)) = secured_app(backend, name).await else {
        return;
    };
    let sample = fixture("samples/01-completed-human.json");
    let post = |path: &str| app.client.post(app.url(path)).body(sample.clone());

    let refused = [
        post(&format!("/notify/{TOKEN}")).header("x-calltrail-token", "wrong"),
        post("/notify?token=wrong").header("x-calltrail-token", TOKEN),
        post(&format!("/notify?token={TOKEN}&token=wrong")),
        post(&format!("/notify?token={TOKEN}")).bearer_auth("wrong"),
        post("/notify/wrong").bearer_auth(TOKEN),
    ];
    for request in refused {
        let problem = assert_problem(request.send().await.unwrap(), 401).await;
        assert_eq!(problem["type"], "urn:calltrail:problem:unauthorized");
    }
    // Nothing refused was stored.
    let deliveries = app
        .client
        .get(app.url("/v1/deliveries"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let page: Value = deliveries.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 0, "{page}");

    let agreeing = post(&format!("/notify/{TOKEN}?token={TOKEN}"))
        .bearer_auth(TOKEN)
        .header("x-calltrail-token", TOKEN);
    assert_eq!(agreeing.send().await.unwrap().status(), 200);
    app.stop().await;
}

both_stores!(a_wrong_notify_token_is_refused_beside_a_right_one);
