//! The whole loop on loopback: calltrail places 200 dial-outs through the simulator, which
//! plays the calls and sends their notifications back — duplicated, reordered and with keys
//! respelled — and every call ends in calltrail as the simulator's log says it should.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::dialouts::{Sim, dial, futures_join_all, with_gateway};
use crate::helpers::{assert_counts_match_calls, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, both_stores};

const CALLS: usize = 200;
const ZONE: &str = "Asia/Kolkata";

async fn two_hundred_dialouts_end_as_the_simulator_played_them(backend: Backend) {
    let name = "two_hundred_dialouts_end_as_the_simulator_played_them";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    let zone: chrono_tz::Tz = ZONE.parse().unwrap();
    let sim = Sim::start(|s| {
        s.timezone = zone;
        s.faults.duplicates = 0.3;
        s.faults.reorder = 0.5;
        s.faults.key_variants = 0.2;
        s.seed = Some(2024);
    })
    .await;
    let mut settings = with_gateway(test_settings(&db.url), &sim.base_url());
    settings.notify.timezone = zone;
    let app = spawn_ready(settings).await;
    let modes = [
        Value::Null,
        json!("disabled"),
        json!("detect"),
        json!("disconnect"),
    ];

    // Placed eight at a time.
    let mut placed: HashMap<String, Value> = HashMap::new();
    for chunk in (0..CALLS).collect::<Vec<_>>().chunks(8) {
        let requests = chunk.iter().map(|i| {
            let body = json!({"target": format!("tel:+9198{i:08}"), "caller": "+127061657882",
                "machine_detection": modes[i % modes.len()], "metadata": {"campaign": "e2e", "n": i}});
            let app = &app;
            async move { dial(app, &body, None).await }
        });
        for response in futures_join_all(requests).await {
            assert_eq!(response.status(), 201);
            let dialout: Value = response.json().await.unwrap();
            placed.insert(dialout["sid"].as_str().unwrap().to_owned(), dialout);
        }
    }
    sim.wait_idle().await;

    let entries = sim.entries();
    assert_eq!(entries.len(), CALLS, "the simulator played every call");
    let faults = |what: &dyn Fn(&Value) -> bool| entries.iter().filter(|e| what(e)).count();
    assert!(
        faults(&|e| e["reordered"] == true) > 20,
        "some calls were reordered"
    );
    assert!(
        faults(&|e| e["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["copy"] == true))
            > 20
    );
    let mut outcomes = std::collections::BTreeSet::new();
    for entry in &entries {
        let call_id = entry["call_id"].as_str().unwrap();
        let dialout = &placed[entry["sid"].as_str().unwrap()];
        assert_eq!(dialout["call_id"], call_id);
        for delivery in entry["deliveries"].as_array().unwrap() {
            assert_eq!(delivery["delivered"], true, "{delivery}");
        }
        let call = app.call_json(call_id).await;
        let expected = &entry["expected"];
        for field in [
            "state",
            "outcome",
            "amd_result",
            "reason",
            "reason_code",
            "sip_code",
            "duration_s",
        ] {
            assert_eq!(
                call[field], expected[field],
                "{field} of {call_id}: {entry}\n{call}"
            );
        }
        for field in ["connected_at", "ended_at"] {
            let instant = |v: &Value| {
                v.as_str()
                    .map(|s| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
            };
            assert_eq!(
                instant(&call[field]),
                instant(&expected[field]),
                "{field} of {call_id}"
            );
        }
        assert_eq!(
            call["dialout"]["id"], dialout["id"],
            "{call_id} is correlated with its dial-out"
        );
        assert_eq!(call["dialout"]["target"], entry["target"]);
        outcomes.insert(call["outcome"].as_str().unwrap().to_owned());
    }
    assert!(outcomes.len() >= 6, "a realistic mix: {outcomes:?}");
    let e2e: Value = app
        .get("/v1/stats?metadata.campaign=e2e")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e2e["calls"], CALLS);
    assert_counts_match_calls(&db, &app).await;
    app.stop().await;
    sim.stop().await;
}

both_stores!(two_hundred_dialouts_end_as_the_simulator_played_them);

/// Twilio's `AnsweredBy` has no word for these AMD results: they arrive as `unknown`.
const UNSAID_BY_TWILIO: [&str; 3] = ["amd_no_speech_detected", "amd_error", "amd_stopped"];

async fn jambonz_and_twilio_calls_end_as_the_simulator_played_them(backend: Backend) {
    let name = "jambonz_and_twilio_calls_end_as_played";
    let Some(db) = fresh_db(backend, name).await else {
        return;
    };
    for (source, secret) in [("jambonz", "jamb0nz-s3cret"), ("twilio", "tw1lio-t0ken")] {
        let sim = Sim::start(|s| {
            s.source = calltrail::notification::Format::parse_name(source).unwrap();
            s.signing_secret = Some(calltrail::dialout::Secret::new(secret));
            s.faults.duplicates = 0.3;
            s.faults.reorder = 0.5;
            s.seed = Some(7);
        })
        .await;
        let mut settings = with_gateway(test_settings(&db.url), &sim.base_url());
        settings.jambonz.signing_secrets = vec![calltrail::dialout::Secret::new(secret)];
        settings.twilio.auth_tokens = vec![calltrail::dialout::Secret::new(secret)];
        let app = spawn_ready(settings).await;
        let requests = (0..40).map(|i| {
            let body = json!({"target": format!("tel:+9197{i:08}"), "caller": "+127061657882",
                "machine_detection": "detect", "metadata": {"campaign": source}});
            let app = &app;
            async move { dial(app, &body, None).await }
        });
        for response in futures_join_all(requests).await {
            assert_eq!(response.status(), 201);
        }
        sim.wait_idle().await;

        let entries = sim.entries();
        assert_eq!(entries.len(), 40, "{source}");
        for entry in &entries {
            for delivery in entry["deliveries"].as_array().unwrap() {
                assert_eq!(delivery["delivered"], true, "{source}: {delivery}");
            }
            let call_id = entry["call_id"].as_str().unwrap();
            let call = app.call_json(call_id).await;
            let expected = &entry["expected"];
            assert_eq!(call["source"], source, "{call}");
            assert_eq!(
                call["state"], expected["state"],
                "{source} {call_id}: {entry}\n{call}"
            );
            let unsaid = expected["amd_result"]
                .as_str()
                .is_some_and(|r| UNSAID_BY_TWILIO.contains(&r));
            if source == "jambonz" || !unsaid {
                assert_eq!(
                    call["outcome"], expected["outcome"],
                    "{source} {call_id}: {entry}\n{call}"
                );
            }
        }
        let stats: Value = app
            .get(&format!(
                "/v1/stats?source={source}&metadata.campaign={source}"
            ))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stats["calls"], 40, "{stats}");
        assert_counts_match_calls(&db, &app).await;
        app.stop().await;
        sim.stop().await;
    }
}

both_stores!(jambonz_and_twilio_calls_end_as_the_simulator_played_them);
