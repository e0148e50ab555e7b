//! When the database cannot be reached: 503 with Retry-After, nothing half-written, and
//! recovery without a restart.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    TestApp, assert_problem, fixture, fresh_db, spawn, spawn_ready, test_settings,
};
use crate::support::Backend;
use crate::support::proxy::{Proxy, url_parts};

async fn assert_unavailable(app: &TestApp, body: &str) {
    let readyz = app.get("/readyz").await;
    assert_eq!(readyz.status(), 503);
    let response = app.notify(body.to_owned()).await;
    assert_eq!(response.headers()["retry-after"], "5");
    let problem = assert_problem(response, 503).await;
    assert!(problem.get("delivery_id").is_none());
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the process itself is alive"
    );
}

#[tokio::test]
async fn an_unreachable_database_gives_503_with_retry_after() {
    let app = spawn(test_settings("postgres://postgres@127.0.0.1:9/calltrail")).await;

    assert_unavailable(&app, &fixture("samples/01-completed-human.json")).await;
    app.stop().await;
}

#[tokio::test]
async fn a_database_that_goes_away_and_comes_back() {
    let Some(db) = fresh_db(
        Backend::Postgres,
        "a_database_that_goes_away_and_comes_back",
    )
    .await
    else {
        return;
    };
    let mut url = url_parts(&db.url);
    let mut proxy = Proxy::start(url.addr).await;
    url.addr = proxy.listen;
    let app = spawn_ready(test_settings(&url.to_string())).await;
    let before = fixture("samples/01-completed-human.json");
    let during = fixture("samples/05-failed-486-busy.json");
    let after = fixture("samples/03-completed-amd-disabled.json");
    assert_eq!(app.notify(before).await.status(), 200);

    proxy.cut();
    assert_unavailable(&app, &during).await;

    proxy.restore().await;
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "calltrail recovers by itself");
    let receipt: Value = app.notify(after).await.json().await.unwrap();
    assert_eq!(receipt["result"], "accepted");
    let missing = app
        .get("/v1/calls/80af8588-31c7-4877-a798-a3603c30xxxx")
        .await;
    assert_eq!(
        missing.status(),
        404,
        "nothing of the refused notification was written"
    );
    app.stop().await;
}

/// Pooled connections are not pinged when reused at once (the writer takes one per batch),
/// but one that sat idle is: a server that restarted while calltrail was idle costs no
/// notification a 503.
#[tokio::test]
async fn a_restart_while_idle_costs_no_notification() {
    let name = "a_restart_while_idle_costs_no_notification";
    let Some(db) = fresh_db(Backend::Postgres, name).await else {
        return;
    };
    let mut url = url_parts(&db.url);
    let mut proxy = Proxy::start(url.addr).await;
    url.addr = proxy.listen;
    let app = spawn_ready(test_settings(&url.to_string())).await;
    let first = app.notify(fixture("samples/01-completed-human.json")).await;
    assert_eq!(first.status(), 200);

    // Every pooled connection dies; the server is back before the next notification.
    proxy.cut();
    proxy.restore().await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let response = app
        .notify(fixture("samples/03-completed-amd-disabled.json"))
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    app.stop().await;
}
