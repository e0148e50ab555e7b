//! Retention: old calls go with their events, deliveries and dial-outs, the statistics stay
//! those of a database that never held them, and rejected deliveries keep a cutoff of
//! their own.

use std::time::Duration;

use calltrail::metrics::Metrics;
use calltrail::retention::{Cutoffs, Retention, RetentionSettings};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::dialouts::{Sim, dial, with_gateway};
use crate::helpers::{TestApp, assert_counts_match_calls, fresh_db, spawn_ready, test_settings};
use crate::seed::{Seed, post_all, seeds};
use crate::support::{Backend, both_stores};

async fn json_of(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// `count` seeded calls named `{prefix}-N`, the newest at `newest`.
fn named(prefix: &str, count: usize, newest: DateTime<Utc>) -> Vec<Seed> {
    seeds(count, newest)
        .into_iter()
        .enumerate()
        .map(|(i, seed)| Seed {
            id: format!("{prefix}-{i:04}"),
            ..seed
        })
        .collect()
}

/// A call answered after ringing `ring_ms` and completed a minute later, as Kore.ai's newer
/// notifications tell it: the two bodies, in order.
fn rung(id: &str, at: DateTime<Utc>, ring_ms: i64) -> [String; 2] {
    let connect = at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let end = (at + TimeDelta::seconds(60))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    [
        json!({"conversationId": id, "status": "Answered", "reasonCode": "OK",
               "callconnecttime": connect, "ringDurationInMS": ring_ms})
        .to_string(),
        json!({"conversationId": id, "status": "completed", "reasonCode": "caller-disconnected",
               "callDuration": 60, "machineDetection": "amd_human_detected",
               "callconnecttime": connect, "callDisconnectTime": end,
               "ringDurationInMS": ring_ms})
        .to_string(),
    ]
}

async fn post_rung(app: &TestApp, prefix: &str, at: DateTime<Utc>) {
    for (i, ring_ms) in [4_200, 7_750].into_iter().enumerate() {
        for body in rung(&format!("{prefix}-rung-{i}"), at, ring_ms) {
            let response = app.notify(body).await;
            assert_eq!(response.status(), 200);
        }
    }
}

/// `(result, conversation_id)` of every delivery, newest first.
async fn deliveries(app: &TestApp) -> Vec<(String, Option<String>)> {
    let page = json_of(app, "/v1/deliveries?limit=500").await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["result"].as_str().unwrap().to_owned(),
                d["conversation_id"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// What one store keeps of the seeds: the new calls, a duplicate of one of their
/// notifications, and a body that is rejected.
async fn post_kept(app: &TestApp, new: &[Seed]) {
    post_all(app, new).await;
    let again = app.notify(new[0].notifications()[0].to_string()).await;
    assert_eq!(again.status(), 200);
    let rejected = app.notify(r#"{"status":"failed"}"#).await;
    assert!(
        matches!(rejected.status().as_u16(), 400 | 422),
        "{}",
        rejected.status()
    );
}

async fn a_start_deletes_old_calls_and_the_statistics_forget_them(backend: Backend) {
    let name = "a_start_deletes_old_calls_and_the_statistics_forget_them";
    let (Some(db), Some(reference)) =
        (fresh_db(backend, name).await, fresh_db(backend, name).await)
    else {
        return;
    };
    let now = Utc::now();
    let old = named("old", 33, now - TimeDelta::days(200));
    let new = named("new", 33, now - TimeDelta::days(2));
    let app = spawn_ready(test_settings(&db.url)).await;
    post_all(&app, &old).await;
    post_rung(&app, "old", now - TimeDelta::days(200)).await;
    let again = app.notify(old[1].notifications()[0].to_string()).await;
    assert_eq!(again.status(), 200);
    post_kept(&app, &new).await;
    post_rung(&app, "new", now - TimeDelta::days(2)).await;
    app.stop().await;
    let never_held = spawn_ready(test_settings(&reference.url)).await;
    post_kept(&never_held, &new).await;
    post_rung(&never_held, "new", now - TimeDelta::days(2)).await;

    let mut settings = test_settings(&db.url);
    settings.retention.days = Some(30);
    settings.retention.batch_size = 7;
    settings.metrics.public = true;
    let app = spawn_ready(settings).await;
    // The seeds' notifications and the two rung calls' four.
    let old_notifications: usize = old.iter().map(|s| s.notifications().len()).sum::<usize>() + 4;
    let expected = [
        r#"calltrail_retention_deleted_total{kind="calls"} 35"#.to_owned(),
        format!(r#"calltrail_retention_deleted_total{{kind="events"}} {old_notifications}"#),
        format!(
            r#"calltrail_retention_deleted_total{{kind="deliveries"}} {}"#,
            old_notifications + 1
        ),
    ];
    let mut metrics = String::new();
    for _ in 0..300 {
        metrics = app.get("/metrics").await.text().await.unwrap();
        if expected.iter().all(|line| metrics.contains(line.as_str())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for line in &expected {
        assert!(metrics.contains(line.as_str()), "{line} in\n{metrics}");
    }
    assert!(
        !metrics.contains(r#"kind="rejected_deliveries""#),
        "{metrics}"
    );

    for seed in &old {
        let response = app.get(&format!("/v1/calls/{}", seed.id)).await;
        assert_eq!(response.status(), 404, "{}", seed.id);
    }
    let listed = json_of(&app, "/v1/calls?limit=500").await;
    let mut ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected_ids: Vec<&str> = new.iter().map(|s| s.id.as_str()).collect();
    expected_ids.extend(["new-rung-0", "new-rung-1"]);
    expected_ids.sort_unstable();
    assert_eq!(ids, expected_ids);
    assert_eq!(deliveries(&app).await, deliveries(&never_held).await);
    let (from, until) = (now - TimeDelta::days(400), now + TimeDelta::days(1));
    let range = format!(
        "since={}&until={}",
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        until.format("%Y-%m-%dT%H:%M:%SZ")
    );
    for query in [
        String::new(),
        range.clone(),
        format!("{range}&bucket=day"),
        format!("{range}&bucket=hour&tz=America/New_York&state=completed"),
        format!("{range}&outcome=human,machine&min_duration=10"),
    ] {
        assert_eq!(
            json_of(&app, &format!("/v1/stats?{query}")).await,
            json_of(&never_held, &format!("/v1/stats?{query}")).await,
            "{query}"
        );
    }
    // The time to answer is that of the two kept rung calls alone.
    let stats = json_of(&app, "/v1/stats").await;
    assert_eq!(stats["time_to_answer"]["calls"], 2, "{stats}");
    assert_eq!(stats["time_to_answer"]["p99_ms"], 7_800, "{stats}");
    assert_counts_match_calls(&db, &app).await;
    app.stop().await;
    never_held.stop().await;
}

both_stores!(a_start_deletes_old_calls_and_the_statistics_forget_them);

async fn rejected_deliveries_have_a_cutoff_of_their_own(backend: Backend) {
    let name = "rejected_deliveries_have_a_cutoff_of_their_own";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let app = spawn_ready(test_settings(&db.url)).await;
    let new = named("new", 5, Utc::now() - TimeDelta::hours(1));
    post_kept(&app, &new).await;
    let before = deliveries(&app).await;
    let retention = Retention::new(
        app.store.clone(),
        &RetentionSettings::default(),
        Metrics::new(),
    );
    let month_ago = Utc::now() - TimeDelta::days(30);

    // Received now: younger than a day.
    let removed = retention
        .run_once(Cutoffs {
            calls: Some(month_ago),
            rejected: Some(Utc::now() - TimeDelta::days(1)),
        })
        .await
        .unwrap();
    assert_eq!(removed, Default::default());
    assert_eq!(deliveries(&app).await, before);

    // Rejected deliveries older than their cutoff go; calls younger than theirs stay, with
    // their deliveries.
    let removed = retention
        .run_once(Cutoffs {
            calls: Some(month_ago),
            rejected: Some(Utc::now() + TimeDelta::seconds(1)),
        })
        .await
        .unwrap();
    assert_eq!(removed.rejected_deliveries, 1);
    assert_eq!(removed.calls.calls, 0);
    let rejected = json_of(&app, "/v1/deliveries?result=rejected").await;
    assert_eq!(rejected["data"], json!([]));
    let kept: Vec<_> = before
        .into_iter()
        .filter(|(r, _)| r != "rejected")
        .collect();
    assert_eq!(deliveries(&app).await, kept);
    assert_eq!(json_of(&app, "/v1/stats").await["calls"], 5);
    app.stop().await;
}

both_stores!(rejected_deliveries_have_a_cutoff_of_their_own);

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn dialouts_follow_their_calls(backend: Backend) {
    let name = "dialouts_follow_their_calls";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let sim = Sim::start(|_| {}).await;
    let app = spawn_ready(with_gateway(test_settings(&db.url), &sim.base_url())).await;
    let body = json!({"target": "tel:911234567890", "caller": "+127061657882",
        "metadata": {"sim_outcome": "human"}});
    let placed: Value = dial(&app, &body, None).await.json().await.unwrap();
    sim.wait_idle().await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call_json(&call_id).await["conversation_id"],
        call_id.as_str()
    );
    // A dial-out the gateway never took: no call belongs to it.
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let down = spawn_ready(with_gateway(test_settings(&db.url), &unreachable)).await;
    let problem: Value = dial(&down, &body, None).await.json().await.unwrap();
    let failed = json!({"id": problem["dialout_id"]});
    down.stop().await;
    let retention = Retention::new(
        app.store.clone(),
        &RetentionSettings::default(),
        Metrics::new(),
    );

    let removed = retention
        .run_once(Cutoffs {
            calls: Some(Utc::now() - TimeDelta::days(1)),
            rejected: None,
        })
        .await
        .unwrap();
    assert_eq!(removed, Default::default());
    for dialout in [&placed, &failed] {
        let path = format!("/v1/dialouts/{}", dialout["id"]);
        assert_eq!(app.get(&path).await.status(), 200);
    }

    let removed = retention
        .run_once(Cutoffs {
            calls: Some(Utc::now() + TimeDelta::minutes(1)),
            rejected: None,
        })
        .await
        .unwrap();
    assert_eq!(
        (
            removed.calls.calls,
            removed.calls.dialouts,
            removed.unclaimed_dialouts
        ),
        (1, 1, 1)
    );
    assert_eq!(app.get(&format!("/v1/calls/{call_id}")).await.status(), 404);
    for dialout in [&placed, &failed] {
        let path = format!("/v1/dialouts/{}", dialout["id"]);
        assert_eq!(app.get(&path).await.status(), 404);
    }
    assert_eq!(json_of(&app, "/v1/dialouts").await["data"], json!([]));
    assert_eq!(json_of(&app, "/v1/deliveries").await["data"], json!([]));
    assert_counts_match_calls(&db, &app).await;
    app.stop().await;
    sim.stop().await;
}

both_stores!(dialouts_follow_their_calls);
