//! The simulator as the other gateways: a simulated call's notifications (made in Kore.ai's
//! format by [`super::script`]) as jambonz's webhooks or Twilio's callbacks, and each
//! source's signature. Pure.

use serde_json::{Value, json};

use crate::notification::signature::{sign_timestamped, twilio_signature};
use crate::notification::twilio::form_pairs;
use crate::notification::{AmdResult, Event, Format, NormalizeSettings, Status};

/// One request body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// `notification`, a Kore.ai notification as the script makes it, as `format`'s gateway sends
/// it: one body, or for jambonz and Twilio two when it carries an AMD result (the AMD event,
/// then the status). `settings` reads the Kore.ai times.
pub fn render(format: Format, notification: &Value, settings: &NormalizeSettings) -> Vec<Rendered> {
    let json = |value: &Value| Rendered {
        content_type: "application/json",
        body: value.to_string().into_bytes(),
    };
    if format == Format::Kore {
        return vec![json(notification)];
    }
    let event = match Format::Kore.parse(notification.to_string().as_bytes(), settings) {
        Ok(parsed) => parsed.event,
        // Not one of the script's: sent as it is, for calltrail to judge.
        Err(_) => return vec![json(notification)],
    };
    match format {
        Format::Jambonz => jambonz(&event).iter().map(json).collect(),
        _ => twilio(&event)
            .into_iter()
            .map(|pairs| {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.extend_pairs(pairs);
                Rendered {
                    content_type: "application/x-www-form-urlencoded",
                    body: form.finish().into_bytes(),
                }
            })
            .collect(),
    }
}

/// The status jambonz and Twilio give a call that ended unanswered with `sip_code`.
fn unanswered_status(sip_code: Option<u16>) -> Status {
    match sip_code {
        Some(486 | 600) => Status::Busy,
        Some(408 | 487) => Status::NoAnswer,
        _ => Status::Failed,
    }
}

fn jambonz(event: &Event) -> Vec<Value> {
    let status = match event.known_status() {
        Some(Status::Completed) => Status::Completed,
        Some(Status::Failed) => unanswered_status(event.sip_code),
        _ => Status::InProgress,
    };
    let call = json!({
        "call_sid": event.conversation_id,
        "direction": "outbound",
        "from": "+15550100",
        "to": "+15550199",
    });
    let with = |mut base: Value, extra: Value| {
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    let mut bodies = Vec::new();
    if let Some(result) = event.amd_result {
        bodies.push(with(
            call.clone(),
            json!({"call_status": "in-progress", "type": result.as_str(), "reason": "simulated"}),
        ));
    }
    let termination = event.reason_code.as_deref().map(|code| {
        if code.starts_with("caller") {
            "caller"
        } else {
            "jambonz"
        }
    });
    bodies.push(with(
        call,
        json!({
            "call_status": status.as_str(),
            "sip_status": event.sip_code,
            "sip_reason": event.sip_reason,
            "duration": (status == Status::Completed).then_some(event.duration_s).flatten(),
            "call_termination_by": (status == Status::Completed).then_some(termination).flatten(),
        }),
    ));
    bodies
}

/// Twilio's `AnsweredBy` for an AMD result; Twilio has no "no speech", "error" or "stopped".
fn answered_by(result: AmdResult) -> &'static str {
    match result {
        AmdResult::HumanDetected => "human",
        AmdResult::MachineDetected => "machine_start",
        AmdResult::ToneDetected => "machine_end_beep",
        AmdResult::MachineStoppedSpeaking => "machine_end_silence",
        AmdResult::NoSpeechDetected
        | AmdResult::DecisionTimeout
        | AmdResult::Error
        | AmdResult::Stopped => "unknown",
    }
}

fn twilio(event: &Event) -> Vec<Vec<(String, String)>> {
    let pair = |name: &str, value: String| (name.to_string(), value);
    let common = || {
        vec![
            pair("CallSid", event.conversation_id.clone()),
            pair("AccountSid", "AC00000000000000000000000000000000".into()),
        ]
    };
    let mut forms = Vec::new();
    if let Some(result) = event.amd_result {
        let mut amd = common();
        amd.push(pair("AnsweredBy", answered_by(result).into()));
        amd.push(pair("MachineDetectionDuration", "2500".into()));
        forms.push(amd);
    }
    let (status, at) = match event.known_status() {
        Some(Status::Completed) => (Status::Completed, event.disconnect_time),
        Some(Status::Failed) => (unanswered_status(event.sip_code), event.disconnect_time),
        _ => (Status::InProgress, event.connect_time),
    };
    let mut form = common();
    form.push(pair("CallStatus", status.as_str().into()));
    form.push(pair("Direction", "outbound-api".into()));
    if let Some(code) = event.sip_code {
        form.push(pair("SipResponseCode", code.to_string()));
    }
    if let Some(at) = at {
        form.push(pair("Timestamp", at.to_rfc2822()));
    }
    if status == Status::Completed {
        if let Some(seconds) = event.duration_s {
            form.push(pair("CallDuration", seconds.to_string()));
        }
    }
    forms.push(form);
    forms
}

/// The signature header `format`'s gateway sends with `body` when signing with `secret` at
/// `now` (Unix seconds); Twilio's covers `url`, the full URL it posts to.
pub fn sign(
    format: Format,
    secret: &str,
    now: i64,
    url: &str,
    body: &[u8],
) -> (&'static str, String) {
    match format {
        Format::Kore => ("SAVG-Signature", sign_timestamped(secret, now, body)),
        Format::Jambonz => ("Jambonz-Signature", sign_timestamped(secret, now, body)),
        Format::Twilio => (
            "X-Twilio-Signature",
            twilio_signature(secret, url, &form_pairs(body)),
        ),
    }
}

#[cfg(test)]
mod tests;
