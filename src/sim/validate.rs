//! The simulator's check of a dial-out body, as the seed describes it. Keys are read ignoring
//! case (the seed spells `machineDetection` and `machinedetection`, `notifyurl` and
//! `notifyUrl`). A body at fault is answered `400` with the message. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::outcome::{self, SimOutcome};
use super::script::Timers;
use crate::dialout::rules;
use crate::notification::AmdMode;

/// A dial-out the simulator accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct DialRequest {
    pub target: String,
    pub caller: String,
    pub trunk: Option<String>,
    pub metadata: Option<Value>,
    pub timers: Timers,
    pub amd_mode: Option<AmdMode>,
    pub threshold_word_count: Option<u32>,
    /// Where notifications go; none are sent without it (as the seed says).
    pub notify_url: Option<String>,
    /// Headers sent with every notification.
    pub notify_headers: BTreeMap<String, String>,
    /// The outcome `metadata.sim_outcome` forces, if any.
    pub forced: Option<SimOutcome>,
    /// `botId` from the body (the v2 API).
    pub bot_id: Option<String>,
}

/// Checks a dial-out body; `Err` is the message of the `400`.
pub fn dial_request(body: &[u8]) -> Result<DialRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err(format!(
            "the body must be a JSON object, got {}",
            rules::kind(&value)
        ));
    };
    let get = |name: &str| -> Option<&Value> {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    };
    let string = |name: &str| -> Result<Option<&str>, String> {
        match get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "{name}: must be a string, got {}",
                rules::kind(other)
            )),
        }
    };
    let field =
        |name: &str, result: Result<String, String>| result.map_err(|m| format!("{name}: {m}"));

    let target = field(
        "target",
        rules::target(string("target")?.ok_or("target: is required")?),
    )?;
    let caller = field(
        "caller",
        rules::caller(string("caller")?.ok_or("caller: is required")?),
    )?;
    let trunk = string("trunk")?
        .map(|t| field("trunk", rules::trunk(t)))
        .transpose()?;
    let metadata = match get("metadata") {
        None => None,
        Some(m @ Value::Object(_)) => Some(m.clone()),
        Some(other) => {
            return Err(format!(
                "metadata: must be an object, got {}",
                rules::kind(other)
            ));
        }
    };
    let amd_mode = string("machineDetection")?
        .map(|m| rules::machine_detection(m).map_err(|e| format!("machineDetection: {e}")))
        .transpose()?;
    let threshold_word_count = get("thresholdWordCount")
        .map(|v| rules::threshold_word_count(v).map_err(|e| format!("thresholdWordCount: {e}")))
        .transpose()?;
    let timers = match get("timers") {
        None => Timers::default(),
        Some(Value::Object(given)) => timers(given)?,
        Some(other) => {
            return Err(format!(
                "timers: must be an object, got {}",
                rules::kind(other)
            ));
        }
    };
    let notify_url = string("notifyurl")?
        .map(|u| field("notifyurl", rules::notify_url(u)))
        .transpose()?;
    let notify_headers = match get("notifyHeaders") {
        None => BTreeMap::new(),
        Some(Value::Object(headers)) => headers_of(headers)?,
        Some(other) => {
            return Err(format!(
                "notifyHeaders: must be an object, got {}",
                rules::kind(other)
            ));
        }
    };
    let forced = outcome::forced(metadata.as_ref())?;
    let bot_id = string("botId")?.map(str::to_owned);
    Ok(DialRequest {
        target,
        caller,
        trunk,
        metadata,
        timers,
        amd_mode,
        threshold_word_count,
        notify_url,
        notify_headers,
        forced,
        bot_id,
    })
}

fn timers(given: &Map<String, Value>) -> Result<Timers, String> {
    let mut timers = Timers::default();
    for (key, value) in given {
        let slot = match key.to_ascii_lowercase().as_str() {
            "nospeechtimeoutms" => &mut timers.no_speech_timeout_ms,
            "decisiontimeoutms" => &mut timers.decision_timeout_ms,
            "tonetimeoutms" => &mut timers.tone_timeout_ms,
            "greetingcompletiontimeoutms" => &mut timers.greeting_completion_timeout_ms,
            _ => {
                return Err(format!(
                    "timers.{key}: unknown; known: noSpeechTimeoutMs, decisionTimeoutMs, toneTimeoutMs, \
                     greetingCompletionTimeoutMs"
                ));
            }
        };
        *slot = rules::timer(value).map_err(|e| format!("timers.{key}: {e}"))?;
    }
    Ok(timers)
}

