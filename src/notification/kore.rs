//! Kore.ai Voice Gateway call-status notifications (docs/api.md, "Receiving").
//!
//! A body goes through three steps: JSON parsing (else [`Rejection::Malformed`]),
//! validation of the known fields into a [`Checked`] value (else [`Rejection::Invalid`]
//! with every error at once), and normalization into an [`Event`], where a value that
//! cannot be read becomes null plus a warning rather than a rejection.

use chrono::{DateTime, Utc};

use crate::notification::Format;
use serde_json::{Map, Value};

use super::checks::{conversation_id_problems, keys_holding_nul};
use super::fields::{Field, KnownFields, Slot, fold_key, kind};
use super::normalize::{self, MachineDetection};
use super::{
    Event, FieldError, NormalizeSettings, Notification, Rejection, Status, content_hash, time,
};

/// The longest conversation id accepted, in characters.
pub use super::checks::MAX_CONVERSATION_ID_CHARS;

/// Parses and normalizes one Kore.ai notification body.
pub fn parse(body: &[u8], settings: &NormalizeSettings) -> Result<Notification, Rejection> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| Rejection::Malformed(format!("body is not valid JSON: {e}")))?;
    let Value::Object(object) = &payload else {
        return Err(Rejection::Malformed(format!(
            "body must be a JSON object, not {}",
            kind(&payload)
        )));
    };
    let event = check(object)?.normalize(settings);
    let content_hash = content_hash(&payload);
    Ok(Notification {
        event,
        payload,
        content_hash,
    })
}

/// The known fields of a body that passed validation, each of an accepted type.
struct Checked<'a> {
    /// Already trimmed.
    conversation_id: &'a str,
    status: &'a str,
    reason_code: Option<&'a str>,
    reason: Option<&'a str>,
    /// A number or a string.
    duration: Option<&'a Value>,
    machine_detection: Option<&'a str>,
    /// Each a string or a number.
    connect_time: Option<&'a Value>,
    disconnect_time: Option<&'a Value>,
    /// Each a number or a string.
    ring_duration: Option<&'a Value>,
    connect_duration: Option<&'a Value>,
}

/// Validates the known fields of `object` against docs/api.md, "Receiving", collecting every error.
fn check(object: &Map<String, Value>) -> Result<Checked<'_>, Rejection> {
    let fields = KnownFields::collect(object);
    let mut errors = Vec::new();
    let mut validator = Validator {
        fields: &fields,
        errors: &mut errors,
    };

    let conversation_id = validator
        .required_string(Field::ConversationId)
        .and_then(|id| {
            let problems = conversation_id_problems(id);
            let valid = problems.is_empty();
            for problem in problems {
                validator.error(Field::ConversationId, problem);
            }
            valid.then_some(id)
        });
    let status = validator.required_string(Field::Status);
    let reason_code = validator.optional_string(Field::ReasonCode);
    let reason = validator.optional_string(Field::Reason);
    let duration = validator.optional(Field::Duration, "a number or a string holding one", |v| {
        v.is_number() || v.is_string()
    });
    let machine_detection = validator.optional_string(Field::MachineDetection);
    let is_time = |v: &Value| v.is_number() || v.is_string();
    let connect_time = validator.optional(Field::CallConnectTime, "a string or a number", is_time);
    let disconnect_time =
        validator.optional(Field::CallDisconnectTime, "a string or a number", is_time);
    let is_number = |v: &Value| v.is_number() || v.is_string();
    let number = "a number or a string holding one";
    let ring_duration = validator.optional(Field::RingDuration, number, is_number);
    let connect_duration = validator.optional(Field::ConnectDuration, number, is_number);
    for key in keys_holding_nul(object) {
        if errors.iter().any(|e| fold_key(&e.field) == fold_key(key)) {
            continue; // already refused, e.g. an id with control characters
        }
        // PostgreSQL's jsonb cannot hold U+0000; refusing it on every store keeps the
        // stores alike, and the body is still kept as a rejected delivery.
        errors.push(FieldError {
            field: key.replace('\0', "\\u0000"),
            message: "contains the NUL character (\\u0000), which cannot be stored".to_string(),
        });
    }

    match (conversation_id, status) {
        (Some(conversation_id), Some(status)) if errors.is_empty() => Ok(Checked {
            conversation_id,
            status,
            reason_code,
            reason,
            duration,
            machine_detection,
            connect_time,
            disconnect_time,
            ring_duration,
            connect_duration,
        }),
        _ => Err(Rejection::Invalid {
            conversation_id: conversation_id.map(str::to_string),
            errors,
        }),
    }
}

/// Reads known fields by type, recording an error for each one that breaks the contract.
struct Validator<'f, 'a> {
    fields: &'f KnownFields<'a>,
    errors: &'f mut Vec<FieldError>,
}

