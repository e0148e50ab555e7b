//! The simulator's HTTP side: the gateway's dial-out APIs.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::faults;
use super::player::{self, Call, LogWriter};
use super::script::{self, CallPlan};
pub use super::settings::SimSettings;
use super::validate;
use crate::dialout::jwt;

/// What the simulator shares between requests and calls.
struct Shared {
    settings: SimSettings,
    rng: Mutex<fastrand::Rng>,
    http: reqwest::Client,
    log: Option<LogWriter>,
    /// Dial-out requests received, whatever became of them.
    requests: AtomicU64,
    /// Injected 500s still to give.
    failures_left: AtomicU32,
    /// The bodies of the dial-outs accepted, in order.
    accepted: Mutex<Vec<Value>>,
    /// Calls being played.
    playing: tokio::sync::watch::Sender<usize>,
    /// Calls whose notifications have all been delivered (or given up on).
    played: AtomicU64,
}

/// A bound simulator, ready to serve.
pub struct Simulator {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// A view of a running simulator, for tests and for the command line.
#[derive(Clone)]
pub struct SimHandle(Arc<Shared>);

impl Simulator {
    /// Binds the listener (port 0 picks a free one) and opens the log.
    pub async fn bind(settings: SimSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.speed > 0.0 && settings.speed.is_finite(),
            "--speed must be above 0"
        );
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let log = match &settings.log {
            Some(path) => Some(
                LogWriter::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            None => None,
        };
        let rng = settings
            .seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent("calltrail-sim")
            .build()?;
        let shared = Shared {
            failures_left: AtomicU32::new(settings.fail_first_dialouts),
            settings,
            rng: Mutex::new(rng),
            http,
            log,
            requests: AtomicU64::new(0),
            accepted: Mutex::new(Vec::new()),
            playing: tokio::sync::watch::Sender::new(0),
            played: AtomicU64::new(0),
        };
        Ok(Self {
            listener,
            shared: Arc::new(shared),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn handle(&self) -> SimHandle {
        SimHandle(self.shared.clone())
    }

    /// Serves until `shutdown` completes, then lets the calls in play finish for up to
    /// `drain` before returning.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        drain: Duration,
    ) -> anyhow::Result<()> {
        let handle = self.handle();
        let app = Router::new()
            .route(
                "/api/1.1/public/bot/{bot_id}/smartassist/dialout",
                post(dial_v1),
            )
            .route("/api/1.1/public/V2/smartassist/dialout", post(dial_v2))
            .route(
                "/healthz",
                get(|| async { axum::Json(json!({"status": "ok"})) }),
            )
            .with_state(self.shared);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("the simulator's server failed")?;
        if !handle.wait_idle(drain).await {
            tracing::warn!(
                playing = handle.playing(),
                "calls still playing at shutdown were cut off"
            );
        }
        Ok(())
    }
}

impl SimHandle {
    /// Dial-out requests received, whatever became of them.
    pub fn requests(&self) -> u64 {
        self.0.requests.load(Ordering::Relaxed)
    }

    /// The bodies of the dial-outs accepted, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.0
            .accepted
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Calls being played now.
    pub fn playing(&self) -> usize {
        *self.0.playing.borrow()
    }

    /// Calls played to the end.
    pub fn played(&self) -> u64 {
        self.0.played.load(Ordering::Relaxed)
    }

    /// Waits until no call is playing, at most `timeout`; true if none is.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let mut playing = self.0.playing.subscribe();
        tokio::time::timeout(timeout, playing.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// `POST /api/1.1/public/bot/{botId}/smartassist/dialout`.
async fn dial_v1(
    State(shared): State<Arc<Shared>>,
    Path(bot_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    dial(&shared, "v1", Some(bot_id), &headers, &body)
}

/// `POST /api/1.1/public/V2/smartassist/dialout`, `botId` in the body.
async fn dial_v2(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    dial(&shared, "v2", None, &headers, &body)
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"errors": [{"msg": message.into(), "code": status.as_u16()}]})),
    )
        .into_response()
}

fn dial(
    shared: &Arc<Shared>,
    api: &'static str,
    path_bot: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let settings = &shared.settings;
    let Some(token) = headers.get("auth").and_then(|v| v.to_str().ok()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the `auth` header with a JWT is required",
        );
    };
    if let Err(err) = jwt::verify(token.trim(), &settings.client_id, &settings.client_secret) {
        return refuse(StatusCode::UNAUTHORIZED, err.to_string());
    }
    let injected = shared
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if injected {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure (--fail-first-dialouts)",
        );
    }
    let request = match validate::dial_request(body) {
        Ok(request) => request,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let bot_id = match (path_bot, &request.bot_id) {
        (Some(bot), _) => bot,
        (None, Some(bot)) => bot.clone(),
        (None, None) => return refuse(StatusCode::BAD_REQUEST, "botId: is required"),
    };
    if settings
        .bot_id
        .as_ref()
        .is_some_and(|expected| *expected != bot_id)
    {
        return refuse(StatusCode::NOT_FOUND, format!("no bot `{bot_id}`"));
    }
    let (sid, call_id) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let dialed_at = Utc::now()
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or_else(|_| Utc::now());
    let call = {
        let Ok(mut rng) = shared.rng.lock() else {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        };
        let outcome = request
            .forced
            .unwrap_or_else(|| settings.weights.choose(rng.f64()));
        let plan = CallPlan {
            call_id: call_id.clone(),
            outcome,
            amd_mode: request.amd_mode,
            timers: request.timers,
            dialed_at,
            zone: settings.timezone,
            date_order: settings.date_order,
        };
        let script = script::script(&plan, &mut rng);
        let delivery = faults::plan(&script, &settings.faults, &mut rng);
        let bodies = script
            .notifications
            .iter()
            .map(|n| faults::vary_keys(&n.body, settings.faults.key_variants, &mut rng))
            .collect();
        Call {
            api,
            sid: sid.clone(),
            call_id: call_id.clone(),
            dialed_at,
            request,
            outcome,
            script,
            delivery,
            bodies,
        }
    };
    if let Ok(mut accepted) = shared.accepted.lock() {
        accepted.push(serde_json::from_slice(body).unwrap_or(Value::Null));
    }
    tracing::info!(%sid, %call_id, api, outcome = call.outcome.as_str(), "dial-out accepted");
    shared.playing.send_modify(|n| *n += 1);
    let shared = shared.clone();
    tokio::spawn(async move {
        let log = shared.log.clone();
        player::play(&shared.http, &shared.settings, log.as_ref(), call).await;
        shared.played.fetch_add(1, Ordering::Relaxed);
        shared.playing.send_modify(|n| *n -= 1);
    });
    axum::Json(json!({"sid": sid, "callId": call_id})).into_response()
}
