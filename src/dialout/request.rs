//! `POST /v1/dialouts` bodies: parsed once into a [`DialoutRequest`] (or every field at
//! fault named), and the body the gateway is sent, with the seed's wire names. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::rules;
use crate::notification::{AmdMode, FieldError};

/// A dial-out as calltrail's API takes it, validated.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DialoutRequest {
    /// `tel:` and digits with an optional `+` (`tel:911234567890`), or `sip:user@host[:port]`.
    #[schema(example = "tel:911234567890")]
    pub target: String,
    /// The user part of the caller id.
    #[schema(example = "+127061657882")]
    pub caller: String,
    /// The carrier; the account's default when null.
    pub trunk: Option<String>,
    /// Data for the bot (e.g. the callee's name, a campaign); any JSON object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Answering-machine-detection timers, the gateway's defaults filled in.
    pub timers: Timers,
    /// `disconnect`, `detect` or `disabled`; null leaves it to the gateway (disabled).
    pub machine_detection: Option<AmdMode>,
    /// Spoken words in a greeting that make it a machine.
    pub threshold_word_count: Option<u32>,
}

/// Answering-machine-detection timers, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timers {
    /// Wait for speech before `amd_no_speech_detected`; default 5000.
    pub no_speech_timeout_ms: u32,
    /// Wait before `amd_decision_timeout`; default 15000.
    pub decision_timeout_ms: u32,
    /// Wait to hear a tone; default 20000.
    pub tone_timeout_ms: u32,
    /// Silence during a greeting before `amd_machine_stopped_speaking`; default 2000.
    pub greeting_completion_timeout_ms: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            no_speech_timeout_ms: rules::NO_SPEECH_TIMEOUT_MS,
            decision_timeout_ms: rules::DECISION_TIMEOUT_MS,
            tone_timeout_ms: rules::TONE_TIMEOUT_MS,
            greeting_completion_timeout_ms: rules::GREETING_COMPLETION_TIMEOUT_MS,
        }
    }
}

/// The timers: API name, wire name.
const TIMERS: [(&str, &str); 4] = [
    ("no_speech_timeout_ms", "noSpeechTimeoutMs"),
    ("decision_timeout_ms", "decisionTimeoutMs"),
    ("tone_timeout_ms", "toneTimeoutMs"),
    (
        "greeting_completion_timeout_ms",
        "greetingCompletionTimeoutMs",
    ),
];

/// The fields a request may hold.
pub const FIELDS: [&str; 7] = [
    "target",
    "caller",
    "trunk",
    "metadata",
    "timers",
    "machine_detection",
    "threshold_word_count",
];

/// Why a body is not a dial-out request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or not a JSON object (`400`).
    Malformed(String),
    /// An object with fields at fault, each named (`422`).
    Invalid(Vec<FieldError>),
}

impl Timers {
    fn get(&self, api_name: &str) -> u32 {
        match api_name {
            "no_speech_timeout_ms" => self.no_speech_timeout_ms,
            "decision_timeout_ms" => self.decision_timeout_ms,
            "tone_timeout_ms" => self.tone_timeout_ms,
            _ => self.greeting_completion_timeout_ms,
        }
    }

    fn set(&mut self, api_name: &str, value: u32) {
        match api_name {
            "no_speech_timeout_ms" => self.no_speech_timeout_ms = value,
            "decision_timeout_ms" => self.decision_timeout_ms = value,
            "tone_timeout_ms" => self.tone_timeout_ms = value,
            _ => self.greeting_completion_timeout_ms = value,
        }
    }

    /// The timers as the gateway takes them (`noSpeechTimeoutMs`, …).
    pub fn to_wire(&self) -> Value {
        Value::Object(
            TIMERS
                .iter()
                .map(|(api, wire)| ((*wire).to_owned(), json!(self.get(api))))
                .collect(),
        )
    }
}

