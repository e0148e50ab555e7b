//! `POST /v1/dialouts` below the HTTP layer: store the dial-out, send it to the gateway,
//! record the answer; with an idempotency key, place it at most once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::dialout::client::{GatewayClient, GatewayResult};
use crate::dialout::{Dialout, DialoutRequest, DialoutSettings, DialoutState};
use crate::metrics::{DIALOUTS, Metrics};
use crate::store::dialouts::{DialoutFinish, Inserted, NewDialout};
use crate::store::{Store, StoreError};

/// How often a retried request polls the first one's dial-out while it is in flight.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Places dial-outs; off when `dialout.base_url` is not configured.
#[derive(Clone)]
pub struct Dialer {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    store: Store,
    client: GatewayClient,
    /// `{public_url}/notify/{token}`; holds a secret, so never logged.
    notify_url: String,
    /// How long a retried request waits for the first one to finish.
    max_wait: Duration,
    metrics: Metrics,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dialer({})",
            if self.inner.is_some() {
                "enabled"
            } else {
                "disabled"
            }
        )
    }
}

/// Why a dial-out was not placed (a gateway refusal is not an error: it is a stored
/// dial-out in state `failed`).
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error(
        "dial-outs are not configured: set dialout.base_url and the rest of the [dialout] section"
    )]
    Disabled,
    #[error("this Idempotency-Key was used for a different dial-out (id {0})")]
    KeyReused(i64),
    #[error("the dial-out with this Idempotency-Key (id {0}) is still in progress; retry shortly")]
    InProgress(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the dial-out task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A dial-out as `POST /v1/dialouts` answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub dialout: Dialout,
    /// True when an earlier request with the same idempotency key placed it.
    pub replayed: bool,
}

impl Dialer {
    /// A dialer for `settings`; `notify_token` (the first of `notify.tokens`) goes into the
    /// `notifyurl` path, after `dialout.public_url` or, without it, `http://{listening}`.
    /// Each gateway answer is counted in `metrics`.
    pub fn new(
        store: Store,
        settings: &DialoutSettings,
        notify_token: Option<&str>,
        listening: std::net::SocketAddr,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        if !settings.enabled() {
            return Ok(Self::disabled());
        }
        let client = GatewayClient::new(settings)?;
        let own = format!("http://{listening}");
        let base = match settings.public_url.trim() {
            "" => own.as_str(),
            url => url.trim_end_matches('/'),
        };
        tracing::info!(gateway = ?client, api = ?settings.api_version, "dial-outs enabled");
        let notify_url = match notify_token {
            Some(token) => format!("{base}/notify/{token}"),
            None => format!("{base}/notify"),
        };
        let per_attempt = Duration::from_millis(settings.timeout_ms) * 2;
        let backoff: Duration = (0..settings.retries)
            .map(|n| Duration::from_millis(settings.retry_backoff_ms) * 2u32.saturating_pow(n))
            .sum();
        let max_wait = per_attempt * (settings.retries + 1) + backoff + Duration::from_secs(5);
        Ok(Self {
            inner: Some(Arc::new(Inner {
                store,
                client,
                notify_url,
                max_wait,
                metrics,
            })),
        })
    }

    /// A dialer that refuses every dial-out.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Stores `request`, sends it to the gateway and records the answer. With
    /// `idempotency_key`, a request that finds the key already used returns that dial-out
    /// (waiting for it while it is in flight) instead of dialing again.
    pub async fn place(
        &self,
        request: DialoutRequest,
        idempotency_key: Option<String>,
    ) -> Result<Placed, DialError> {
        let inner = self.inner.clone().ok_or(DialError::Disabled)?;
        // The work goes on even if the client hangs up: a dial-out sent to the gateway is
        // always recorded.
        tokio::spawn(async move { inner.place(request, idempotency_key).await }).await?
    }
}

impl Inner {
    async fn place(
        &self,
        request: DialoutRequest,
        idempotency_key: Option<String>,
    ) -> Result<Placed, DialError> {
        let hash = request.hash();
        let new = NewDialout {
            request: &request,
            request_hash: &hash,
            idempotency_key: idempotency_key.as_deref(),
            requested_at: Utc::now(),
        };
        let pending = match self.store.insert_dialout(&new).await? {
            Inserted::New(dialout) => dialout,
            Inserted::Existing(first) if first.request_hash != hash => {
                return Err(DialError::KeyReused(first.id));
            }
            Inserted::Existing(first) => {
                let dialout = self.wait_for(first).await?;
                return Ok(Placed {
                    dialout,
                    replayed: true,
                });
            }
        };
        tracing::info!(dialout_id = pending.id, "placing a dial-out");
        let outcome = self.client.dial(&request, &self.notify_url).await;
        let result = match outcome.result {
            GatewayResult::Placed { .. } => "placed",
            GatewayResult::Refused { .. } => "refused",
            GatewayResult::Unreachable { .. } => "unreachable",
        };
        self.metrics.add(DIALOUTS, &[("result", result)], 1);
        let finish = finish(outcome.attempts, outcome.result);
        let dialout = self.store.finish_dialout(pending.id, &finish).await?;
        match dialout.state {
            DialoutState::Placed => tracing::info!(
                dialout_id = dialout.id,
                sid = dialout.sid.as_deref(),
                call_id = dialout.call_id.as_deref(),
                attempts = dialout.attempts,
                "dial-out placed"
            ),
            _ => tracing::warn!(
                dialout_id = dialout.id,
                gateway_status = dialout.gateway_status,
                error = dialout.error.as_deref(),
                attempts = dialout.attempts,
                "dial-out failed"
            ),
        }
        Ok(Placed {
            dialout,
            replayed: false,
        })
    }

    /// The first request's dial-out once it is no longer pending.
    async fn wait_for(&self, first: Dialout) -> Result<Dialout, DialError> {
        let deadline = tokio::time::Instant::now() + self.max_wait;
        let mut current = first;
        while current.state == DialoutState::Pending {
            if tokio::time::Instant::now() >= deadline {
                return Err(DialError::InProgress(current.id));
            }
            tokio::time::sleep(POLL_EVERY).await;
            let id = current.id;
            current = self
                .store
                .dialout(id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("dialout {id} disappeared")))?;
        }
        Ok(current)
    }
}

/// What is stored for the gateway's answer.
fn finish(attempts: u32, result: GatewayResult) -> DialoutFinish {
    let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
    let completed_at = Utc::now();
    match result {
        GatewayResult::Placed {
            status,
            sid,
            call_id,
        } => DialoutFinish {
            state: DialoutState::Placed,
            sid: Some(sid),
            call_id: Some(call_id),
            attempts,
            gateway_status: Some(status),
            gateway_body: None,
            error: None,
            completed_at,
        },
        GatewayResult::Refused {
            status,
            body,
            error,
        } => DialoutFinish {
            state: DialoutState::Failed,
            sid: None,
            call_id: None,
            attempts,
            gateway_status: Some(status),
            gateway_body: Some(body),
            error: Some(error),
            completed_at,
        },
        GatewayResult::Unreachable { error } => DialoutFinish {
            state: DialoutState::Failed,
            sid: None,
            call_id: None,
            attempts,
            gateway_status: None,
            gateway_body: None,
            error: Some(error),
            completed_at,
        },
    }
}
