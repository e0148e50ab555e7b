//! The gateway's dial-out API, called with a fresh JWT per request, retried with backoff on
//! network errors and 5xx answers (never on 4xx).

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;

use super::DialoutSettings;
use super::{ApiVersion, DialoutRequest, Secret, jwt};

/// The most of a refusal's body kept.
pub const MAX_KEPT_BODY: usize = 4096;

/// Talks to one gateway.
#[derive(Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    url: String,
    version: ApiVersion,
    bot_id: String,
    client_id: String,
    secret: Secret,
    retries: u32,
    backoff: Duration,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What the gateway made of a dial-out, after any retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayOutcome {
    /// Requests sent.
    pub attempts: u32,
    pub result: GatewayResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayResult {
    /// A 2xx answer with `sid` and `callId`.
    Placed {
        status: u16,
        sid: String,
        call_id: String,
    },
    /// Any other answer: a 4xx, a 5xx after the last retry, or a 2xx without the ids.
    Refused {
        status: u16,
        body: String,
        error: String,
    },
    /// No answer: the gateway could not be reached, or did not answer in time.
    Unreachable { error: String },
}

#[derive(Deserialize)]
struct Answer {
    sid: String,
    #[serde(rename = "callId")]
    call_id: String,
}

/// What one request did, and whether another may follow.
enum Attempt {
    Done(GatewayResult),
    Retry(GatewayResult),
}

impl GatewayClient {
    /// A client for the configured gateway.
    pub fn new(settings: &DialoutSettings) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .user_agent(concat!("calltrail/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let base = settings.base_url.trim().trim_end_matches('/');
        Ok(Self {
            http,
            url: format!("{base}{}", settings.api_version.path(&settings.bot_id)),
            version: settings.api_version,
            bot_id: settings.bot_id.clone(),
            client_id: settings.client_id.clone(),
            secret: settings.client_secret.clone(),
            retries: settings.retries,
            backoff: Duration::from_millis(settings.retry_backoff_ms),
        })
    }

    /// Places `request`, telling the gateway to notify `notify_url`. Network errors (other
    /// than a timeout) and 5xx answers are retried up to the configured number of times,
    /// waiting the backoff, doubled each time; 4xx answers are final.
    ///
    /// A timeout is not retried: the gateway may have placed the call without answering, and
    /// a second request could ring the target twice.
    #[tracing::instrument(name = "gateway.dial", skip_all)]
    pub async fn dial(&self, request: &DialoutRequest, notify_url: &str) -> GatewayOutcome {
        let bot_id = (self.version == ApiVersion::V2).then_some(self.bot_id.as_str());
        let body = request.wire_body(notify_url, bot_id);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(&body).await {
                Attempt::Retry(result) if attempts <= self.retries => {
                    let wait = self.backoff * 2u32.saturating_pow(attempts - 1);
                    tracing::warn!(attempt = attempts, retry_in_ms = wait.as_millis() as u64, result = ?redacted(&result),
                        "the gateway did not take the dial-out; retrying");
                    tokio::time::sleep(wait).await;
                }
                Attempt::Retry(result) | Attempt::Done(result) => {
                    return GatewayOutcome { attempts, result };
                }
            }
        }
    }

    async fn attempt(&self, body: &serde_json::Value) -> Attempt {
        let token = match jwt::sign(&self.client_id, &self.secret, Utc::now()) {
            Ok(token) => token,
            Err(err) => {
                return Attempt::Done(GatewayResult::Unreachable {
                    error: format!("cannot sign the JWT: {err}"),
                });
            }
        };
        let sent = self
            .http
            .post(&self.url)
            .header("auth", token)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) if err.is_timeout() => {
                return Attempt::Done(GatewayResult::Unreachable {
                    error: "the gateway did not answer in time (not retried: it may have placed the call)".into(),
                });
            }
            Err(err) => {
                return Attempt::Retry(GatewayResult::Unreachable {
                    error: format!("cannot reach the gateway: {}", error_chain(&err)),
                });
            }
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(err) if status.is_success() => {
                return Attempt::Done(GatewayResult::Unreachable {
                    error: format!("the gateway's answer broke off: {}", error_chain(&err)),
                });
            }
            Err(_) => Default::default(),
        };
        let text = kept_body(&bytes);
        let code = status.as_u16();
        if status.is_success() {
            return Attempt::Done(match serde_json::from_slice::<Answer>(&bytes) {
                Ok(answer)
                    if !answer.sid.trim().is_empty() && !answer.call_id.trim().is_empty() =>
                {
                    GatewayResult::Placed {
                        status: code,
                        sid: answer.sid.trim().to_owned(),
                        call_id: answer.call_id.trim().to_owned(),
                    }
                }
                _ => GatewayResult::Refused {
                    status: code,
                    body: text,
                    error: format!("the gateway answered {status} without a sid and callId"),
                },
            });
        }
        let refused = GatewayResult::Refused {
            status: code,
            body: text,
            error: format!("the gateway answered {status}"),
        };
        if status.is_server_error() {
            Attempt::Retry(refused)
        } else {
            Attempt::Done(refused)
        }
    }
}

/// The result without the gateway's body, for logs.
fn redacted(result: &GatewayResult) -> String {
    match result {
        GatewayResult::Placed { status, .. } => format!("placed ({status})"),
        GatewayResult::Refused { error, .. } => error.clone(),
        GatewayResult::Unreachable { error } => error.clone(),
    }
}

/// Up to [`MAX_KEPT_BODY`] bytes of a body, as text.
fn kept_body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_KEPT_BODY)]);
    text.into_owned()
}

/// An error with its causes (reqwest's own message is terse).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
