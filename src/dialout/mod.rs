//! Placing dial-outs through the voice gateway, so that each call's request (target, caller,
//! metadata) and its outcome sit in one record.
//!
//! [`request`] and [`rules`] are pure: what a dial-out request may hold, and the body the
//! gateway is sent. [`jwt`] signs the gateway's `auth` header. [`client`] talks to the
//! gateway; the `dialer` module ties the store and the client together for
//! `POST /v1/dialouts`.

pub mod client;
pub mod jwt;
pub mod request;
pub mod rules;
mod settings;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use request::{DialoutRequest, Timers};
pub use settings::DialoutSettings;

/// Which of the gateway's dial-out APIs to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// `POST {base}/api/1.1/public/bot/{botId}/smartassist/dialout`.
    V1,
    /// `POST {base}/api/1.1/public/V2/smartassist/dialout`, `botId` in the body.
    V2,
}

impl ApiVersion {
    /// Reads `v1` / `v2` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "v1" => Some(ApiVersion::V1),
            "v2" => Some(ApiVersion::V2),
            _ => None,
        }
    }

    /// The request path for `bot_id`.
    pub fn path(self, bot_id: &str) -> String {
        match self {
            ApiVersion::V1 => format!("/api/1.1/public/bot/{bot_id}/smartassist/dialout"),
            ApiVersion::V2 => "/api/1.1/public/V2/smartassist/dialout".to_owned(),
        }
    }
}

/// A configured secret: readable on purpose only, never through `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(unset)"
        } else {
            "Secret(***)"
        })
    }
}

/// Where a dial-out stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DialoutState {
    /// Stored; the gateway has not answered yet.
    Pending,
    /// The gateway accepted it and answered `sid` and `callId`.
    Placed,
    /// The gateway refused it or could not be reached.
    Failed,
}

impl DialoutState {
    pub const ALL: &'static [DialoutState] = &[Self::Pending, Self::Placed, Self::Failed];

    /// The API and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DialoutState::Pending => "pending",
            DialoutState::Placed => "placed",
            DialoutState::Failed => "failed",
        }
    }

    /// Reads the spelling back.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

/// A stored dial-out: the request, and what the gateway made of it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Dialout {
    pub id: i64,
    pub state: DialoutState,
    #[serde(flatten)]
    pub request: DialoutRequest,
    /// The `Idempotency-Key` it was placed with, if any.
    pub idempotency_key: Option<String>,
    /// The gateway's `sid`.
    pub sid: Option<String>,
    /// The gateway's `callId`: the `conversationId` of the call's notifications.
    pub call_id: Option<String>,
    /// Requests sent to the gateway (retries included).
    pub attempts: i32,
    /// The HTTP status of the gateway's last answer; null when it could not be reached.
    pub gateway_status: Option<u16>,
    /// The body of the gateway's last answer when it refused (at most 4 KiB).
    pub gateway_body: Option<String>,
    /// Why a failed dial-out failed.
    pub error: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// When the gateway's answer (or the last failure) was recorded.
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub request_hash: String,
}

/// The dial-out a call came from, as the call record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DialoutLink {
    pub id: i64,
    pub target: String,
    pub caller: String,
    /// The dial-out's `metadata`, null when it had none.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub requested_at: DateTime<Utc>,
}

impl From<&Dialout> for DialoutLink {
    fn from(d: &Dialout) -> Self {
        Self {
            id: d.id,
            target: d.request.target.clone(),
            caller: d.request.caller.clone(),
            metadata: d.request.metadata.clone(),
            requested_at: d.requested_at,
        }
    }
}
