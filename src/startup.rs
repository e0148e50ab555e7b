//! Building and running the service: bind, wire the state, migrate in the background, serve.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::dialer::Dialer;
use crate::http::auth::Secrets;
use crate::http::connection::{self, Listener};
use crate::http::error::DisplayChain;
use crate::http::health::Readiness;
use crate::http::metrics::Scrape;
use crate::http::signed::Signatures;
use crate::http::{AppState, MetricsRoute, NotifyGuard, Routing};
use crate::ingest::{Ingest, Writer};
use crate::metrics::{Metrics, UPKEEP_EVERY};
use crate::notification::Format;
use crate::reprocess::Reprocessor;
use crate::retention::{Retention, RetentionSettings};
use crate::spool::{Intake, Spool};
use crate::store::Store;

/// How long shutdown waits for the group-commit writer once every request is answered.
const WRITER_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Descriptors kept for other than client connections: the database pool, the SQLite
/// files, the listeners, the logs.
const RESERVED_DESCRIPTORS: usize = 256;

/// A bound, ready-to-serve calltrail.
pub struct Application {
    listener: Listener,
    /// `metrics.bind`, when set.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    writer: Writer,
    /// The retention task's work and its settings, when anything is ever deleted.
    retention: Option<(Retention, RetentionSettings)>,
}

impl Application {
    /// Binds the listener (port 0 picks a free one) and wires the state. Does not touch the
    /// database: migrations start with [`Application::run_until`], so the service comes up
    /// (and reports 503) while its database is down.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let store = Store::connect_lazy(&settings.database.url, settings.database.max_connections)
            .context("cannot use database.url")?;
        let listener = TcpListener::bind(settings.server.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let metrics_listener = match settings.metrics.bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("cannot listen on metrics.bind {bind}"))?,
            ),
            None => None,
        };
        warn_if_open(settings);
        let metrics = Metrics::new();
        let mut limits = settings.server.connection_limits();
        let reserve = RESERVED_DESCRIPTORS + settings.database.max_connections as usize;
        limits.max_connections = connection::connections_allowed(limits.max_connections, reserve);
        let listener = Listener::new(listener, limits, metrics.clone());
        let (ingest, writer) = Ingest::with_group_commit(
            store.clone(),
            Format::Kore,
            settings.notify.normalize_settings(),
            settings
                .notify
                .group_commit_settings(crate::ingest::default_writers(&store)),
            metrics.clone(),
        );
        let routing = Routing {
            api_timeout: Duration::from_millis(settings.api.timeout_ms),
            metrics: match (settings.metrics.bind, settings.metrics.public) {
                (Some(_), public) => MetricsRoute::Elsewhere { public },
                (None, true) => MetricsRoute::Public,
                (None, false) => MetricsRoute::Protected,
            },
        };
        let readiness = Readiness::default();
        let spool_settings = settings.spool.settings(matches!(store, Store::Postgres(_)));
        let spool = if spool_settings.enabled {
            Some(
                Spool::open(&spool_settings.path, spool_settings.max_bytes)
                    .context("cannot start the spool's thread")?,
            )
        } else {
            tracing::info!(
                "spool.enabled is off: notifications the database cannot take are answered 503"
            );
            None
        };
        let intake = Intake::new(
            ingest.clone(),
            spool,
            readiness.subscribe(),
            spool_settings.commit_timeout,
            metrics.clone(),
        );
        let state = AppState {
            ingest,
            intake,
            store: store.clone(),
            notify: NotifyGuard {
                tokens: Secrets::new(&settings.notify.tokens),
                max_body_bytes: settings.notify.max_body_bytes,
                body_timeout: settings.server.body_timeout(),
                unauthorized: Arc::default(),
                signatures: Signatures::new(settings),
                bad_signatures: Arc::default(),
            },
            api_keys: Secrets::new(&settings.api.keys),
            readiness,
            reprocessor: Reprocessor::new(store.clone(), settings.notify.normalize_settings()),
            dialer: Dialer::new(
                store,
                &settings.dialout,
                settings.notify.tokens.first().map(String::as_str),
                axum::serve::Listener::local_addr(&listener)?,
                metrics.clone(),
            )
            .context("cannot set up dial-outs")?,
            scrape: Scrape {
                connections: Some(listener.counter()),
            },
            metrics: metrics.clone(),
            routing,
        };
        let retention = settings.retention.enabled().then(|| {
            let retention =
                Retention::new(state.store.clone(), &settings.retention, metrics.clone());
            (retention, settings.retention.clone())
        });
        Ok(Self {
            listener,
            metrics_listener,
            state,
            writer,
            retention,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        axum::serve::Listener::local_addr(&self.listener)
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The port of `metrics.bind`, when set.
    pub fn metrics_port(&self) -> Option<u16> {
        let listener = self.metrics_listener.as_ref()?;
        listener.local_addr().ok().map(|a| a.port())
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests (each answered
    /// after the commit that holds it) and closes the pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        // Retention first runs once the schema is in place, then hourly.
        let (migrated, retention) = (
            migrate_until_ready(store.clone(), self.state.readiness.clone()),
            self.retention,
        );
        let migrator = tokio::spawn(async move {
            migrated.await;
            if let Some((retention, settings)) = retention {
                retention.run_hourly(settings).await;
            }
        });
        tracing::info!(
            address = %axum::serve::Listener::local_addr(&self.listener)?,
            database = store.backend(),
            "calltrail listening"
        );
        let upkeep = tokio::spawn(upkeep(self.state.metrics.clone()));
        let replay = crate::spool::start_replay(&self.state.intake, store.clone());
        // Both listeners stop on the one signal.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics_server = self.metrics_listener.map(|listener| {
            let app = crate::http::metrics_router(self.state.clone());
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            })
        });
        let app = connection::Tracked::new(crate::http::router(self.state));
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = stop.send(true);
            })
            .await;
        if let Some(metrics_server) = metrics_server {
            metrics_server.await??;
        }
        served.context("server failed")?;
        upkeep.abort();
        // What the replay did not finish stays in the spool for the next run.
        if let Some(replay) = replay {
            replay.abort();
            let _ = replay.await;
        }
        // Every request has been answered, so the queue is empty and its senders are gone;
        // the writer ends by itself.
        if !self.writer.finish(WRITER_DRAIN_TIMEOUT).await {
            tracing::warn!("the group-commit writer did not stop in time");
        }
        migrator.abort();
        store.close().await;
        tracing::info!("calltrail stopped");
        Ok(())
    }
}

/// Folds latency samples into their buckets every few seconds, scraped or not.
async fn upkeep(metrics: Metrics) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        every.tick().await;
        metrics.upkeep();
    }
}

/// Applies migrations, retrying with backoff while the database cannot be reached.
async fn migrate_until_ready(store: Store, readiness: Readiness) {
    let mut delay = Duration::from_millis(250);
    loop {
        match store.migrate().await {
            Ok(()) => {
                tracing::info!(database = store.backend(), "database ready");
                readiness.set_ready();
                return;
            }
            Err(err) => {
                tracing::error!(error = %DisplayChain(&err), retry_in_s = delay.as_secs_f32(), "cannot migrate the database");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

fn warn_if_open(settings: &Settings) {
    if settings.notify.tokens.is_empty() {
        tracing::warn!(
            "notify.tokens is empty: /notify accepts notifications from anyone who can reach it"
        );
    }
    if settings.api.keys.is_empty() {
        tracing::warn!("api.keys is empty: /v1 answers anyone who can reach it");
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
