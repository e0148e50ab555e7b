//! jambonz and Twilio notifications spooled while the database is away: checked (token,
//! signature) before they are spooled, replayed through their own source's normalizer, and
//! stored as they would have been without the outage.

use calltrail::dialout::Secret;
use calltrail::notification::signature::{sign_timestamped, twilio_signature};
use calltrail::notification::twilio::form_pairs;
use serde_json::Value;

use crate::helpers::{TestApp, fixture, fresh_db, spawn_ready, test_settings, with_spool};
use crate::metrics::sample;
use crate::spool::{scrape, wait_drained};
use crate::support::Backend;
use crate::support::proxy::{Proxy, url_parts};

const JAMBONZ_SECRET: &str = "jamb0nz-secret";
const TWILIO_TOKEN: &str = "tw1lio-auth-token";
const PUBLIC_URL: &str = "https://calltrail.example.com";
const JAMBONZ_CALL: &str = "9b5c8f2e-3d41-4b7a-a6e0-1f2c3d4e5f60";
const TWILIO_CALL: &str = "CA9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c";

/// One answered call from each gateway, in the order it sent them.
fn notifications() -> Vec<(&'static str, String)> {
    let jambonz = [
        "01-trying.json",
        "02-ringing.json",
        "03-in-progress.json",
        "04-amd-machine.json",
        "05-completed.json",
    ]
    .map(|name| ("/jambonz/notify", fixture(&format!("jambonz/{name}"))));
    let twilio = [
        "01-initiated.form",
        "02-ringing.form",
        "03-in-progress-human.form",
        "04-completed.form",
        "09-amd-async-machine.form",
    ]
    .map(|name| ("/twilio/notify", fixture(&format!("twilio/{name}"))));
    jambonz.into_iter().chain(twilio).collect()
}

fn signed_settings(database_url: &str) -> calltrail::config::Settings {
    let mut settings = test_settings(database_url);
    settings.jambonz.signing_secrets = vec![Secret::new(JAMBONZ_SECRET)];
    settings.twilio.auth_tokens = vec![Secret::new(TWILIO_TOKEN)];
    settings.twilio.public_url = format!("{PUBLIC_URL}/");
    settings
}

/// Posts `body` to `path` signed as its gateway would, or with a wrong signature.
async fn post_signed(app: &TestApp, path: &str, body: &str, right: bool) -> (u16, Value) {
    let request = app.client.post(app.url(path)).body(body.to_string());
    let request = if path.starts_with("/jambonz") {
        let secret = if right {
            JAMBONZ_SECRET
        } else {
            "not-the-secret"
        };
        let signature = sign_timestamped(secret, chrono::Utc::now().timestamp(), body.as_bytes());
        request
            .header("content-type", "application/json")
            .header("Jambonz-Signature", signature)
    } else {
        let token = if right { TWILIO_TOKEN } else { "not-the-token" };
        let url = format!("{PUBLIC_URL}{path}");
        let signature = twilio_signature(token, &url, &form_pairs(body.as_bytes()));
        request
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The two calls, minus what depends on when the test ran.
async fn calls(app: &TestApp) -> Vec<Value> {
    let mut calls = Vec::new();
    for id in [JAMBONZ_CALL, TWILIO_CALL] {
        let mut call = app.call_json(id).await;
        let call_ = call.as_object_mut().unwrap();
        for time in ["first_seen_at", "last_seen_at", "occurred_at"] {
            call_.remove(time);
        }
        for event in call_["events"].as_array_mut().unwrap() {
            let event = event.as_object_mut().unwrap();
            event.remove("id");
            event.remove("received_at");
        }
        calls.push(call);
    }
    calls
}

/// Each delivery's source, result and whether it was spooled, oldest first.
async fn deliveries(app: &TestApp) -> Vec<(String, String, bool)> {
    let page: Value = app
        .get("/v1/deliveries?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let mut deliveries: Vec<(String, String, bool)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["source"].as_str().unwrap().to_owned(),
                d["result"].as_str().unwrap().to_owned(),
                !d["spooled_at"].is_null(),
            )
        })
        .collect();
    deliveries.reverse();
    deliveries
}

