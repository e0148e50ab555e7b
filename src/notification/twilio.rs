//! Twilio call status callbacks (`StatusCallback`) and asynchronous answering-machine-
//! detection callbacks (`AsyncAmdStatusCallback`) (docs/api.md, "Twilio").
//!
//! Both are `application/x-www-form-urlencoded` bodies, read whatever the `Content-Type`.
//! The stored payload is the form as a JSON object of strings (a name given several times:
//! an array of its values), so that duplicates are found the same way as for JSON sources.

use chrono::{DateTime, Duration, Utc};

use crate::notification::Format;
use serde_json::{Map, Value};

use super::checks::{Reader, or_warn};
use super::normalize;
use super::{
    AmdResult, Event, NormalizeSettings, Notification, Rejection, Stage, Status, content_hash, time,
};

/// The status of an AMD callback, which carries none: a result means the call is up.
const AMD_CALLBACK_STATUS: Status = Status::InProgress;

/// Parses and normalizes one Twilio callback body.
pub fn parse(body: &[u8], settings: &NormalizeSettings) -> Result<Notification, Rejection> {
    let payload = Value::Object(form_object(body)?);
    let object = payload.as_object().expect("an object");
    let event = check(object)?.normalize(settings);
    let content_hash = content_hash(&payload);
    Ok(Notification {
        event,
        payload,
        content_hash,
    })
}

/// The decoded name/value pairs of a form body, in order (what Twilio's signature covers).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn form_object(body: &[u8]) -> Result<Map<String, Value>, Rejection> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Rejection::Malformed("body is not UTF-8 text".to_string()))?;
    if !text.contains('=') {
        return Err(Rejection::Malformed(
            "body is not a form (`name=value&…`), as Twilio's callbacks are".to_string(),
        ));
    }
    let mut object = Map::new();
    for (name, value) in form_pairs(body) {
        match object.get_mut(&name) {
            None => {
                object.insert(name, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                object.insert(name, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    Ok(object)
}

/// The fields calltrail reads, each a single string.
struct Checked<'a> {
    call_sid: &'a str,
    call_status: Option<&'a str>,
    call_duration: Option<&'a Value>,
    sip_response_code: Option<&'a Value>,
    timestamp: Option<&'a str>,
    answered_by: Option<&'a str>,
}

fn check(object: &Map<String, Value>) -> Result<Checked<'_>, Rejection> {
    let mut reader = Reader::new(object);
    let call_sid = reader.conversation_id("CallSid");
    let answered_by = reader
        .string("AnsweredBy")
        .filter(|text| !text.trim().is_empty());
    // The AMD callback carries no status; a status callback must.
    let call_status = if answered_by.is_some() {
        reader.string("CallStatus").filter(|s| !s.trim().is_empty())
    } else {
        reader.required_string("CallStatus")
    };
    let call_duration = reader.scalar("CallDuration");
    let sip_response_code = reader.scalar("SipResponseCode");
    let timestamp = reader.string("Timestamp");
    let call_sid = reader.finish(call_sid)?;
    Ok(Checked {
        call_sid,
        call_status,
        call_duration,
        sip_response_code,
        timestamp,
        answered_by,
    })
}

/// Twilio's `AnsweredBy` values as calltrail's AMD results (docs/api.md, "Twilio").
pub fn answered_by(value: &str) -> Option<AmdResult> {
    Some(match value.trim().to_ascii_lowercase().as_str() {
        "human" => AmdResult::HumanDetected,
        "machine_start" => AmdResult::MachineDetected,
        "machine_end_beep" | "fax" => AmdResult::ToneDetected,
        "machine_end_silence" | "machine_end_other" => AmdResult::MachineStoppedSpeaking,
        "unknown" => AmdResult::DecisionTimeout,
        _ => return None,
    })
}

impl Checked<'_> {
    fn normalize(&self, settings: &NormalizeSettings) -> Event {
        let mut warnings = Vec::new();

        let known = self.call_status.map(Status::recognize);
        let status = match (self.call_status, known.flatten()) {
            (None, _) => AMD_CALLBACK_STATUS.as_str().to_string(),
            (Some(_), Some(known)) => known.as_str().to_string(),
            (Some(text), None) => {
                let status = text.trim().to_lowercase();
                warnings.push(format!(
                    "unknown CallStatus `{status}`: stored, but it does not change the call's state"
                ));
                status
            }
        };

        let amd_result = self.answered_by.and_then(|value| {
            let result = answered_by(value);
            if result.is_none() {
                warnings.push(format!(
                    "unknown AnsweredBy `{}`: stored, but no answering-machine result was read from it",
                    value.trim()
                ));
            }
            result
        });

        let sip_code = or_warn(&mut warnings, self.sip_response_code, |v| {
            normalize::sip_status("SipResponseCode", v)
        });
        let duration_s = or_warn(&mut warnings, self.call_duration, |v| {
            normalize::whole_number("CallDuration", v)
        });
        let at = self
            .timestamp
            .filter(|t| !t.trim().is_empty())
            .and_then(|text| {
                read_timestamp(text, settings)
                    .map_err(|warning| warnings.push(warning))
                    .ok()
            });

        // The callback's time is when its status began: the answer for an answered call,
        // the end for an ended one (whose answer is then its duration earlier).
        let stage = Status::recognize(&status).map(Status::stage);
        let (connect_time, disconnect_time) = match (stage, at) {
            (Some(Stage::Up), Some(at)) => (Some(at), None),
            (Some(Stage::Completed), Some(at)) => {
                let answered = duration_s.and_then(|s| at.checked_sub_signed(Duration::seconds(s)));
                (answered, Some(at))
            }
            (Some(Stage::Failed), Some(at)) => (None, Some(at)),
            _ => (None, None),
        };

        Event {
            conversation_id: self.call_sid.to_string(),
            source: Format::Twilio,
            status,
            reason_code: None,
            reason_code_raw: None,
            reason: sip_code.map(|code| code.to_string()),
            sip_code,
            sip_reason: None,
            amd_mode: None,
            amd_result,
            duration_s,
            ring_ms: None,
            connect_ms: None,
            connect_time,
            disconnect_time,
            warnings,
        }
    }
}

/// Twilio's `Timestamp` is RFC 2822 (`Mon, 16 Aug 2010 03:45:01 +0000`); the formats every
/// source accepts are tried after it.
fn read_timestamp(text: &str, settings: &NormalizeSettings) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc2822(text.trim()) {
        return Ok(at.to_utc());
    }
    time::parse_timestamp(&Value::from(text), settings)
        .map_err(|warning| format!("Timestamp: {warning}"))
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
