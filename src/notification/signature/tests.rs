use proptest::prelude::*;

use super::*;

const JAMBONZ: &str = "Jambonz-Signature";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

// --- `t=…,v1=…` ---------------------------------------------------------------------------
//
// jambonz's SDK tests (jambonz/python-sdk tests/unit/test_webhook.py,
// TestSignatureVerification) sign `{"call_sid":"abc123"}` with `test-secret`, computing the
// HMAC on the fly; the hex below is that computation at t=1700000000, made with Python's
// own `hmac` module, so that this implementation is checked against another one.
const JAMBONZ_BODY: &[u8] = br#"{"call_sid":"abc123"}"#;
const JAMBONZ_T: i64 = 1_700_000_000;
const JAMBONZ_V1: &str = "e9520db5a362abf024162c5dba1422b1ec1bb193247a16a7f07f7760c878d6e8";

fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now: i64,
) -> Result<(), SignatureError> {
    verify_timestamped(JAMBONZ, header, body, secrets, now, DEFAULT_TOLERANCE_S)
}

#[test]
fn the_reference_vector_is_what_signing_gives_and_verifies() {
    let header = format!("t={JAMBONZ_T},v1={JAMBONZ_V1}");
    assert_eq!(
        sign_timestamped("test-secret", JAMBONZ_T, JAMBONZ_BODY),
        header
    );
    assert_eq!(
        verify(Some(&header), JAMBONZ_BODY, &["test-secret"], JAMBONZ_T),
        Ok(())
    );
}

#[test]
fn a_wrong_secret_or_a_tampered_body_is_a_mismatch() {
    let header = sign_timestamped("correct-secret", JAMBONZ_T, JAMBONZ_BODY);
    assert_eq!(
        verify(Some(&header), JAMBONZ_BODY, &["wrong-secret"], JAMBONZ_T),
        Err(SignatureError::Mismatch(JAMBONZ))
    );
    assert_eq!(
        verify(
            Some(&header),
            br#"{"call_sid":"TAMPERED"}"#,
            &["correct-secret"],
            JAMBONZ_T
        ),
        Err(SignatureError::Mismatch(JAMBONZ))
    );
    // A different timestamp in the header is a different MAC too.
    let moved = header.replace(&JAMBONZ_T.to_string(), &(JAMBONZ_T + 1).to_string());
    assert_eq!(
        verify(Some(&moved), JAMBONZ_BODY, &["correct-secret"], JAMBONZ_T),
        Err(SignatureError::Mismatch(JAMBONZ))
    );
}

#[test]
fn the_tolerance_holds_in_both_directions() {
    let header = sign_timestamped("s", JAMBONZ_T, b"x");
    for (now, expected) in [
        (JAMBONZ_T + 300, Ok(())),
        (JAMBONZ_T - 300, Ok(())),
        (
            JAMBONZ_T + 301,
            Err(SignatureError::Stale {
                header: JAMBONZ,
                age_s: 301,
                tolerance_s: 300,
            }),
        ),
        (
            JAMBONZ_T - 600,
            Err(SignatureError::Stale {
                header: JAMBONZ,
                age_s: 600,
                tolerance_s: 300,
            }),
        ),
    ] {
        assert_eq!(
            verify(Some(&header), b"x", &["s"], now),
            expected,
            "now {now}"
        );
    }
    // jambonz's "custom tolerance" case: 400 s old fails at 300 and passes at 600.
    let old = sign_timestamped("secret", JAMBONZ_T - 400, b"test");
    let at = |tolerance| {
        verify_timestamped(
            JAMBONZ,
            Some(&old),
            b"test",
            &["secret"],
            JAMBONZ_T,
            tolerance,
        )
    };
    assert!(matches!(
        at(300),
        Err(SignatureError::Stale { age_s: 400, .. })
    ));
    assert_eq!(at(600), Ok(()));
}

#[test]
fn any_secret_and_any_v1_may_match() {
    let body = b"{}";
    let old = sign_timestamped("old", JAMBONZ_T, body);
    let new = sign_timestamped("new", JAMBONZ_T, body);
    let new_v1 = new.split_once(",v1=").unwrap().1;
    // Rotation on the sender's side: both signatures in one header.
    let both = format!("{old},v1={new_v1}");
    assert_eq!(verify(Some(&both), body, &["new"], JAMBONZ_T), Ok(()));
    // Rotation on ours: several secrets configured.
    assert_eq!(verify(Some(&old), body, &["new", "old"], JAMBONZ_T), Ok(()));
    assert_eq!(
        verify(Some(&old), body, &[] as &[&str], JAMBONZ_T),
        Err(SignatureError::Mismatch(JAMBONZ))
    );
}

