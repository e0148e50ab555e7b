//! Checks every source's notifications share (docs/api.md, "Receiving").

use serde_json::{Map, Value};

use super::fields::{fold_key, kind};
use super::{FieldError, Rejection};

/// The longest conversation id accepted, in characters.
pub const MAX_CONVERSATION_ID_CHARS: usize = 256;

/// The top-level keys whose name or value (at any depth) holds U+0000.
pub fn keys_holding_nul(object: &Map<String, Value>) -> Vec<&str> {
    fn holds_nul(value: &Value) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().any(holds_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
            _ => false,
        }
    }
    object
        .iter()
        .filter(|(key, value)| key.contains('\0') || holds_nul(value))
        .map(|(key, _)| key.as_str())
        .collect()
}

/// What is wrong with a trimmed, non-empty conversation id, one sentence per problem.
pub fn conversation_id_problems(id: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars = id.chars().count();
    if chars > MAX_CONVERSATION_ID_CHARS {
        problems.push(format!(
            "must be at most {MAX_CONVERSATION_ID_CHARS} characters, got {chars}"
        ));
    }
    if id.chars().any(char::is_control) {
        problems.push("must not contain control characters".to_string());
    }
    problems
}

/// Reads the fields of a JSON object for sources with a fixed set of field names (jambonz,
/// Twilio): keys matched ignoring case, `_` and `-` as for every source; `null` is absent; a
/// value of the wrong type is an error, all errors collected.
pub struct Reader<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    /// The value of `field` (its wire name), if given and not `null`.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        let folded = fold_key(field);
        self.object
            .iter()
            .find(|(key, value)| !value.is_null() && fold_key(key) == folded)
            .map(|(_, value)| value)
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// A string field; another type is an error.
    pub fn string(&mut self, field: &str) -> Option<&'a str> {
        let value = self.get(field)?;
        match value.as_str() {
            Some(text) => Some(text),
            None => {
                self.error(field, format!("must be a string, got {}", kind(value)));
                None
            }
        }
    }

    /// A number, or a string that may hold one; another type is an error.
    pub fn scalar(&mut self, field: &str) -> Option<&'a Value> {
        let value = self.get(field)?;
        if value.is_number() || value.is_string() {
            Some(value)
        } else {
            let message = format!(
                "must be a number or a string holding one, got {}",
                kind(value)
            );
            self.error(field, message);
            None
        }
    }

    /// A required, non-blank string, trimmed.
    pub fn required_string(&mut self, field: &str) -> Option<&'a str> {
        if self.get(field).is_none() {
            self.error(field, "is required");
            return None;
        }
        let text = self.string(field)?.trim();
        if text.is_empty() {
            self.error(field, "must not be empty");
            return None;
        }
        Some(text)
    }

    /// The call's id: required, and within the limits of every conversation id.
    pub fn conversation_id(&mut self, field: &str) -> Option<&'a str> {
        let id = self.required_string(field)?;
        let problems = conversation_id_problems(id);
        let valid = problems.is_empty();
        for problem in problems {
            self.error(field, problem);
        }
        valid.then_some(id)
    }

    /// `Ok` with the conversation id when nothing was wrong, else the rejection listing
    /// every error (a NUL character anywhere included: PostgreSQL cannot store it).
    pub fn finish(mut self, conversation_id: Option<&'a str>) -> Result<&'a str, Rejection> {
        for key in keys_holding_nul(self.object) {
            if self
                .errors
                .iter()
                .any(|e| fold_key(&e.field) == fold_key(key))
            {
                continue;
            }
            self.error(
                &key.replace('\0', "\\u0000"),
                "contains the NUL character (\\u0000), which cannot be stored",
            );
        }
        match conversation_id {
            Some(id) if self.errors.is_empty() => Ok(id),
            _ => Err(Rejection::Invalid {
                conversation_id: conversation_id.map(str::to_string),
                errors: self.errors,
            }),
        }
    }
}

/// Parses a body as one JSON object, else says why not (answered 400).
pub fn json_object(body: &[u8]) -> Result<Value, Rejection> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| Rejection::Malformed(format!("body is not valid JSON: {e}")))?;
    if !payload.is_object() {
        return Err(Rejection::Malformed(format!(
            "body must be a JSON object, not {}",
            kind(&payload)
        )));
    }
    Ok(payload)
}

/// Reads a value through one of the normalization rules, turning its warning into an entry
/// of `warnings` and a null.
pub fn or_warn<T>(
    warnings: &mut Vec<String>,
    value: Option<&Value>,
    rule: impl FnOnce(&Value) -> Result<Option<T>, String>,
) -> Option<T> {
    match value.map(rule) {
        Some(Ok(read)) => read,
        Some(Err(warning)) => {
            warnings.push(warning);
            None
        }
        None => None,
    }
}
