//! Bodies that cannot become an event: not a JSON object, or fields that break docs/api.md,
//! "Receiving".

use serde_json::json;

use super::parse;
use crate::notification::{FieldError, NormalizeSettings, Rejection};

fn invalid(conversation_id: Option<&str>, errors: &[(&str, &str)]) -> Rejection {
    Rejection::Invalid {
        conversation_id: conversation_id.map(str::to_string),
        errors: errors
            .iter()
            .map(|(field, message)| FieldError {
                field: field.to_string(),
                message: message.to_string(),
            })
            .collect(),
    }
}

#[test]
fn fields_that_break_the_contract_are_all_reported() {
    let long = "x".repeat(257);
    let cases = [
        (
            json!({}),
            invalid(
                None,
                &[("conversationId", "is required"), ("status", "is required")],
            ),
        ),
        (
            json!({"conversationId": null, "status": null}),
            invalid(
                None,
                &[("conversationId", "is required"), ("status", "is required")],
            ),
        ),
        (
            json!({"conversationId": 42, "status": "completed"}),
            invalid(
                None,
                &[("conversationId", "must be a string, got a number")],
            ),
        ),
        (
            json!({"conversationId": "  ", "status": ""}),
            invalid(
                None,
                &[
                    ("conversationId", "must not be empty"),
                    ("status", "must not be empty"),
                ],
            ),
        ),
        (
            json!({"conversationId": long, "status": "completed"}),
            invalid(
                None,
                &[("conversationId", "must be at most 256 characters, got 257")],
            ),
        ),
        (
            json!({"conversationId": "a\u{0}b", "status": "completed"}),
            invalid(
                None,
                &[("conversationId", "must not contain control characters")],
            ),
        ),
        (
            json!({"conversationId": "c-1", "status": ["completed"]}),
            invalid(Some("c-1"), &[("status", "must be a string, got an array")]),
        ),
        (
            json!({
                "conversation_id": " c-1 ",
                "status": "failed",
                "reasonCode": 486,
                "reason": {"code": 486},
                "duration": true,
                "machinedetection": false,
                "callconnecttime": [],
                "callDisconnectTime": {},
            }),
            invalid(
                Some("c-1"),
                &[
                    ("reasonCode", "must be a string, got a number"),
                    ("reason", "must be a string, got an object"),
                    (
                        "duration",
                        "must be a number or a string holding one, got a boolean",
                    ),
                    ("machinedetection", "must be a string, got a boolean"),
                    (
                        "callconnecttime",
                        "must be a string or a number, got an array",
                    ),
                    (
                        "callDisconnectTime",
                        "must be a string or a number, got an object",
                    ),
                ],
            ),
        ),
        (
            json!({"conversationId": "a", "conversation_id": "b", "status": "failed", "Status": "failed"}),
            invalid(
                None,
                &[(
                    "conversationId",
                    "is given twice with different values, as `conversationId` and `conversation_id`",
                )],
            ),
        ),
        (
            json!({"conversationId": "c-1", "status": "failed", "call_connect_time": 1, "CallConnectTime": 2}),
            invalid(
                Some("c-1"),
                &[(
                    "callconnecttime",
                    "is given twice with different values, as `CallConnectTime` and `call_connect_time`",
                )],
            ),
        ),
    ];
    for (body, expected) in cases {
        let got = parse(body.to_string().as_bytes(), &NormalizeSettings::default());
        assert_eq!(got, Err(expected), "{body}");
    }
}

#[test]
fn ids_are_counted_in_characters_not_bytes() {
    let id = "é".repeat(256);
    let body = json!({"conversationId": id, "status": "completed"}).to_string();
    let notification = parse(body.as_bytes(), &NormalizeSettings::default()).unwrap();
    assert_eq!(notification.event.conversation_id, id);
}

#[test]
fn bodies_that_are_not_json_objects_are_malformed() {
    let cases: [(&[u8], &str); 9] = [
        (
            b"",
            "body is not valid JSON: EOF while parsing a value at line 1 column 0",
        ),
        (
            b"{\"status\":",
            "body is not valid JSON: EOF while parsing a value at line 1 column 10",
        ),
        (
            b"status=completed",
            "body is not valid JSON: expected value at line 1 column 1",
        ),
        (
            b"\xff",
            "body is not valid JSON: expected value at line 1 column 1",
        ),
        (b"[]", "body must be a JSON object, not an array"),
        (b"\"x\"", "body must be a JSON object, not a string"),
        (b"14", "body must be a JSON object, not a number"),
        (b"true", "body must be a JSON object, not a boolean"),
        (b"null", "body must be a JSON object, not null"),
    ];
    for (body, message) in cases {
        let got = parse(body, &NormalizeSettings::default());
        assert_eq!(
            got,
            Err(Rejection::Malformed(message.to_string())),
            "{body:?}"
        );
    }
}
