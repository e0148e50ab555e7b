//! `GET /v1/stats`: figures checked against values computed here from the seeds, and
//! buckets in a zone with daylight-saving time and one with a half-hour offset.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_counts_match_calls, fresh_db, lose_some_counts, spawn_ready, test_settings,
};
use crate::seed::{KINDS, Kind, Seed, post_all, seeds};
use crate::support::{Backend, both_stores};

async fn stats(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/v1/stats?{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().unwrap()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

async fn figures_match_independent_counts(backend: Backend) {
    let Some(db) = fresh_db(backend, "figures_match_independent_counts").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let seeds = seeds(57, "2026-11-20T18:00:00Z".parse().unwrap());
    post_all(&app, &seeds).await;

    for (query, pick) in [
        ("", Box::new(|_: &Seed| true) as Box<dyn Fn(&Seed) -> bool>),
        (
            "state=completed",
            Box::new(|s: &Seed| s.state() == "completed"),
        ),
        (
            "since=2026-11-20",
            Box::new(|s: &Seed| s.at >= "2026-11-20T00:00:00Z".parse::<DateTime<Utc>>().unwrap()),
        ),
        // Whole days from the statistics tables, the ends of the range from the calls.
        (
            "since=2026-11-19T10:00:00Z&until=2026-11-21",
            Box::new(|s: &Seed| s.at >= at("2026-11-19T10:00:00Z")),
        ),
        (
            "since=2026-11-18&until=2026-11-20T12:30:00Z&amd_result=none,amd_human_detected",
            Box::new(|s: &Seed| {
                s.at < at("2026-11-20T12:30:00Z")
                    && matches!(s.amd_result(), None | Some("amd_human_detected"))
            }),
        ),
        (
            "since=2026-11-19T07:00:00Z&until=2026-11-20T18:00:00Z&state=completed",
            Box::new(|s: &Seed| {
                (at("2026-11-19T07:00:00Z")..at("2026-11-20T18:00:00Z")).contains(&s.at)
                    && s.state() == "completed"
            }),
        ),
    ] {
        let picked: Vec<&Seed> = seeds.iter().filter(|s| pick(s)).collect();
        let got = stats(&app, query).await;

        let n = picked.len() as f64;
        let count = |f: &dyn Fn(&Seed) -> bool| picked.iter().filter(|s| f(s)).count();
        assert_eq!(got["calls"], picked.len(), "{query}");
        for kind in KINDS {
            let outcome = Seed::new("x", kind, Utc::now(), 1).outcome();
            let expected = count(&|s| s.outcome() == outcome);
            assert_eq!(got["by_outcome"][outcome], expected, "{query} {outcome}");
        }
        for state in ["completed", "failed", "in_progress", "unknown"] {
            assert_eq!(
                got["by_state"][state],
                count(&|s| s.state() == state),
                "{query} {state}"
            );
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for seed in &picked {
            if let Some(code) = seed.reason_code() {
                *reasons.entry(code).or_default() += 1;
            }
        }
        assert_eq!(got["by_reason_code"], json!(reasons), "{query}");
        assert_eq!(
            got["by_amd_result"]["amd_machine_detected"],
            count(&|s| s.kind == Kind::Machine)
        );
        let answered = count(&|s| s.connected_at().is_some()) as f64;
        let with_amd = count(&|s| s.amd_result().is_some()) as f64;
        let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
        assert_eq!(
            got["answer_rate"].as_f64(),
            Some(round(answered / n)),
            "{query}"
        );
        assert_eq!(
            got["human_rate"].as_f64(),
            Some(round(count(&|s| s.kind == Kind::Human) as f64 / with_amd))
        );
        assert_eq!(
            got["machine_rate"].as_f64(),
            Some(round(count(&|s| s.kind == Kind::Machine) as f64 / with_amd))
        );
        let mut durations: Vec<i64> = picked
            .iter()
            .filter_map(|s| s.expected_duration())
            .collect();
        durations.sort_unstable();
        let avg = durations.iter().sum::<i64>() as f64 / durations.len() as f64;
        assert_eq!(
            got["duration_s"]["avg"].as_f64(),
            Some((avg * 100.0).round() / 100.0),
            "{query}"
        );
        assert_eq!(
            got["duration_s"]["p50"],
            percentile(&durations, 0.5),
            "{query}"
        );
        assert_eq!(
            got["duration_s"]["p95"],
            percentile(&durations, 0.95),
            "{query}"
        );
        assert_eq!(
            got["duration_s"]["max"],
            *durations.last().unwrap(),
            "{query}"
        );
        let histogram = got["duration_histogram"].as_array().expect("a histogram");
        for bin in histogram {
            let (min, max) = (bin["min_s"].as_i64().unwrap(), bin["max_s"].as_i64());
            let expected = durations
                .iter()
                .filter(|d| **d >= min && max.is_none_or(|max| **d < max))
                .count();
            assert_eq!(bin["calls"], expected, "{query}: {bin}");
        }
        assert_eq!(histogram.last().unwrap()["max_s"], Value::Null);
        assert!(got.get("buckets").is_none());
    }
    let empty = stats(&app, "outcome=no_answer&state=completed").await;
    assert_eq!(empty["calls"], 0);
    assert_eq!(
        empty["answer_rate"],
        Value::Null,
        "a zero denominator is null"
    );
    assert_eq!(empty["human_rate"], Value::Null);
    assert_eq!(
        empty["duration_s"],
        json!({"avg": null, "p50": null, "p95": null, "max": null})
    );
    assert_counts_match_calls(&db, &app).await;

    // Calls the statistics tables do not count (written around calltrail): the next start
    // refills them.
    let month = "since=2026-11-01&until=2026-12-01&bucket=hour&tz=America/New_York";
    let before = stats(&app, month).await;
    app.stop().await;
    lose_some_counts(&db).await;
    let app = spawn_ready(test_settings(&db.url)).await;
    assert_eq!(stats(&app, month).await, before);
    assert_counts_match_calls(&db, &app).await;
    app.stop().await;
}

both_stores!(figures_match_independent_counts);

async fn two_instances_count_one_quarter_hour_exactly(backend: Backend) {
    let name = "two_instances_count_one_quarter_hour_exactly";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let first = spawn_ready(test_settings(&db.url)).await;
    let second = spawn_ready(test_settings(&db.url)).await;
    // 120 calls a few seconds apart: every write lands on the same few rows of counts.
    let newest: DateTime<Utc> = "2026-11-20T18:14:00Z".parse().unwrap();
    let calls: Vec<Seed> = (0..120)
        .map(|i| {
            let kind = KINDS[i % KINDS.len()];
            let at = newest - chrono::Duration::seconds(7 * i as i64);
            Seed::new(format!("q-{i:03}"), kind, at, (i as i64 * 5) % 40 + 1)
        })
        .collect();
    let mut posts = tokio::task::JoinSet::new();
    for (i, seed) in calls.iter().enumerate() {
        let mut notifications = seed.notifications();
        if i % 3 == 0 {
            notifications.reverse();
        }
        for (j, body) in notifications.into_iter().enumerate() {
            let app = if (i + j) % 2 == 0 { &first } else { &second };
            let request = app.client.post(app.url("/notify")).body(body.to_string());
            posts.spawn(async move { request.send().await.unwrap().status() });
        }
    }
    for status in posts.join_all().await {
        assert_eq!(status, 200);
    }

    assert_counts_match_calls(&db, &first).await;
    let got = stats(&first, "since=2026-11-20&until=2026-11-21").await;
    assert_eq!(got["calls"], 120);
    for state in ["completed", "failed", "in_progress", "unknown"] {
        let expected = calls.iter().filter(|s| s.state() == state).count();
        assert_eq!(got["by_state"][state], expected, "{state}: {got}");
    }
    first.stop().await;
    second.stop().await;
}

both_stores!(two_instances_count_one_quarter_hour_exactly);

async fn day_buckets_follow_the_zone_across_a_dst_change(backend: Backend) {
    let name = "day_buckets_follow_the_zone_across_a_dst_change";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    // New York leaves daylight time on 2026-11-01 at 02:00 EDT: that day lasts 25 hours.
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    let calls = [
        Seed::new("a", Kind::Human, at("2026-11-01T03:59:59Z"), 10), // Oct 31, 23:59:59 EDT
        Seed::new("b", Kind::Busy, at("2026-11-01T04:00:00Z"), 0),   // Nov 1, 00:00 EDT
        Seed::new("c", Kind::Machine, at("2026-11-02T04:59:59Z"), 5), // Nov 1, 23:59:59 EST
        Seed::new("d", Kind::Human, at("2026-11-02T05:00:00Z"), 8),  // Nov 2, 00:00 EST
    ];
    post_all(&app, &calls).await;

    let got = stats(
        &app,
        "bucket=day&tz=America/New_York&since=2026-10-31&until=2026-11-04",
    )
    .await;

    let buckets = got["buckets"].as_array().unwrap();
    let starts: Vec<&str> = buckets
        .iter()
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2026-10-31T00:00:00-04:00",
            "2026-11-01T00:00:00-04:00",
            "2026-11-02T00:00:00-05:00",
            "2026-11-03T00:00:00-05:00"
        ]
    );
    let counts: Vec<i64> = buckets
        .iter()
        .map(|b| b["calls"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2, 1, 0], "empty buckets are listed too");
    assert_eq!(buckets[1]["by_outcome"]["busy"], 1);
    assert_eq!(buckets[1]["by_outcome"]["machine"], 1);
    assert_eq!(got["calls"], 4);
    app.stop().await;
}

both_stores!(day_buckets_follow_the_zone_across_a_dst_change);

async fn hour_buckets_in_a_half_hour_zone(backend: Backend) {
    let Some(db) = fresh_db(backend, "hour_buckets_in_a_half_hour_zone").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
    let calls = [
        Seed::new("a", Kind::Human, at("2026-11-20T04:29:59Z"), 10), // 09:59:59 IST
        Seed::new("b", Kind::Declined, at("2026-11-20T04:30:00Z"), 0), // 10:00 IST
        Seed::new("c", Kind::Human, at("2026-11-20T06:45:00Z"), 8),  // 12:15 IST
    ];
    post_all(&app, &calls).await;

    let got = stats(&app, "bucket=hour&tz=Asia/Kolkata").await;

    let buckets = got["buckets"].as_array().unwrap();
    let summary: Vec<(&str, i64)> = buckets
        .iter()
        .map(|b| (b["start"].as_str().unwrap(), b["calls"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("2026-11-20T09:00:00+05:30", 1),
            ("2026-11-20T10:00:00+05:30", 1),
            ("2026-11-20T11:00:00+05:30", 0),
            ("2026-11-20T12:00:00+05:30", 1),
        ],
        "without since/until the buckets span the calls"
    );
    app.stop().await;
}

both_stores!(hour_buckets_in_a_half_hour_zone);

/// A completed, answered Kore call at `at` (UTC) that rang `ring_ms`, with an AMD result.
fn rang(id: &str, at: &str, ring_ms: i64, amd: &str) -> String {
    let at = at.parse::<DateTime<Utc>>().unwrap();
    let time = |t: DateTime<Utc>| t.format("%-m/%-d/%Y,%I:%M:%S%p").to_string();
    json!({
        "conversationId": id,
        "status": "completed",
        "reasonCode": "caller-disconnected",
        "duration": 20,
        "machinedetection": amd,
        "ringDurationInMS": ring_ms,
        "callconnecttime": time(at),
        "callDisconnectTime": time(at + chrono::Duration::seconds(20)),
    })
    .to_string()
}

async fn time_to_answer_over_whole_and_partial_days(backend: Backend) {
    let Some(db) = fresh_db(backend, "time_to_answer_over_days").await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    // Two calls on a whole day of the range (read from the statistics tables), three on
    // its last, partial day (read from the calls), one outside it.
    let calls = [
        rang("t-1", "2026-11-18T10:00:00Z", 1_000, "amd_human_detected"),
        rang("t-2", "2026-11-18T11:00:00Z", 3_040, "amd_machine_detected"),
        rang("t-3", "2026-11-20T08:00:00Z", 2_000, "amd_human_detected"),
        rang("t-4", "2026-11-20T09:00:00Z", 2_960, "amd_human_detected"),
        rang("t-5", "2026-11-20T10:00:00Z", 9_000, "amd_human_detected"),
        rang("t-6", "2026-11-20T13:00:00Z", 60_000, "amd_human_detected"),
    ];
    for body in calls {
        assert_eq!(app.notify(body).await.status(), 200);
    }
    let range = "since=2026-11-17T12:00:00Z&until=2026-11-20T12:00:00Z";

    let all = stats(&app, range).await;
    let narrowed = stats(&app, &format!("{range}&outcome=human")).await;

    // Ring times at 100 ms: 1000, 3000, 2000, 3000, 9000.
    assert_eq!(
        all["time_to_answer"],
        json!({"calls": 5, "avg_ms": 3600.0, "p50_ms": 3000, "p90_ms": 9000, "p99_ms": 9000}),
        "{all}"
    );
    // Human calls only: 1000, 2000, 3000, 9000.
    assert_eq!(
        narrowed["time_to_answer"],
        json!({"calls": 4, "avg_ms": 3750.0, "p50_ms": 2000, "p90_ms": 9000, "p99_ms": 9000})
    );
    let none = stats(&app, "outcome=busy").await;
    assert_eq!(
        none["time_to_answer"],
        json!({"calls": 0, "avg_ms": null, "p50_ms": null, "p90_ms": null, "p99_ms": null})
    );
    assert_counts_match_calls(&db, &app).await;
    app.stop().await;
}

both_stores!(time_to_answer_over_whole_and_partial_days);
