//! jambonz call-status webhooks (`call_status_hook`) and answering-machine-detection events
//! (the `amd` verb's `actionHook`) (docs/api.md, "jambonz").
//!
//! Both are JSON objects carrying the call's information (`call_sid`, `call_status`,
//! `sip_status`, …); an AMD event adds `type` (`amd_human_detected`, … the same eight names
//! as Kore.ai's) and `reason`, `greeting`, `hint`, kept in the raw payload. As for Kore.ai,
//! a field of the wrong type rejects the body and a value that cannot be read is null plus a
//! warning.

use serde_json::Value;

use crate::notification::Format;

use super::checks::{Reader, json_object, or_warn};
use super::normalize::{self, canonical_reason_code};
use super::{AmdResult, Event, NormalizeSettings, Notification, Rejection, Status, content_hash};

/// The status of an AMD event that does not say: a result means the call is up.
const AMD_EVENT_STATUS: Status = Status::InProgress;

/// Parses and normalizes one jambonz webhook body. jambonz sends no local-time timestamps,
/// so the settings are not needed; the signature matches the other sources'.
pub fn parse(body: &[u8], _settings: &NormalizeSettings) -> Result<Notification, Rejection> {
    let payload = json_object(body)?;
    let object = payload.as_object().expect("json_object gives an object");
    let event = check(object)?.normalize();
    let content_hash = content_hash(&payload);
    Ok(Notification {
        event,
        payload,
        content_hash,
    })
}

/// The fields calltrail reads, each of an accepted type.
struct Checked<'a> {
    call_sid: &'a str,
    call_status: Option<&'a str>,
    amd_type: Option<&'a str>,
    sip_status: Option<&'a Value>,
    sip_reason: Option<&'a str>,
    duration: Option<&'a Value>,
    termination_by: Option<&'a str>,
}

fn check(object: &serde_json::Map<String, Value>) -> Result<Checked<'_>, Rejection> {
    let mut reader = Reader::new(object);
    let call_sid = reader.conversation_id("call_sid");
    let amd_type = reader.string("type").filter(|text| !text.trim().is_empty());
    // An AMD event may leave the status out; a call-status webhook may not.
    let call_status = if amd_type.is_some() {
        reader
            .string("call_status")
            .filter(|s| !s.trim().is_empty())
    } else {
        reader.required_string("call_status")
    };
    let sip_status = reader.scalar("sip_status");
    let sip_reason = reader.string("sip_reason");
    let duration = reader.scalar("duration");
    let termination_by = reader.string("call_termination_by");
    let call_sid = reader.finish(call_sid)?;
    Ok(Checked {
        call_sid,
        call_status,
        amd_type,
        sip_status,
        sip_reason,
        duration,
        termination_by,
    })
}

impl Checked<'_> {
    fn normalize(&self) -> Event {
        let mut warnings = Vec::new();

        let status = match self.call_status.map(|text| (text, Status::recognize(text))) {
            None => AMD_EVENT_STATUS.as_str().to_string(),
            Some((_, Some(known))) => known.as_str().to_string(),
            Some((text, None)) => {
                let status = text.trim().to_lowercase();
                warnings.push(format!(
                    "unknown call_status `{status}`: stored, but it does not change the call's state"
                ));
                status
            }
        };

        let amd_result = self.amd_type.and_then(|kind| {
            let result = AmdResult::parse(kind);
            if result.is_none() {
                warnings.push(format!(
                    "unknown type `{}`: stored, but no answering-machine result was read from it",
                    kind.trim()
                ));
            }
            result
        });

        let sip_code = or_warn(&mut warnings, self.sip_status, |v| {
            normalize::sip_status("sip_status", v)
        });
        let sip_reason = self
            .sip_reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let reason = match (sip_code, &sip_reason) {
            (Some(code), Some(text)) => Some(format!("{code} {text}")),
            (Some(code), None) => Some(code.to_string()),
            (None, text) => text.clone(),
        };
        let duration_s = or_warn(&mut warnings, self.duration, normalize::duration_seconds);

        Event {
            conversation_id: self.call_sid.to_string(),
            source: Format::Jambonz,
            status,
            reason_code: self.termination_by.and_then(canonical_reason_code),
            reason_code_raw: self.termination_by.map(str::to_string),
            reason,
            sip_code,
            sip_reason,
            amd_mode: None,
            amd_result,
            duration_s,
            ring_ms: None,
            connect_ms: None,
            // jambonz's webhooks carry no call times; the call falls back to when they
            // were received.
            connect_time: None,
            disconnect_time: None,
            warnings,
        }
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