fn headers_of(headers: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let Value::String(value) = value else {
                return Err(format!("notifyHeaders.{name}: must be a string"));
            };
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("notifyHeaders: `{name}` is not a header name"))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("notifyHeaders.{name}: not a valid header value"))?;
            Ok((name.clone(), value.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: Value) -> Result<DialRequest, String> {
        dial_request(body.to_string().as_bytes())
    }

    #[test]
    fn the_seeds_sample_request_is_accepted() {
        let sample = json!({
           "bot": "st-e38782ff-0d89-52e9-5678769a49fdexxxx", "target": "tel:911234567890", "caller": "+127061657882",
           "trunk": "TRUNK",
           "timers": {"noSpeechTimeoutMs": 12000, "decisionTimeoutMs": 15000, "toneTimeoutMs": 10000,
               "greetingCompletionTimeoutMs": 10000},
           "thresholdWordCount": 4, "machineDetection": "detect",
           "notifyurl": "https://de8a-115-114-88-222.ngrok-free.app/notify",
           "metadata": {"jobPosition": "Software Engineer", "userName": "John Doe"}
        });
        let request = check(sample).unwrap();
        assert_eq!(request.amd_mode, Some(AmdMode::Detect));
        assert_eq!(request.timers.no_speech_timeout_ms, 12000);
        assert_eq!(request.timers.greeting_completion_timeout_ms, 10000);
        assert_eq!(request.threshold_word_count, Some(4));
        assert_eq!(
            request.notify_url.as_deref(),
            Some("https://de8a-115-114-88-222.ngrok-free.app/notify")
        );
    }

    #[test]
    fn each_rule_of_the_seed_is_enforced_with_a_message_naming_the_field() {
        let base = json!({"target": "tel:1", "caller": "2"});
        let with = |key: &str, value: Value| {
            let mut body = base.clone();
            body[key] = value;
            body
        };
        let cases = [
            (json!({"caller": "2"}), "target: is required"),
            (with("target", json!("911234567890")), "target:"),
            (with("target", json!("sip:nohost")), "target:"),
            (with("target", json!(5)), "target: must be a string"),
            (json!({"target": "tel:1"}), "caller: is required"),
            (with("caller", json!("")), "caller:"),
            (with("machineDetection", json!("on")), "machineDetection:"),
            (with("thresholdWordCount", json!(0)), "thresholdWordCount:"),
            (
                with("timers", json!({"noSpeechTimeoutMs": -5})),
                "timers.noSpeechTimeoutMs:",
            ),
            (
                with("timers", json!({"snoozeMs": 5})),
                "timers.snoozeMs: unknown",
            ),
            (with("timers", json!(5)), "timers: must be an object"),
            (with("metadata", json!("x")), "metadata: must be an object"),
            (with("notifyurl", json!("/notify")), "notifyurl:"),
            (
                with("notifyHeaders", json!({"X-Token": 5})),
                "notifyHeaders.X-Token",
            ),
            (
                with("metadata", json!({"sim_outcome": "voicemail"})),
                "metadata.sim_outcome",
            ),
        ];
        for (body, message) in cases {
            let error = check(body.clone()).unwrap_err();
            assert!(error.starts_with(message), "{body}: {error}");
        }
        assert!(dial_request(b"nope").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn keys_are_read_ignoring_case_and_headers_are_kept() {
        let request = check(
            json!({"Target": "tel:1", "caller": "2", "machinedetection": "disconnect",
            "notifyUrl": "http://127.0.0.1:1/notify", "notifyHeaders": {"X-Calltrail-Token": "t"},
            "metadata": {"sim_outcome": "busy"}, "botId": "st-1"}),
        )
        .unwrap();
        assert_eq!(request.amd_mode, Some(AmdMode::Disconnect));
        assert_eq!(request.notify_headers["X-Calltrail-Token"], "t");
        assert_eq!(request.forced, Some(SimOutcome::Busy));
        assert_eq!(request.bot_id.as_deref(), Some("st-1"));
    }
}
