//! Signed notifications: each source's signature required once its secrets are set, over
//! the raw body, fail-closed, with nothing stored for a refused body.

use calltrail::dialout::Secret;
use calltrail::notification::signature::{sign_timestamped, twilio_signature};
use calltrail::notification::twilio::form_pairs;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, fixture, fresh_db, spawn_ready, test_settings};
use crate::support::{Backend, TestDb, both_stores};

const KORE_SECRET: &str = "k0re-secret";
const JAMBONZ_SECRET: &str = "jamb0nz-secret";
const TWILIO_TOKEN: &str = "tw1lio-auth-token";
const PUBLIC_URL: &str = "https://calltrail.example.com";

async fn signed_app(backend: Backend, name: &str) -> Option<(TestDb, TestApp)> {
    let db = fresh_db(backend, name).await?;
    let mut settings = test_settings(&db.url);
    settings.notify.signing_secrets = vec![Secret::new(KORE_SECRET)];
    // Rotation: the old and the new secret both accepted.
    settings.jambonz.signing_secrets = vec![Secret::new("old-secret"), Secret::new(JAMBONZ_SECRET)];
    settings.twilio.auth_tokens = vec![Secret::new(TWILIO_TOKEN)];
    settings.twilio.public_url = format!("{PUBLIC_URL}/");
    let app = spawn_ready(settings).await;
    Some((db, app))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn post(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

async fn delivery_count(app: &TestApp) -> usize {
    let deliveries: Value = app.get("/v1/deliveries").await.json().await.unwrap();
    deliveries["data"].as_array().unwrap().len()
}

async fn refused(response: reqwest::Response, detail: &str) {
    let problem = assert_problem(response, 401).await;
    assert_eq!(problem["type"], "urn:calltrail:problem:bad-signature");
    assert_eq!(problem["detail"], detail, "{problem}");
}

async fn t_v1_signatures_are_required_and_checked(backend: Backend) {
    let Some((_db, app)) = signed_app(backend, "t_v1_signatures_are_required_and_checked").await
    else {
        return;
    };
    let kore = fixture("samples/05-failed-486-busy.json");
    let jambonz = fixture("jambonz/06-busy.json");
    for (path, header, secret, body) in [
        ("/notify", "SAVG-Signature", KORE_SECRET, &kore),
        (
            "/jambonz/notify",
            "Jambonz-Signature",
            JAMBONZ_SECRET,
            &jambonz,
        ),
    ] {
        let stored_before = delivery_count(&app).await;
        let missing = post(&app, path, &[], body).await;
        refused(missing, &format!("the {header} header is missing")).await;

        let wrong_secret = sign_timestamped("not-the-secret", now(), body.as_bytes());
        let wrong = post(&app, path, &[(header, wrong_secret)], body).await;
        refused(
            wrong,
            &format!("the {header} header does not match the body"),
        )
        .await;

        let signed = sign_timestamped(secret, now(), body.as_bytes());
        let tampered = body.replace("486", "487");
        let changed = post(&app, path, &[(header, signed.clone())], &tampered).await;
        refused(
            changed,
            &format!("the {header} header does not match the body"),
        )
        .await;

        // An old body replayed with its old, valid signature.
        let old = sign_timestamped(secret, now() - 3600, body.as_bytes());
        let replayed = post(&app, path, &[(header, old)], body).await;
        let problem = assert_problem(replayed, 401).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("the {header} timestamp is 3")),
            "{detail}"
        );
        assert!(detail.ends_with("more than the 300 s allowed"), "{detail}");

        // Ahead of our clock by more than the tolerance: refused too.
        let ahead = sign_timestamped(secret, now() + 900, body.as_bytes());
        assert_problem(post(&app, path, &[(header, ahead)], body).await, 401).await;

        let stored = delivery_count(&app).await;
        assert_eq!(
            stored, stored_before,
            "{path}: nothing stored for a refused body"
        );

        let accepted = post(&app, path, &[(header, signed)], body).await;
        assert_eq!(accepted.status(), 200, "{path}");
    }
    // The jambonz secret being rotated out still works.
    let body = fixture("jambonz/07-no-answer.json");
    let old_secret = sign_timestamped("old-secret", now(), body.as_bytes());
    let response = post(
        &app,
        "/jambonz/notify",
        &[("Jambonz-Signature", old_secret)],
        &body,
    )
    .await;
    assert_eq!(response.status(), 200);
    // A source's secret does not sign another source's endpoint.
    let body = fixture("samples/04-failed-503.json");
    let cross = sign_timestamped(JAMBONZ_SECRET, now(), body.as_bytes());
    assert_problem(
        post(&app, "/notify", &[("SAVG-Signature", cross)], &body).await,
        401,
    )
    .await;
    assert_eq!(delivery_count(&app).await, 3);
    app.stop().await;
}

both_stores!(t_v1_signatures_are_required_and_checked);

async fn twilio_signatures_cover_the_public_url_and_the_form(backend: Backend) {
    let Some((_db, app)) = signed_app(backend, "twilio_signatures_cover_the_public_url").await
    else {
        return;
    };
    let body = fixture("twilio/05-busy.form");
    let params = form_pairs(body.as_bytes());
    let header = "X-Twilio-Signature";

    refused(
        post(&app, "/twilio/notify", &[], &body).await,
        "the X-Twilio-Signature header is missing",
    )
    .await;
    // Signed for the address calltrail listens on, not the public URL Twilio calls.
    let local = twilio_signature(TWILIO_TOKEN, &app.url("/twilio/notify"), &params);
    refused(
        post(&app, "/twilio/notify", &[(header, local)], &body).await,
        "the X-Twilio-Signature header does not match the body",
    )
    .await;
    let signed = twilio_signature(
        TWILIO_TOKEN,
        &format!("{PUBLIC_URL}/twilio/notify"),
        &params,
    );
    let tampered = body.replace("CallStatus=busy", "CallStatus=completed");
    refused(
        post(
            &app,
            "/twilio/notify",
            &[(header, signed.clone())],
            &tampered,
        )
        .await,
        "the X-Twilio-Signature header does not match the body",
    )
    .await;
    assert_eq!(delivery_count(&app).await, 0);

    let accepted = post(&app, "/twilio/notify", &[(header, signed)], &body).await;
    assert_eq!(accepted.status(), 200);
    // The query string and a path token are part of what Twilio signs.
    let body = fixture("twilio/06-no-answer.form");
    let params = form_pairs(body.as_bytes());
    let url = format!("{PUBLIC_URL}/twilio/notify/tok?campaign=spring");
    let signed = twilio_signature(TWILIO_TOKEN, &url, &params);
    let response = post(
        &app,
        "/twilio/notify/tok?campaign=spring",
        &[(header, signed)],
        &body,
    )
    .await;
    assert_eq!(response.status(), 200);
    app.stop().await;
}

both_stores!(twilio_signatures_cover_the_public_url_and_the_form);