#[test]
fn order_spaces_other_schemes_and_bad_hex_are_tolerated() {
    let header = format!(" v0=abc , v1=zz, v1={JAMBONZ_V1} ,t={JAMBONZ_T}");
    assert_eq!(
        verify(Some(&header), JAMBONZ_BODY, &["test-secret"], JAMBONZ_T),
        Ok(())
    );
}

#[test]
fn a_missing_or_unreadable_header_is_refused_with_its_reason() {
    let malformed = |reason| {
        Err(SignatureError::Malformed {
            header: JAMBONZ,
            reason,
        })
    };
    let cases: [(Option<&str>, Result<(), SignatureError>); 8] = [
        (None, Err(SignatureError::Missing(JAMBONZ))),
        (Some("  "), Err(SignatureError::Missing(JAMBONZ))),
        // The cases of jambonz's SDK tests: no t, no v1, garbage, a non-numeric t.
        (Some("v1=abc"), malformed("it has no `t=` part")),
        (Some("t=12345"), malformed("it has no `v1=` part")),
        (Some("garbage"), malformed("it has no `t=` part")),
        (
            Some("t=notanumber,v1=abc"),
            malformed("`t` is not a whole number of seconds"),
        ),
        (
            Some("t=+1,v1=abc"),
            malformed("`t` is not a whole number of seconds"),
        ),
        (Some("t=1,t=2,v1=abc"), malformed("`t` is given twice")),
    ];
    for (header, expected) in cases {
        assert_eq!(
            verify(header, b"test", &["secret"], JAMBONZ_T),
            expected,
            "{header:?}"
        );
    }
}

#[test]
fn messages_name_no_secret() {
    let header = sign_timestamped("hunter2", JAMBONZ_T, b"x");
    let error = verify(Some(&header), b"y", &["hunter2"], JAMBONZ_T).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the Jambonz-Signature header does not match the body"
    );
}

proptest! {
    #[test]
    fn signing_then_verifying_round_trips(
        secret in ".{0,40}",
        body in prop::collection::vec(any::<u8>(), 0..200),
        t in 0_i64..4_000_000_000,
        skew in -300_i64..=300,
    ) {
        let header = sign_timestamped(&secret, t, &body);
        prop_assert_eq!(verify(Some(&header), &body, &[secret.as_str()], t + skew), Ok(()));
    }

    #[test]
    fn any_changed_byte_is_a_mismatch(
        body in prop::collection::vec(any::<u8>(), 1..200),
        index in any::<prop::sample::Index>(),
        flip in 1_u8..=255,
    ) {
        let header = sign_timestamped("s", JAMBONZ_T, &body);
        let mut changed = body.clone();
        changed[index.index(body.len())] ^= flip;
        prop_assert_eq!(
            verify(Some(&header), &changed, &["s"], JAMBONZ_T),
            Err(SignatureError::Mismatch(JAMBONZ))
        );
    }

    #[test]
    fn any_header_text_is_answered_without_panicking(header in ".{0,80}") {
        let _ = verify(Some(&header), b"x", &["s"], JAMBONZ_T);
    }
}

// --- X-Twilio-Signature ---------------------------------------------------------------
//
// Vectors from Twilio's SDK tests: twilio/twilio-python tests/unit/test_request_validator.py
// (ValidationTest: token, URL, parameters and expected signatures).
const TWILIO_TOKEN: &str = "12345";
const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn twilio_params() -> Vec<(String, String)> {
    pairs(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
        ("Caller", "+14158675309"),
    ])
}

fn verify_form(header: &str, url: &str, params: &[(String, String)]) -> Result<(), SignatureError> {
    verify_twilio(Some(header), url, TwilioBody::Form(params), &[TWILIO_TOKEN])
}