#[tokio::test]
async fn jambonz_and_twilio_spooled_during_a_cut_end_as_without_it() {
    let name = "jambonz_and_twilio_spooled_during_a_cut";
    let (Some(db), Some(reference_db)) = (
        fresh_db(Backend::Postgres, name).await,
        fresh_db(Backend::Postgres, name).await,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut url = url_parts(&db.url);
    let mut proxy = Proxy::start(url.addr).await;
    url.addr = proxy.listen;
    let app = spawn_ready(with_spool(signed_settings(&url.to_string()), dir.path())).await;

    proxy.cut();
    let mut answers = Vec::new();
    for (path, body) in notifications() {
        answers.push(post_signed(&app, path, &body, true).await);
    }
    let forged_jambonz = post_signed(
        &app,
        "/jambonz/notify",
        &fixture("jambonz/06-busy.json"),
        false,
    )
    .await;
    let forged_twilio = post_signed(
        &app,
        "/twilio/notify",
        &fixture("twilio/05-busy.form"),
        false,
    )
    .await;
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    proxy.restore().await;
    wait_drained(&app).await;
    let metrics = scrape(&app).await;
    let calls_after_cut = calls(&app).await;
    let deliveries_after_cut = deliveries(&app).await;
    app.stop().await;

    let reference = spawn_ready(signed_settings(&reference_db.url)).await;
    for (path, body) in notifications() {
        let (status, receipt) = post_signed(&reference, path, &body, true).await;
        assert_eq!((status, &receipt["result"]), (200, &"accepted".into()));
    }
    let reference_calls = calls(&reference).await;
    reference.stop().await;

    for (status, receipt) in &answers {
        assert_eq!(*status, 200, "{receipt}");
        assert_eq!(receipt["result"], "spooled", "{receipt}");
    }
    for (status, problem) in [&forged_jambonz, &forged_twilio] {
        assert_eq!(*status, 401, "{problem}");
        assert_eq!(problem["type"], "urn:calltrail:problem:bad-signature");
    }
    assert_eq!(ready["accepting"], "spool");
    assert_eq!(
        ready["spool"]["depth"], 10,
        "a forged notification is not spooled"
    );

    let [jambonz, twilio] = &calls_after_cut[..] else {
        panic!("two calls");
    };
    assert_eq!(
        (&jambonz["source"], &jambonz["state"], &jambonz["outcome"]),
        (&"jambonz".into(), &"completed".into(), &"machine".into())
    );
    assert_eq!(
        (&twilio["source"], &twilio["state"], &twilio["outcome"]),
        (&"twilio".into(), &"completed".into(), &"machine".into())
    );
    assert_eq!(calls_after_cut, reference_calls);

    let expected: Vec<(String, String, bool)> = notifications()
        .iter()
        .map(|(path, _)| {
            let source = path.split('/').nth(1).unwrap();
            (source.to_owned(), "accepted".to_owned(), true)
        })
        .collect();
    assert_eq!(deliveries_after_cut, expected);

    for source in ["jambonz", "twilio"] {
        let labels = |result: &str| format!(r#"source="{source}",result="{result}""#);
        let count = |name: &str, result: &str| sample(&metrics, name, &labels(result));
        assert_eq!(count("calltrail_notifications_total", "spooled"), Some(5.0));
        assert_eq!(
            count("calltrail_notifications_total", "bad_signature"),
            Some(1.0)
        );
        // A write under way when the database went away may have committed after all: the
        // replay finds it stored and leaves it at that.
        let replayed = ["accepted", "already_stored"]
            .map(|result| count("calltrail_spool_replayed_total", result).unwrap_or(0.0));
        assert_eq!(replayed.iter().sum::<f64>(), 5.0, "{replayed:?}");
        let ended = format!(r#"source="{source}",outcome="machine""#);
        assert_eq!(
            sample(&metrics, "calltrail_calls_ended_total", &ended),
            Some(1.0),
            "a call the replay ends is counted as it ends"
        );
    }
}
