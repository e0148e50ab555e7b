//! Tolerant key matching (docs/api.md, "Receiving"): keys are compared ignoring case, `_` and `-`.

use serde_json::{Map, Value};

/// The folded form of a key: lower-case, with `_` and `-` removed.
pub fn fold_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The keys of a notification that calltrail reads (docs/api.md, "Receiving"), in the
/// documented order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ConversationId,
    Status,
    ReasonCode,
    Reason,
    Duration,
    MachineDetection,
    CallConnectTime,
    CallDisconnectTime,
    RingDuration,
    ConnectDuration,
}

impl Field {
    /// Every known field, in the documented order.
    pub const ALL: [Field; 10] = [
        Field::ConversationId,
        Field::Status,
        Field::ReasonCode,
        Field::Reason,
        Field::Duration,
        Field::MachineDetection,
        Field::CallConnectTime,
        Field::CallDisconnectTime,
        Field::RingDuration,
        Field::ConnectDuration,
    ];

    /// The contract's spelling, used in error and warning messages whatever spelling came in.
    pub fn wire_name(self) -> &'static str {
        match self {
            Field::ConversationId => "conversationId",
            Field::Status => "status",
            Field::ReasonCode => "reasonCode",
            Field::Reason => "reason",
            Field::Duration => "duration",
            Field::MachineDetection => "machinedetection",
            Field::CallConnectTime => "callconnecttime",
            Field::CallDisconnectTime => "callDisconnectTime",
            Field::RingDuration => "ringDurationInMS",
            Field::ConnectDuration => "connectDurationInMS",
        }
    }

    /// Other names the gateway uses for the field (its newer notifications).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Duration => &["callDuration"],
            _ => &[],
        }
    }

    /// The known field a received key stands for, if any.
    pub fn from_key(key: &str) -> Option<Field> {
        let folded = fold_key(key);
        Field::ALL.into_iter().find(|field| {
            std::iter::once(field.wire_name())
                .chain(field.aliases().iter().copied())
                .any(|name| fold_key(name) == folded)
        })
    }
}

/// What a body holds for one known field.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot<'a> {
    /// Not given, or given only as `null`.
    Absent,
    /// Given (possibly under several spellings, all with this value).
    Present(&'a Value),
    /// Given under two spellings with different values; the message says which.
    Conflict(String),
}

/// The known fields of one JSON object, looked up once, whatever their spelling.
#[derive(Debug)]
pub struct KnownFields<'a> {
    slots: [Slot<'a>; Field::ALL.len()],
}

impl<'a> KnownFields<'a> {
    /// Finds the known fields in `object`. A `null` value counts as absent. A field given
    /// under two spellings with different values is a [`Slot::Conflict`]; equal values are
    /// fine.
    pub fn collect(object: &'a Map<String, Value>) -> Self {
        let mut first: [Option<(&'a str, &'a Value)>; Field::ALL.len()] = Default::default();
        let mut slots: [Slot<'a>; Field::ALL.len()] = std::array::from_fn(|_| Slot::Absent);
        for (key, value) in object {
            if value.is_null() {
                continue;
            }
            let Some(field) = Field::from_key(key) else {
                continue;
            };
            let index = field as usize;
            match (first[index], &slots[index]) {
                (None, _) => {
                    first[index] = Some((key, value));
                    slots[index] = Slot::Present(value);
                }
                (Some((first_key, first_value)), Slot::Present(_)) if first_value != value => {
                    slots[index] = Slot::Conflict(format!(
                        "is given twice with different values, as `{first_key}` and `{key}`"
                    ));
                }
                _ => {}
            }
        }
        Self { slots }
    }

    /// What the body holds for `field`.
    pub fn get(&self, field: Field) -> &Slot<'a> {
        &self.slots[field as usize]
    }
}

/// The kind of a JSON value with its article, for messages: "a string", "an array", ….
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_spelling_finds_its_field() {
        let cases = [
            ("conversationId", Some(Field::ConversationId)),
            ("conversation_id", Some(Field::ConversationId)),
            ("ConversationID", Some(Field::ConversationId)),
            ("conversation-id", Some(Field::ConversationId)),
            ("CONVERSATION__ID", Some(Field::ConversationId)),
            ("Status", Some(Field::Status)),
            ("reason_code", Some(Field::ReasonCode)),
            ("ReasonCode", Some(Field::ReasonCode)),
            ("REASON", Some(Field::Reason)),
            ("Duration", Some(Field::Duration)),
            ("machineDetection", Some(Field::MachineDetection)),
            ("machine_detection", Some(Field::MachineDetection)),
            ("callConnectTime", Some(Field::CallConnectTime)),
            ("call_connect_time", Some(Field::CallConnectTime)),
            ("callDisconnecttime", Some(Field::CallDisconnectTime)),
            ("call-disconnect-time", Some(Field::CallDisconnectTime)),
            ("callDuration", Some(Field::Duration)),
            ("call_duration", Some(Field::Duration)),
            ("ringDurationInMS", Some(Field::RingDuration)),
            ("ring_duration_in_ms", Some(Field::RingDuration)),
            ("connectDurationInMS", Some(Field::ConnectDuration)),
            ("sessionId", None),
            ("conversation id", None),
            ("reasons", None),
            ("direction", None),
            ("", None),
        ];
        for (key, expected) in cases {
            assert_eq!(Field::from_key(key), expected, "key {key:?}");
        }
    }

    #[test]
    fn fold_key_drops_case_underscores_and_dashes() {
        assert_eq!(fold_key("Call_Disconnect-Time"), "calldisconnecttime");
    }

    #[test]
    fn null_is_absent_and_equal_duplicates_are_fine() {
        let body = json!({"status": null, "Duration": 14, "duration": 14, "extra": 1});
        let fields = KnownFields::collect(body.as_object().unwrap());
        assert_eq!(fields.get(Field::Status), &Slot::Absent);
        assert_eq!(fields.get(Field::Duration), &Slot::Present(&json!(14)));
        assert_eq!(fields.get(Field::Reason), &Slot::Absent);
    }

    #[test]
    fn null_beside_a_value_is_not_a_conflict() {
        let body = json!({"reason_code": null, "reasonCode": "busy"});
        let fields = KnownFields::collect(body.as_object().unwrap());
        assert_eq!(
            fields.get(Field::ReasonCode),
            &Slot::Present(&json!("busy"))
        );
    }

    #[test]
    fn different_duplicates_are_a_conflict_named_by_their_spellings() {
        let body = json!({"status": "failed", "conversation_id": "a", "conversationId": "b"});
        let fields = KnownFields::collect(body.as_object().unwrap());
        assert_eq!(
            fields.get(Field::ConversationId),
            &Slot::Conflict(
                "is given twice with different values, as `conversationId` and `conversation_id`"
                    .to_string()
            )
        );
        assert_eq!(fields.get(Field::Status), &Slot::Present(&json!("failed")));
    }

    #[test]
    fn kinds_are_named_with_their_article() {
        let cases = [
            (json!(null), "null"),
            (json!(true), "a boolean"),
            (json!(1.5), "a number"),
            (json!("x"), "a string"),
            (json!([]), "an array"),
            (json!({}), "an object"),
        ];
        for (value, expected) in cases {
            assert_eq!(kind(&value), expected);
        }
    }
}