/// Parses a `POST /v1/dialouts` body.
pub fn parse(body: &[u8]) -> Result<DialoutRequest, ParseError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ParseError::Malformed(format!("the body is not JSON: {err}")))?;
    let Value::Object(object) = value else {
        return Err(ParseError::Malformed(format!(
            "the body must be a JSON object, got {}",
            rules::kind(&value)
        )));
    };
    let mut errors = Vec::new();
    for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        let hint = FIELDS
            .iter()
            .find(|f| f.replace('_', "") == key.to_ascii_lowercase().replace(['_', '-'], ""))
            .map(|f| format!("; did you mean `{f}`?"))
            .unwrap_or_default();
        fail(
            &mut errors,
            key,
            format!("unknown field{hint} Accepted: {}", FIELDS.join(", ")),
        );
    }
    // JSON null counts as absent.
    let get = |name: &str| object.get(name).filter(|v| !v.is_null());
    let text =
        |name: &str, rule: fn(&str) -> Result<String, String>| -> Option<Result<String, String>> {
            get(name).map(|v| match v {
                Value::String(s) => rule(s),
                other => Err(format!("must be a string, got {}", rules::kind(other))),
            })
        };

    let target = match text("target", rules::target) {
        None => {
            Err("is required, e.g. tel:911234567890 or sip:1234567890@1.23.345.678:1234".to_owned())
        }
        Some(result) => result,
    };
    let caller = text("caller", rules::caller).unwrap_or_else(|| Err("is required".to_owned()));
    let trunk = text("trunk", rules::trunk).transpose();
    let metadata = match get("metadata") {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map.clone())),
        Some(other) => Err(format!("must be a JSON object, got {}", rules::kind(other))),
    };
    let machine_detection = match get("machine_detection") {
        None => Ok(None),
        Some(Value::String(mode)) => rules::machine_detection(mode).map(Some),
        Some(other) => Err(format!("must be a string, got {}", rules::kind(other))),
    };
    let threshold_word_count = get("threshold_word_count")
        .map(rules::threshold_word_count)
        .transpose();

    let mut timers = Timers::default();
    match get("timers") {
        None => {}
        Some(Value::Object(given)) => {
            for (key, value) in given {
                match TIMERS.iter().find(|(api, _)| api == key) {
                    Some((api, _)) => match rules::timer(value) {
                        Ok(ms) => timers.set(api, ms),
                        Err(message) => fail(&mut errors, &format!("timers.{key}"), message),
                    },
                    None => {
                        let hint = TIMERS
                            .iter()
                            .find(|(_, wire)| wire.eq_ignore_ascii_case(key))
                            .map(|(api, _)| format!("; did you mean `{api}`?"))
                            .unwrap_or_default();
                        let names: Vec<&str> = TIMERS.iter().map(|(api, _)| *api).collect();
                        let message = format!("unknown timer{hint} Accepted: {}", names.join(", "));
                        fail(&mut errors, &format!("timers.{key}"), message);
                    }
                }
            }
        }
        Some(other) => fail(
            &mut errors,
            "timers",
            format!("must be a JSON object, got {}", rules::kind(other)),
        ),
    }

    let request = (
        take(&mut errors, "target", target),
        take(&mut errors, "caller", caller),
        take(&mut errors, "trunk", trunk),
        take(&mut errors, "metadata", metadata),
        take(&mut errors, "machine_detection", machine_detection),
        take(&mut errors, "threshold_word_count", threshold_word_count),
    );
    match request {
        (
            Some(target),
            Some(caller),
            Some(trunk),
            Some(metadata),
            Some(machine_detection),
            Some(threshold_word_count),
        ) if errors.is_empty() => Ok(DialoutRequest {
            target,
            caller,
            trunk,
            metadata,
            timers,
            machine_detection,
            threshold_word_count,
        }),
        _ => {
            errors.sort_by_key(|e| {
                FIELDS
                    .iter()
                    .position(|f| e.field.starts_with(f))
                    .unwrap_or(FIELDS.len())
            });
            Err(ParseError::Invalid(errors))
        }
    }
}

fn fail(errors: &mut Vec<FieldError>, field: &str, message: String) {
    errors.push(FieldError {
        field: field.to_owned(),
        message,
    });
}

/// The value of a field that passed its rule; a field that did not is added to `errors`.
fn take<T>(errors: &mut Vec<FieldError>, field: &str, result: Result<T, String>) -> Option<T> {
    result.map_err(|message| fail(errors, field, message)).ok()
}

impl DialoutRequest {
    /// The body the gateway is sent: the seed's wire names, `notifyurl`, and for the `v2`
    /// API the bot id.
    pub fn wire_body(&self, notify_url: &str, bot_id: Option<&str>) -> Value {
        let mut body = Map::new();
        body.insert("target".into(), json!(self.target));
        body.insert("caller".into(), json!(self.caller));
        if let Some(trunk) = &self.trunk {
            body.insert("trunk".into(), json!(trunk));
        }
        if let Some(metadata) = &self.metadata {
            body.insert("metadata".into(), Value::Object(metadata.clone()));
        }
        body.insert("timers".into(), self.timers.to_wire());
        if let Some(mode) = self.machine_detection {
            body.insert("machineDetection".into(), json!(mode.as_str()));
        }
        if let Some(count) = self.threshold_word_count {
            body.insert("thresholdWordCount".into(), json!(count));
        }
        body.insert("notifyurl".into(), json!(notify_url));
        if let Some(bot_id) = bot_id {
            body.insert("botId".into(), json!(bot_id));
        }
        Value::Object(body)
    }