impl<'a> Validator<'_, 'a> {
    fn error(&mut self, field: Field, message: String) {
        self.errors.push(FieldError {
            field: field.wire_name().to_string(),
            message,
        });
    }

    /// The value of `field` when present and accepted by `accepts`; `expected` names the
    /// accepted types for the error message.
    fn optional(
        &mut self,
        field: Field,
        expected: &str,
        accepts: impl Fn(&Value) -> bool,
    ) -> Option<&'a Value> {
        match self.fields.get(field) {
            Slot::Absent => None,
            Slot::Conflict(message) => {
                self.error(field, message.clone());
                None
            }
            Slot::Present(value) if accepts(value) => Some(*value),
            Slot::Present(value) => {
                self.error(field, format!("must be {expected}, got {}", kind(value)));
                None
            }
        }
    }

    fn optional_string(&mut self, field: Field) -> Option<&'a str> {
        self.optional(field, "a string", Value::is_string)
            .and_then(Value::as_str)
    }

    /// A required string, trimmed; an error when it is absent or blank.
    fn required_string(&mut self, field: Field) -> Option<&'a str> {
        if *self.fields.get(field) == Slot::Absent {
            self.error(field, "is required".to_string());
            return None;
        }
        let value = self.optional_string(field)?.trim();
        if value.is_empty() {
            self.error(field, "must not be empty".to_string());
            return None;
        }
        Some(value)
    }
}

impl Checked<'_> {
    /// The event of docs/api.md, "What calltrail makes of a notification". Never fails: what
    /// cannot be read is null plus a warning.
    fn normalize(&self, settings: &NormalizeSettings) -> Event {
        let mut warnings = Vec::new();

        // A known status in its one spelling (`Call_In_Progress` → `call-in-progress`).
        let status = match Status::recognize(self.status) {
            Some(known) => known.as_str().to_string(),
            None => {
                let status = self.status.to_lowercase();
                warnings.push(format!(
                    "unknown status `{status}`: stored, but it does not change the call's state"
                ));
                status
            }
        };

        let (sip_code, sip_reason) = self.reason.map(normalize::split_sip).unwrap_or_default();

        let detection = match self.machine_detection.map(normalize::machine_detection) {
            Some(Ok(detection)) => detection,
            Some(Err(warning)) => {
                warnings.push(warning);
                MachineDetection::Blank
            }
            None => MachineDetection::Blank,
        };
        let (amd_mode, amd_result) = match detection {
            MachineDetection::Blank => (None, None),
            MachineDetection::Mode(mode) => (Some(mode), None),
            MachineDetection::Result(result) => (None, Some(result)),
        };

        // Read before the duration, which may be derived from them, but warned about after
        // it, in the contract's field order.
        let mut time_warnings = Vec::new();
        let mut time_of = |field: Field, value: Option<&Value>| {
            let value = value?;
            read_time(field, value, settings).unwrap_or_else(|warning| {
                time_warnings.push(warning);
                None
            })
        };
        let connect_time = time_of(Field::CallConnectTime, self.connect_time);
        let disconnect_time = time_of(Field::CallDisconnectTime, self.disconnect_time);

        let duration_s = match self.duration.map(normalize::duration_seconds) {
            Some(Ok(Some(seconds))) => Some(seconds),
            Some(Err(warning)) => {
                warnings.push(warning);
                None
            }
            // Absent or blank: derived when both times were read.
            None | Some(Ok(None)) => match (connect_time, disconnect_time) {
                (Some(connect), Some(disconnect)) => {
                    normalize::derive_duration(connect, disconnect)
                        .map_err(|warning| warnings.push(warning))
                        .ok()
                }
                _ => None,
            },
        };
        warnings.extend(time_warnings);
        let mut milliseconds = |field: Field, value: Option<&Value>| match value
            .map(|v| normalize::whole_number(field.wire_name(), v))
        {
            Some(Ok(ms)) => ms,
            Some(Err(warning)) => {
                warnings.push(warning);
                None
            }
            None => None,
        };
        let ring_ms = milliseconds(Field::RingDuration, self.ring_duration);
        let connect_ms = milliseconds(Field::ConnectDuration, self.connect_duration);

        Event {
            conversation_id: self.conversation_id.to_string(),
            source: Format::Kore,
            status,
            reason_code: self.reason_code.and_then(normalize::canonical_reason_code),
            reason_code_raw: self.reason_code.map(str::to_string),
            reason: self.reason.map(str::to_string),
            sip_code,
            sip_reason,
            amd_mode,
            amd_result,
            duration_s,
            ring_ms,
            connect_ms,
            connect_time,
            disconnect_time,
            warnings,
        }
    }
}

/// One time field: `Ok(None)` for a blank string (as if absent), `Err` the warning naming
/// the field and value.
fn read_time(
    field: Field,
    value: &Value,
    settings: &NormalizeSettings,
) -> Result<Option<DateTime<Utc>>, String> {
    if value.as_str().is_some_and(|text| text.trim().is_empty()) {
        return Ok(None);
    }
    time::parse_timestamp(value, settings)
        .map(Some)
        .map_err(|warning| format!("{}: {warning}", field.wire_name()))
}

#[cfg(test)]
mod newer;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod rejections;
#[cfg(test)]
mod samples;
#[cfg(test)]
mod tests;
