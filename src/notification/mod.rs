//! Gateway notifications: from raw request bytes to a typed, normalized [`Event`].
//!
//! Everything here is pure (no I/O). Each gateway wire format sits behind [`Format`], so
//! that other gateways' payloads can be added beside the Kore.ai one without touching the
//! HTTP layer or the store.

mod canonical;
mod checks;
mod fields;
pub mod jambonz;
pub mod kore;
pub mod normalize;
pub mod signature;
pub mod time;
pub mod twilio;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use canonical::content_hash;
pub use fields::fold_key;

/// How local-time timestamps without an offset are read (docs/api.md, "What calltrail makes of
/// a notification").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormalizeSettings {
    /// Zone of the gateway's local-time timestamps.
    pub timezone: chrono_tz::Tz,
    /// Order of day and month in `5/8/2023`.
    pub date_order: DateOrder,
}

impl Default for NormalizeSettings {
    fn default() -> Self {
        Self {
            timezone: chrono_tz::UTC,
            date_order: DateOrder::Mdy,
        }
    }
}

/// Order of the day and month in the gateway's `M/D/YYYY` dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// `5/8/2023` is May 8th.
    Mdy,
    /// `5/8/2023` is August 5th.
    Dmy,
}

/// The wire formats calltrail understands, one per source; serialized as the source's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Kore.ai Voice Gateway call-status notifications.
    Kore,
    /// jambonz call-status webhooks and AMD events.
    Jambonz,
    /// Twilio call status and asynchronous AMD callbacks.
    Twilio,
}

impl Format {
    /// Every format, in the order of the documentation.
    pub const ALL: [Format; 3] = [Format::Kore, Format::Jambonz, Format::Twilio];

    /// The name of the gateway whose notifications this reads, as calls and metrics carry
    /// it: `kore`, `jambonz`, `twilio`.
    pub fn source(self) -> &'static str {
        match self {
            Format::Kore => "kore",
            Format::Jambonz => "jambonz",
            Format::Twilio => "twilio",
        }
    }

    /// Reads a source's name back.
    pub fn parse_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.source() == name)
    }

    /// Parses one request body into a normalized notification, or says why it cannot be used.
    pub fn parse(
        self,
        body: &[u8],
        settings: &NormalizeSettings,
    ) -> Result<Notification, Rejection> {
        match self {
            Format::Kore => kore::parse(body, settings),
            Format::Jambonz => jambonz::parse(body, settings),
            Format::Twilio => twilio::parse(body, settings),
        }
    }
}

/// A notification that passed validation: its normalized event plus what identifies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The normalized fields.
    pub event: Event,
    /// The JSON object as received (every key kept).
    pub payload: serde_json::Value,
    /// Hex SHA-256 of the payload's canonical JSON: equal for the same content whatever the
    /// key order or whitespace. Together with the conversation id it identifies duplicates.
    pub content_hash: String,
}

/// One notification, normalized (docs/api.md, "What calltrail makes of a notification").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub conversation_id: String,
    /// The gateway that sent it: `kore`, `jambonz` or `twilio`.
    pub source: Format,
    /// Trimmed and lower-cased; see [`Status`] for the known values.
    pub status: String,
    pub reason_code: Option<String>,
    pub reason_code_raw: Option<String>,
    pub reason: Option<String>,
    pub sip_code: Option<u16>,
    pub sip_reason: Option<String>,
    pub amd_mode: Option<AmdMode>,
    pub amd_result: Option<AmdResult>,
    pub duration_s: Option<i64>,
    /// How long the callee's phone rang, in milliseconds.
    pub ring_ms: Option<i64>,
    /// How long the call took to connect, from the dial to the answer, in milliseconds.
    pub connect_ms: Option<i64>,
    pub connect_time: Option<DateTime<Utc>>,
    pub disconnect_time: Option<DateTime<Utc>>,
    pub warnings: Vec<String>,
}

impl Event {
    /// The known status this event carries, if any.
    pub fn known_status(&self) -> Option<Status> {
        Status::recognize(&self.status)
    }
}

/// Why a body could not become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not JSON, or JSON but not an object (answered 400).
    #[error("{0}")]
    Malformed(String),
    /// A JSON object whose fields break docs/api.md, "Receiving" (answered 422).
    #[error("invalid fields: {}", field_list(.errors))]
    Invalid {
        /// The conversation id, when one could be read.
        conversation_id: Option<String>,
        errors: Vec<FieldError>,
    },
}

fn field_list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| e.field.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The wire name of the field (`conversationId`, `duration`, …).
    pub field: String,
    pub message: String,
}

/// Generates the string conversions shared by the small vocabularies below.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub enum $name {
            // `schema(rename)` too: utoipa's derive misses a `serde(rename)` made by a macro.
            $(#[serde(rename = $text)] #[schema(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and storage spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Reads the spelling back, ignoring case and surrounding whitespace.
            pub fn parse(text: &str) -> Option<Self> {
                let text = text.trim();
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// The statuses calltrail knows, from every source (docs/api.md, "Sources"): Kore.ai's,
    /// jambonz's and Twilio's. A status means the same on every endpoint.
    Status {
        Answered => "answered",
        CallInProgress => "call-in-progress",
        InProgress => "in-progress",
        Completed => "completed",
        Failed => "failed",
        Busy => "busy",
        NoAnswer => "no-answer",
        Canceled => "canceled",
        Queued => "queued",
        Initiated => "initiated",
        Trying => "trying",
        Ringing => "ringing",
        EarlyMedia => "early-media",
    }
}

/// What a status says about where the call stands (docs/api.md, "The call record").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Being set up (queued, ringing, …): does not change the call's state.
    Setup,
    /// Answered and up: the call is in progress.
    Up,
    /// Ended after it was answered.
    Completed,
    /// Ended without being answered.
    Failed,
}

impl Status {
    /// Reads a status in any case, with `-`, `_` or spaces between its words
    /// (`Call_In_Progress`, `call in progress`, `NO-ANSWER`).
    pub fn recognize(text: &str) -> Option<Self> {
        Self::parse(&normalize::canonical_reason_code(text)?)
    }

    /// Where a call with this status stands.
    pub fn stage(self) -> Stage {
        match self {
            Status::Answered | Status::CallInProgress | Status::InProgress => Stage::Up,
            Status::Completed => Stage::Completed,
            Status::Failed | Status::Busy | Status::NoAnswer | Status::Canceled => Stage::Failed,
            Status::Queued
            | Status::Initiated
            | Status::Trying
            | Status::Ringing
            | Status::EarlyMedia => Stage::Setup,
        }
    }
}

vocabulary! {
    /// The answering-machine-detection mode echoed on failed calls.
    AmdMode { Disabled => "disabled", Detect => "detect", Disconnect => "disconnect" }
}

vocabulary! {
    /// Answering-machine-detection results, declared from the highest precedence down
    /// (docs/api.md, "The call record": when a call's events disagree, the highest wins).
    AmdResult {
        ToneDetected => "amd_tone_detected",
        MachineStoppedSpeaking => "amd_machine_stopped_speaking",
        MachineDetected => "amd_machine_detected",
        HumanDetected => "amd_human_detected",
        NoSpeechDetected => "amd_no_speech_detected",
        DecisionTimeout => "amd_decision_timeout",
        Error => "amd_error",
        Stopped => "amd_stopped",
    }
}
