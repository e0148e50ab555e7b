//! `GET /v1/calls`: every filter, combined, against calls whose records are known, and
//! keyset pagination that neither skips nor repeats while notifications keep arriving.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, fresh_db, spawn_ready, test_settings};
use crate::seed::{Kind, Seed, api_order, post_all, seeds};
use crate::support::{Backend, both_stores};

fn newest() -> DateTime<Utc> {
    "2026-11-20T18:00:00Z".parse().unwrap()
}

/// The conversation ids of one page.
fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn get_page(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/v1/calls?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

async fn every_filter_matches_an_independent_selection(backend: Backend) {
    let name = "every_filter_matches_an_independent_selection";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let seeds = seeds(44, newest());
    post_all(&app, &seeds).await;
    let day_start: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
    let in_day = |s: &Seed| s.at >= day_start && s.at < day_start + Duration::days(1);
    type Pick<'a> = Box<dyn Fn(&Seed) -> bool + 'a>;
    let cases: Vec<(&str, Pick)> = vec![
        ("", Box::new(|_| true)),
        ("state=failed", Box::new(|s| s.failed())),
        ("state=in_progress,completed", Box::new(|s| !s.failed())),
        ("outcome=machine", Box::new(|s| s.kind == Kind::Machine)),
        (
            "outcome=busy&outcome=declined",
            Box::new(|s| matches!(s.kind, Kind::Busy | Kind::Declined)),
        ),
        (
            "amd_result=amd_human_detected",
            Box::new(|s| s.kind == Kind::Human),
        ),
        ("amd_result=none", Box::new(|s| s.amd_result().is_none())),
        (
            "amd_result=AMD_NO_SPEECH_DETECTED,none",
            Box::new(|s| s.kind == Kind::NoSpeech || s.amd_result().is_none()),
        ),
        (
            "reason_code=Busy%20Here",
            Box::new(|s| s.kind == Kind::Busy),
        ),
        (
            "reason_code=savg-disconnected,request-terminated",
            Box::new(|s| matches!(s.kind, Kind::Machine | Kind::NoAnswer)),
        ),
        (
            "sip_code=503&sip_code=404",
            Box::new(|s| matches!(s.kind, Kind::Unavailable | Kind::Failed)),
        ),
        ("since=2026-11-20", Box::new(move |s| s.at >= day_start)),
        (
            "until=2026-11-20T00:00:00Z",
            Box::new(move |s| s.at < day_start),
        ),
        ("since=2026-11-20&until=2026-11-21", Box::new(in_day)),
        ("q=call-001", Box::new(|s| s.id.starts_with("call-001"))),
        ("q=CALL", Box::new(|_| false)),
        (
            "min_duration=50",
            Box::new(|s| s.expected_duration().is_some_and(|d| d >= 50)),
        ),
        (
            "max_duration=20",
            Box::new(|s| s.expected_duration().is_some_and(|d| d <= 20)),
        ),
        (
            "min_duration=10&max_duration=60&state=completed",
            Box::new(|s| {
                !s.failed() && s.kind != Kind::InProgress && (10..=60).contains(&s.duration_s)
            }),
        ),
        (
            "outcome=human,machine&since=2026-11-20&amd_result=amd_machine_detected",
            Box::new(move |s| s.kind == Kind::Machine && s.at >= day_start),
        ),
    ];

    for (query, pick) in cases {
        let page = get_page(&app, &format!("{query}&limit=1000")).await;

        let mut expected: Vec<&Seed> = seeds.iter().filter(|s| pick(s)).collect();
        api_order(&mut expected);
        let expected: Vec<&str> = expected.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids(&page), expected, "{query}");
        assert_eq!(page["next_cursor"], Value::Null, "{query}");
    }
    let one = get_page(&app, "q=call-0007").await;
    let seed = &seeds[7];
    let call = &one["data"][0];
    assert_eq!(call["outcome"], seed.outcome());
    assert_eq!(call["state"], seed.state());
    assert_eq!(call["sip_code"].as_i64(), seed.sip_code());
    assert_eq!(
        call["occurred_at"],
        seed.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    let detail = app.call_json(&seed.id).await;
    for key in call.as_object().unwrap().keys() {
        assert_eq!(
            detail[key], call[key],
            "{key}: the list and the detail agree"
        );
    }
    app.stop().await;
}

both_stores!(every_filter_matches_an_independent_selection);

async fn bad_filters_are_400_naming_the_parameter(backend: Backend) {
    let Some(db) = fresh_db(backend, "bad_filters_are_400_naming_the_parameter").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let cases = [
        ("/v1/calls?state=done", "state", "in_progress"),
        ("/v1/calls?limit=1001", "limit", "1 to 1000"),
        ("/v1/calls?since=last%20week", "since", "YYYY-MM-DD"),
        ("/v1/calls?cursor=bogus", "cursor", "cursor"),
        ("/v1/calls?colour=red", "colour", "accepted: state"),
        ("/v1/stats?bucket=week", "bucket", "hour, day"),
        ("/v1/stats?tz=Mars/Olympus", "tz", "IANA"),
        ("/v1/calls/export?format=xlsx", "format", "csv, ndjson"),
        (
            "/v1/deliveries?result=lost",
            "result",
            "accepted, duplicate, rejected",
        ),
    ];
    for (path, parameter, accepted) in cases {
        let problem = assert_problem(app.get(path).await, 400).await;

        assert_eq!(problem["errors"][0]["field"], parameter, "{path}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(parameter) && detail.contains(accepted),
            "{path}: {detail}"
        );
    }
    app.stop().await;
}

both_stores!(bad_filters_are_400_naming_the_parameter);

async fn pages_neither_skip_nor_repeat_while_calls_arrive(backend: Backend) {
    let name = "pages_neither_skip_nor_repeat_while_calls_arrive";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let seeded = seeds(60, newest());
    post_all(&app, &seeded).await;
    // New calls keep arriving while the pages are read: newer, older and in between.
    let writer = {
        let client = app.client.clone();
        let url = app.url("/notify");
        tokio::spawn(async move {
            for i in 0..60 {
                let at = newest() + Duration::minutes(90) - Duration::minutes(61 * i);
                let seed = Seed::new(format!("late-{i:03}"), Kind::Human, at, 30);
                for body in seed.notifications() {
                    let response = client
                        .post(&url)
                        .body(body.to_string())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                }
            }
        })
    };

    let mut seen = Vec::new();
    let mut query = "limit=7".to_owned();
    for _ in 0..100 {
        let page = get_page(&app, &query).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=7&cursor={cursor}"),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();

    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no call repeated");
    for seed in &seeded {
        assert!(unique.contains(&seed.id), "{} skipped", seed.id);
    }
    let mut sorted = seen.clone();
    let order: Vec<(String, String)> = {
        let all = get_page(&app, "limit=1000").await;
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["occurred_at"].as_str().unwrap().to_owned(),
                    c["conversation_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    sorted.sort_by_key(|id| order.iter().position(|(_, c)| c == id));
    assert_eq!(seen, sorted, "pages come newest first");
    app.stop().await;
}

both_stores!(pages_neither_skip_nor_repeat_while_calls_arrive);

async fn every_v1_endpoint_requires_the_api_key(backend: Backend) {
    let Some(db) = fresh_db(backend, "every_v1_endpoint_requires_the_api_key").await else {
        return;
    };
    let mut settings = test_settings(&db.url);
    settings.api.keys = vec!["k3y".into()];
    let app = spawn_ready(settings).await;
    post_all(&app, &seeds(3, newest())).await;
    let endpoints = [
        ("GET", "/v1/calls"),
        ("GET", "/v1/calls/call-0001"),
        ("GET", "/v1/calls/export"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/deliveries"),
        ("GET", "/v1/deliveries/1"),
        ("POST", "/v1/deliveries/1/reprocess"),
        ("POST", "/v1/deliveries/reprocess"),
    ];
    for (method, path) in endpoints {
        let request = |key: Option<(&str, &str)>| {
            let builder = app.client.request(method.parse().unwrap(), app.url(path));
            match key {
                Some((header, value)) => builder.header(header, value),
                None => builder,
            }
        };

        let missing = request(None).send().await.unwrap();
        let wrong = request(Some(("authorization", "Bearer nope")))
            .send()
            .await
            .unwrap();
        let bearer = request(Some(("authorization", "Bearer k3y")))
            .send()
            .await
            .unwrap();
        let header = request(Some(("x-api-key", "k3y"))).send().await.unwrap();

        assert_problem(missing, 401).await;
        assert_problem(wrong, 401).await;
        assert_eq!(bearer.status(), 200, "{method} {path}");
        assert_eq!(header.status(), 200, "{method} {path}");
    }
    app.stop().await;
}

both_stores!(every_v1_endpoint_requires_the_api_key);