    /// Hex SHA-256 of the request's canonical JSON: equal for equal requests, whatever the
    /// key order or spacing of the bodies they came from.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: Value) -> Vec<(String, String)> {
        match parse(body.to_string().as_bytes()) {
            Err(ParseError::Invalid(errors)) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_full_request_parses_and_fills_in_timer_defaults() {
        let body = json!({"target": "tel:911234567890", "caller": "+127061657882", "trunk": "TRUNK",
            "metadata": {"campaign": "spring", "userName": "John Doe"}, "timers": {"no_speech_timeout_ms": 12000},
            "machine_detection": "detect", "threshold_word_count": 4});

        let request = parse(body.to_string().as_bytes()).unwrap();

        assert_eq!(request.target, "tel:911234567890");
        assert_eq!(request.machine_detection, Some(AmdMode::Detect));
        assert_eq!(request.timers.no_speech_timeout_ms, 12000);
        assert_eq!(request.timers.decision_timeout_ms, 15000);
        assert_eq!(request.timers.tone_timeout_ms, 20000);
        assert_eq!(request.timers.greeting_completion_timeout_ms, 2000);
        assert_eq!(request.threshold_word_count, Some(4));
        assert_eq!(request.metadata.unwrap()["campaign"], "spring");
    }

    #[test]
    fn the_minimal_request_is_target_and_caller_and_null_is_absent() {
        let request =
            parse(br#"{"target":"sip:1234567890@1.23.345.678:1234","caller":"100","trunk":null}"#)
                .unwrap();
        assert_eq!(request.trunk, None);
        assert_eq!(request.machine_detection, None);
        assert_eq!(request.timers, Timers::default());
    }

    #[test]
    fn every_field_at_fault_is_named() {
        let errors = fields(
            json!({"target": "911234567890", "trunk": "", "metadata": [1],
            "timers": {"noSpeechTimeoutMs": 5, "tone_timeout_ms": 0, "decision_timeout_ms": "15000"},
            "machine_detection": "maybe", "threshold_word_count": -4, "notifyurl": "https://x"}),
        );
        let named: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            named,
            [
                "target",
                "caller",
                "trunk",
                "metadata",
                "timers.decision_timeout_ms",
                "timers.noSpeechTimeoutMs",
                "timers.tone_timeout_ms",
                "machine_detection",
                "threshold_word_count",
                "notifyurl"
            ]
        );
        let message = |field: &str| errors.iter().find(|(f, _)| f == field).unwrap().1.clone();
        assert!(message("caller").contains("required"));
        assert!(
            message("timers.noSpeechTimeoutMs").contains("did you mean `no_speech_timeout_ms`")
        );
        assert!(message("machine_detection").contains("disconnect, detect, disabled"));
    }

    #[test]
    fn camel_case_fields_get_a_hint() {
        let errors =
            fields(json!({"target": "tel:1", "caller": "1", "machineDetection": "detect"}));
        assert_eq!(errors[0].0, "machineDetection");
        assert!(
            errors[0].1.contains("did you mean `machine_detection`"),
            "{errors:?}"
        );
    }

    #[test]
    fn bodies_that_are_not_objects_are_malformed() {
        assert!(matches!(parse(b"{nope"), Err(ParseError::Malformed(_))));
        assert!(matches!(parse(b"[]"), Err(ParseError::Malformed(_))));
        assert!(matches!(parse(b""), Err(ParseError::Malformed(_))));
    }

    #[test]
    fn the_wire_body_uses_the_seeds_names() {
        let request = parse(
            br#"{"target":"tel:1","caller":"2","machine_detection":"disconnect","threshold_word_count":3,"metadata":{"a":1}}"#,
        )
        .unwrap();

        let v1 = request.wire_body("https://ct.example/notify/t", None);
        let v2 = request.wire_body("https://ct.example/notify/t", Some("st-1"));

        assert_eq!(
            v1,
            json!({"target": "tel:1", "caller": "2", "metadata": {"a": 1}, "machineDetection": "disconnect",
                "thresholdWordCount": 3, "notifyurl": "https://ct.example/notify/t",
                "timers": {"noSpeechTimeoutMs": 5000, "decisionTimeoutMs": 15000, "toneTimeoutMs": 20000,
                    "greetingCompletionTimeoutMs": 2000}})
        );
        assert_eq!(v2["botId"], "st-1");
    }

    #[test]
    fn equal_requests_hash_equal_whatever_the_key_order() {
        let a = parse(br#"{"target":"tel:1","caller":"2","metadata":{"x":1,"y":2}}"#).unwrap();
        let b = parse(br#"{"metadata":{"y":2,"x":1},"caller":" 2 ","target":"tel:1"}"#).unwrap();
        let c = parse(br#"{"target":"tel:1","caller":"3"}"#).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
    }
}
