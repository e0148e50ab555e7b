//! `GET /v1/calls/export`: CSV and NDJSON, filtered like the list, spreadsheet-safe.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{fresh_db, spawn_ready, test_settings};
use crate::seed::{post_all, seeds};
use crate::support::{Backend, both_stores};

async fn exports_match_the_list_in_both_formats(backend: Backend) {
    let Some(db) = fresh_db(backend, "exports_match_the_list_in_both_formats").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    // Failed calls take one notification each; more than one export page of them.
    let seeds = seeds(2700, "2026-11-20T18:00:00Z".parse().unwrap());
    let few: Vec<_> = seeds.iter().filter(|s| s.failed()).cloned().collect();
    assert!(few.len() > 1000);
    post_all(&app, &few).await;
    let listed: Value = app
        .get("/v1/calls?limit=1000&outcome=busy,declined")
        .await
        .json()
        .await
        .unwrap();

    let ndjson = app
        .get("/v1/calls/export?format=ndjson&outcome=busy,declined")
        .await;
    assert_eq!(ndjson.status(), 200);
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = ndjson
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        *listed["data"].as_array().unwrap(),
        "the export holds the list's calls"
    );

    let all = app.get("/v1/calls/export").await;
    assert_eq!(all.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        all.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("calls.csv")
    );
    let csv = all.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows.len(),
        few.len() + 1,
        "a header and one row per call, across export pages"
    );
    assert!(
        rows[0].starts_with("conversation_id,state,status,outcome,reason_code,reason,sip_code")
    );
    let newest = &few[0];
    assert!(rows[1].starts_with(&format!(
        "{},{},{},{}",
        newest.id,
        newest.state(),
        newest.state(),
        newest.outcome()
    )));
    app.stop().await;
}

both_stores!(exports_match_the_list_in_both_formats);

async fn formula_cells_are_escaped(backend: Backend) {
    let Some(db) = fresh_db(backend, "formula_cells_are_escaped").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let at: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap();
    let hostile = [
        ("=HYPERLINK(\"http://x\")", "+1 Busy"),
        ("@SUM(A1)", "-2 Gone"),
        ("plain-id", "=cmd|' /C calc'!A0"),
    ];
    for (i, (id, reason)) in hostile.iter().enumerate() {
        let body = json!({"conversationId": id, "status": "failed", "reason": reason,
            "callDisconnectTime": (at + chrono::Duration::minutes(i as i64)).to_rfc3339()});
        assert_eq!(app.notify(body.to_string()).await.status(), 200);
    }

    let csv = app
        .get("/v1/calls/export?format=csv")
        .await
        .text()
        .await
        .unwrap();

    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cells: Vec<(&str, &str)> = rows.iter().map(|r| (&r[0], &r[5])).collect();
    assert_eq!(
        cells,
        [
            ("plain-id", "'=cmd|' /C calc'!A0"),
            ("'@SUM(A1)", "'-2 Gone"),
            ("'=HYPERLINK(\"http://x\")", "'+1 Busy"),
        ],
    );
    app.stop().await;
}

both_stores!(formula_cells_are_escaped);
