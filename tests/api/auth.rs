//! Notification tokens and API keys, from every place a client may put them.

use crate::helpers::{TestApp, assert_problem, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const TOKEN: &str = "n0tify-t0ken";
const KEY: &str = "api-k3y";

async fn secured_app(backend: Backend, name: &str) -> Option<(crate::support::TestDb, TestApp)> {
    let db = fresh_db(backend, name).await?;
    let mut settings = test_settings(&db.url);
    settings.notify.tokens = vec!["another-token".into(), TOKEN.into()];
    settings.api.keys = vec![KEY.into()];
    let app = spawn_ready(settings).await;
    Some((db, app))
}

async fn a_token_is_accepted_from_each_place(backend: Backend) {
    let Some((_db, app)) = secured_app(backend, "a_token_is_accepted_from_each_place").await else {
        return;
    };
    let body = |n: usize| format!(r#"{{"conversationId":"auth-{n}","status":"answered"}}"#);
    let requests = [
        app.client.post(app.url(&format!("/notify/{TOKEN}"))),
        app.client.post(app.url(&format!("/notify?token={TOKEN}"))),
        app.client.post(app.url("/notify")).bearer_auth(TOKEN),
        app.client
            .post(app.url("/notify"))
            .header("X-Calltrail-Token", TOKEN),
    ];

    for (n, request) in requests.into_iter().enumerate() {
        // No content type at all: a body that parses is accepted whatever it is labelled.
        let response = request.body(body(n)).send().await.unwrap();

        assert_eq!(response.status(), 200, "token place {n}");
        let receipt: serde_json::Value = response.json().await.unwrap();
        assert_eq!(receipt["result"], "accepted");
    }
    app.stop().await;
}

both_stores!(a_token_is_accepted_from_each_place);

async fn the_api_requires_a_key_when_keys_are_configured(backend: Backend) {
    let name = "the_api_requires_a_key_when_keys_are_configured";
    let Some((_db, app)) = secured_app(backend, name).await else {
        return;
    };
    let sample = fixture("samples/05-failed-486-busy.json");
    assert_eq!(
        app.post(&format!("/notify/{TOKEN}"), sample).await.status(),
        200
    );
    let path = app.url("/v1/calls/80af8588-31c7-4877-a798-a3603c30xxxx");

    let missing = app.client.get(&path).send().await.unwrap();
    let wrong = app
        .client
        .get(&path)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    let token_is_not_a_key = app
        .client
        .get(&path)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let bearer = app.client.get(&path).bearer_auth(KEY).send().await.unwrap();
    let header = app
        .client
        .get(&path)
        .header("X-Api-Key", KEY)
        .send()
        .await
        .unwrap();

    for refused in [missing, wrong, token_is_not_a_key] {
        assert_problem(refused, 401).await;
    }
    for allowed in [bearer, header] {
        assert_eq!(allowed.status(), 200);
        let call: serde_json::Value = allowed.json().await.unwrap();
        assert_eq!(call["outcome"], "busy");
    }
    app.stop().await;
}

both_stores!(the_api_requires_a_key_when_keys_are_configured);

async fn health_is_open_and_every_answer_is_json(backend: Backend) {
    let Some((_db, app)) = secured_app(backend, "health_is_open_and_every_answer_is_json").await
    else {
        return;
    };

    let healthz = app.get("/healthz").await;
    let readyz = app.get("/readyz").await;
    let unknown = app.get("/nowhere").await;
    let wrong_method = app.get("/notify").await;

    assert_eq!(healthz.status(), 200);
    assert_eq!(
        healthz.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    assert_eq!(readyz.status(), 200);
    let ready: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["database"],
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    assert_problem(unknown, 404).await;
    assert_problem(wrong_method, 405).await;
    app.stop().await;
}

both_stores!(health_is_open_and_every_answer_is_json);