#[test]
fn twilio_compute_signature() {
    // test_compute_signature
    assert_eq!(
        twilio_signature(TWILIO_TOKEN, TWILIO_URL, &twilio_params()),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    // test_validation
    assert_eq!(
        verify_form("RSOYDt4T1cUTdK1PDd93/VVr8B8=", TWILIO_URL, &twilio_params()),
        Ok(())
    );
}

#[test]
fn twilio_repeated_names_and_values_are_sorted_and_deduplicated() {
    // test_compute_signature_duplicate_multi_dict
    let params = pairs(&[
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]);
    assert_eq!(
        twilio_signature(TWILIO_TOKEN, TWILIO_URL, &params),
        "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    );
}

#[test]
fn twilio_ports_are_tried_both_ways() {
    let params = twilio_params();
    // test_validation_removes_port_on_https
    let with_port = TWILIO_URL.replace(".com", ".com:1234");
    assert_eq!(
        verify_form("RSOYDt4T1cUTdK1PDd93/VVr8B8=", &with_port, &params),
        Ok(())
    );
    // test_validation_removes_port_on_http: signed with the port kept
    let http_with_port = with_port.replace("https", "http");
    assert_eq!(
        verify_form("Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", &http_with_port, &params),
        Ok(())
    );
    // test_validation_adds_port_on_https: signed with :443
    assert_eq!(
        verify_form("kvajT1Ptam85bY51eRf/AJRuM3w=", TWILIO_URL, &params),
        Ok(())
    );
    // test_validation_adds_port_on_http: signed with :80
    let http = TWILIO_URL.replace("https", "http");
    assert_eq!(
        verify_form("0ZXoZLH/DfblKGATFgpif+LLRf4=", &http, &params),
        Ok(())
    );
}

#[test]
fn twilio_json_bodies_are_signed_through_body_sha256() {
    // test_compute_hash_unicode and test_validation_of_body_succeeds
    let body = br#"{"property": "value", "boolean": true}"#;
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    assert_eq!(hex::encode(Sha256::digest(body)), hash);
    let url = format!("{TWILIO_URL}&bodySHA256={hash}");
    let signature = "a9nBmqA0ju/hNViExpshrM61xv4=";
    let check = |url: &str, body: &[u8]| {
        verify_twilio(Some(signature), url, TwilioBody::Raw(body), &[TWILIO_TOKEN])
    };
    assert_eq!(check(&url, body), Ok(()));
    assert_eq!(
        check(&url, b"{}"),
        Err(SignatureError::Mismatch(TWILIO_HEADER))
    );
    assert_eq!(
        check(TWILIO_URL, body),
        Err(SignatureError::Mismatch(TWILIO_HEADER))
    );
}

#[test]
fn twilio_refuses_what_does_not_match() {
    let params = twilio_params();
    let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    // Another parameter value, another URL, another token, no header, not base64.
    let mut changed = params.clone();
    changed[1].1 = "1235".to_string();
    let mismatch = Err(SignatureError::Mismatch(TWILIO_HEADER));
    assert_eq!(verify_form(good, TWILIO_URL, &changed), mismatch);
    assert_eq!(
        verify_form(good, "https://mycompany.com/myapp.php?foo=1&bar=3", &params),
        mismatch
    );
    assert_eq!(
        verify_twilio(
            Some(good),
            TWILIO_URL,
            TwilioBody::Form(&params),
            &["54321"]
        ),
        mismatch
    );
    assert_eq!(
        verify_twilio(None, TWILIO_URL, TwilioBody::Form(&params), &[TWILIO_TOKEN]),
        Err(SignatureError::Missing(TWILIO_HEADER))
    );
    assert_eq!(
        verify_form("not base64!", TWILIO_URL, &params),
        Err(SignatureError::Malformed {
            header: TWILIO_HEADER,
            reason: "it is not base64"
        })
    );
    // Rotation: the right token among others.
    assert_eq!(
        verify_twilio(
            Some(good),
            TWILIO_URL,
            TwilioBody::Form(&params),
            &["old", TWILIO_TOKEN]
        ),
        Ok(())
    );
}

#[test]
fn url_variants_add_or_drop_the_port() {
    assert_eq!(
        url_variants("https://a.example/x?y=1"),
        ["https://a.example/x?y=1", "https://a.example:443/x?y=1"]
    );
    assert_eq!(
        url_variants("http://a.example"),
        ["http://a.example", "http://a.example:80"]
    );
    assert_eq!(
        url_variants("http://a.example:8080/n"),
        ["http://a.example:8080/n", "http://a.example/n"]
    );
    assert_eq!(url_variants("not a url"), ["not a url"]);
}
