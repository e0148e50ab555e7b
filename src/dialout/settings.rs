//! The `[dialout]` settings: placing dial-outs through the voice gateway.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};

/// Placing dial-outs through the voice gateway (`POST /v1/dialouts`); off while `base_url`
/// is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialoutSettings {
    /// The gateway's host, e.g. `https://platform.kore.ai`; empty turns dial-outs off.
    pub base_url: String,
    /// Which dial-out API to call: `v1` (bot id in the path) or `v2` (bot id in the body).
    #[serde(deserialize_with = "deserialize_api_version")]
    pub api_version: super::ApiVersion,
    /// The bot (or stream) id.
    pub bot_id: String,
    /// The app's client id: the JWT's `appId`.
    pub client_id: String,
    /// The app's client secret, which signs the JWT. Never logged.
    pub client_secret: super::Secret,
    /// calltrail's own base URL as the gateway reaches it; `notifyurl` is
    /// `{public_url}/notify/{token}`. Empty: `http://` and the address calltrail listens on
    /// (only allowed when that is a specific address, not `0.0.0.0`).
    pub public_url: String,
    /// How long one request to the gateway may take.
    pub timeout_ms: u64,
    /// How many times a network error or a 5xx answer is retried (0–10).
    pub retries: u32,
    /// The wait before the first retry; it doubles for each next one.
    pub retry_backoff_ms: u64,
}

impl Default for DialoutSettings {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            api_version: super::ApiVersion::V1,
            bot_id: String::new(),
            client_id: String::new(),
            client_secret: super::Secret::default(),
            public_url: String::new(),
            timeout_ms: 10_000,
            retries: 2,
            retry_backoff_ms: 250,
        }
    }
}

impl DialoutSettings {
    /// True when dial-outs are configured.
    pub fn enabled(&self) -> bool {
        !self.base_url.trim().is_empty()
    }

    /// Checks the section: with `base_url` set, every other key it needs must be set too.
    /// An error names the key at fault and why.
    pub fn validate(&self, bind: SocketAddr) -> Result<(), (&'static str, String)> {
        let invalid = |key, message: String| Err((key, message));
        if self.timeout_ms == 0 {
            return invalid("dialout.timeout_ms", "must be at least 1".into());
        }
        if self.retries > 10 {
            return invalid("dialout.retries", "must be at most 10".into());
        }
        if self.retry_backoff_ms > 60_000 {
            return invalid("dialout.retry_backoff_ms", "must be at most 60000".into());
        }
        if !self.enabled() {
            return Ok(());
        }
        let is_http = |url: &str| {
            reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        };
        if !is_http(&self.base_url) {
            return invalid(
                "dialout.base_url",
                format!("`{}` is not an http(s) URL", self.base_url),
            );
        }
        if self.public_url.trim().is_empty() {
            if bind.ip().is_unspecified() {
                return invalid(
                    "dialout.public_url",
                    format!(
                        "must be set (calltrail's URL as the gateway reaches it) while server.bind is {bind}"
                    ),
                );
            }
        } else if !is_http(&self.public_url) {
            return invalid(
                "dialout.public_url",
                format!(
                    "`{}` is not an http(s) URL (calltrail's URL as the gateway reaches it)",
                    self.public_url
                ),
            );
        }
        for (key, value) in [
            ("dialout.bot_id", self.bot_id.as_str()),
            ("dialout.client_id", self.client_id.as_str()),
            ("dialout.client_secret", self.client_secret.expose()),
        ] {
            if value.trim().is_empty() {
                return invalid(key, "must be set when dialout.base_url is set".into());
            }
        }
        Ok(())
    }
}

fn deserialize_api_version<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<super::ApiVersion, D::Error> {
    let text = String::deserialize(deserializer)?;
    super::ApiVersion::parse(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is neither `v1` nor `v2`")))
}
