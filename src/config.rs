//! Configuration (docs/configuration.md): built-in defaults < `calltrail.toml` <
//! `CALLTRAIL__SECTION__KEY` environment variables; `DATABASE_URL`, when set, overrides
//! `database.url`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

mod sources;

pub use sources::{JambonzSettings, TwilioSettings};

pub use crate::dialout::DialoutSettings;
use crate::dialout::Secret;
use crate::http::connection::ConnectionLimits;
use crate::ingest::{self, GroupCommitSettings};
use crate::metrics::MetricsSettings;
use crate::notification::{DateOrder, NormalizeSettings};
pub use crate::retention::RetentionSettings;
use crate::spool::SpoolConfig;
pub use crate::telemetry::{LogFormat, LogSettings};

/// The file read when no `--config` / `CALLTRAIL_CONFIG` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "calltrail.toml";

/// The largest `notify.batch_max`: bigger batches only add latency, and multi-row
/// statements must stay within the databases' limits on bound parameters.
const MAX_BATCH: usize = 4096;
/// The longest `notify.batch_wait_ms`: every request of a batch waits this long.
const MAX_BATCH_WAIT_MS: u64 = 1000;
/// The most `notify.writers`: each holds a database connection while it writes.
pub const MAX_WRITERS: usize = ingest::MAX_WRITERS;

/// Everything calltrail can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub notify: NotifySettings,
    pub api: ApiSettings,
    pub log: LogSettings,
    pub dialout: DialoutSettings,
    pub metrics: MetricsSettings,
    pub jambonz: JambonzSettings,
    pub twilio: TwilioSettings,
    pub retention: RetentionSettings,
    pub spool: SpoolConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Must be true to listen on a non-loopback address without tokens and API keys.
    pub allow_unauthenticated: bool,
    /// Client connections served at once; beyond it calltrail stops accepting until one
    /// closes. Lowered (with a warning) to what the open-file limit allows.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, from its first byte (or from
    /// connecting).
    pub header_timeout_ms: u64,
    /// How long a client may take to send a `/notify` body; a slower one gets `408`.
    pub body_timeout_ms: u64,
    /// How long a kept-alive connection may wait for its next request, and a response for
    /// the client to read it.
    pub idle_timeout_ms: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_unauthenticated: false,
            max_connections: 16_384,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
        }
    }
}

impl ServerSettings {
    /// The limits of every client connection.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
        }
    }

    /// How long a `/notify` body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://calltrail.db".into(),
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Accepted notification tokens; empty means `/notify` is open.
    pub tokens: Vec<String>,
    /// Larger bodies are answered 413.
    pub max_body_bytes: usize,
    /// Zone of the gateway's local-time timestamps.
    #[serde(deserialize_with = "deserialize_timezone")]
    pub timezone: chrono_tz::Tz,
    /// Day/month order of the gateway's dates.
    #[serde(deserialize_with = "deserialize_date_order")]
    pub date_order: DateOrder,
    /// Bodies that may wait for the group-commit writer; when full, `/notify` answers 503.
    pub queue_capacity: usize,
    /// The most bodies the writer records in one transaction.
    pub batch_max: usize,
    /// How long the writer waits for more bodies before writing a batch that is not full;
    /// 0 writes whatever is waiting at once (a batch fills while the previous one commits).
    pub batch_wait_ms: u64,
    /// Group-commit writers, each taking batches from the one queue in a transaction of its
    /// own; unset: [`NotifySettings::group_commit_settings`] picks by store.
    pub writers: Option<usize>,
    /// Kore.ai's signing secrets; when any is set, every notification to `/notify` must carry
    /// a valid `SAVG-Signature`. Never logged.
    pub signing_secrets: Vec<Secret>,
    /// How far a `t=…,v1=…` signature's timestamp may be from now, either way, in seconds.
    pub signature_tolerance_s: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            max_body_bytes: 65_536,
            timezone: chrono_tz::UTC,
            date_order: DateOrder::Mdy,
            queue_capacity: 1024,
            batch_max: 256,
            batch_wait_ms: 0,
            writers: None,
            signing_secrets: Vec::new(),
            signature_tolerance_s: crate::notification::signature::DEFAULT_TOLERANCE_S,
        }
    }
}

impl NotifySettings {
    /// How timestamps are read.
    pub fn normalize_settings(&self) -> NormalizeSettings {
        NormalizeSettings {
            timezone: self.timezone,
            date_order: self.date_order,
        }
    }

    /// How the group-commit writers batch; `default_writers` unless `notify.writers` says
    /// otherwise (see [`ingest::default_writers`]).
    pub fn group_commit_settings(&self, default_writers: usize) -> GroupCommitSettings {
        GroupCommitSettings {
            queue_capacity: self.queue_capacity,
            batch_max: self.batch_max,
            batch_wait: Duration::from_millis(self.batch_wait_ms),
            writers: self.writers.unwrap_or(default_writers),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Accepted API keys for `/v1/*`; empty means the API is open.
    pub keys: Vec<String>,
    /// How long a `/v1` request may take until its response starts (a streamed export's
    /// body is not cut); a slower one is answered `503`.
    pub timeout_ms: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            timeout_ms: 30_000,
        }
    }
}

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

impl From<config::ConfigError> for ConfigError {
    fn from(err: config::ConfigError) -> Self {
        ConfigError::Load(err)
    }
}

impl Settings {
    /// Loads the layered configuration. `file` is the explicit `--config` / `CALLTRAIL_CONFIG`
    /// path (it must exist); without it `calltrail.toml` is read when present.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file_source = match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => config::File::from(path).required(true),
            None => config::File::with_name(DEFAULT_CONFIG_FILE).required(false),
        };
        let environment = config::Environment::with_prefix("CALLTRAIL")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("notify.tokens")
            .with_list_parse_key("api.keys")
            .with_list_parse_key("notify.signing_secrets")
            .with_list_parse_key("jambonz.signing_secrets")
            .with_list_parse_key("twilio.auth_tokens")
            .try_parsing(true);
        let database_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty());
        let settings: Settings = config::Config::builder()
            .add_source(file_source)
            .add_source(environment)
            .set_override_option("database.url", database_url)?
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot, including the refusal to listen on a public address
    /// without authentication.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        let url = &self.database.url;
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return invalid("database.url", "must start with sqlite:// or postgres://");
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        for (key, value) in [
            ("server.max_connections", self.server.max_connections as u64),
            ("server.header_timeout_ms", self.server.header_timeout_ms),
            ("server.body_timeout_ms", self.server.body_timeout_ms),
            ("server.idle_timeout_ms", self.server.idle_timeout_ms),
            ("api.timeout_ms", self.api.timeout_ms),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if self.notify.max_body_bytes == 0 {
            return invalid("notify.max_body_bytes", "must be at least 1");
        }
        if self.notify.queue_capacity == 0 {
            return invalid("notify.queue_capacity", "must be at least 1");
        }
        if !(1..=MAX_BATCH).contains(&self.notify.batch_max) {
            return invalid(
                "notify.batch_max",
                &format!("must be between 1 and {MAX_BATCH}"),
            );
        }
        if self
            .notify
            .writers
            .is_some_and(|writers| !(1..=MAX_WRITERS).contains(&writers))
        {
            return invalid(
                "notify.writers",
                &format!("must be between 1 and {MAX_WRITERS}"),
            );
        }
        if self.notify.batch_wait_ms > MAX_BATCH_WAIT_MS {
            return invalid(
                "notify.batch_wait_ms",
                &format!("must be at most {MAX_BATCH_WAIT_MS}"),
            );
        }
        if self.notify.tokens.iter().any(|t| t.trim().is_empty()) {
            return invalid("notify.tokens", "tokens must not be empty strings");
        }
        if self.api.keys.iter().any(|k| k.trim().is_empty()) {
            return invalid("api.keys", "keys must not be empty strings");
        }
        if self.notify.signature_tolerance_s == 0 {
            return invalid("notify.signature_tolerance_s", "must be at least 1");
        }
        sources::no_empty_secrets("notify.signing_secrets", &self.notify.signing_secrets)?;
        sources::no_empty_secrets("jambonz.signing_secrets", &self.jambonz.signing_secrets)?;
        sources::no_empty_secrets("twilio.auth_tokens", &self.twilio.auth_tokens)?;
        self.twilio.validate()?;
        self.retention
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        self.dialout
            .validate(self.server.bind)
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        self.spool
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return invalid("log.level", &format!("not a valid filter directive: {err}"));
        }
        let open = self.notify.tokens.is_empty() || self.api.keys.is_empty();
        if !self.server.bind.ip().is_loopback() && open && !self.server.allow_unauthenticated {
            return invalid(
                "server.bind",
                &format!(
                    "refusing to listen on {} while notify.tokens or api.keys is empty: \
                     set both, or set server.allow_unauthenticated = true",
                    self.server.bind
                ),
            );
        }
        Ok(())
    }
}

fn deserialize_timezone<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<chrono_tz::Tz, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{name}` is not an IANA time zone (e.g. `Europe/Berlin`)"
        ))
    })
}

fn deserialize_date_order<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<DateOrder, D::Error> {
    match String::deserialize(deserializer)?
        .to_ascii_lowercase()
        .as_str()
    {
        "mdy" => Ok(DateOrder::Mdy),
        "dmy" => Ok(DateOrder::Dmy),
        other => Err(serde::de::Error::custom(format!(
            "`{other}` is neither `mdy` nor `dmy`"
        ))),
    }
}

#[cfg(test)]
mod dialout_tests {
    use super::*;

    #[tokio::test]
    async fn two_writers_on_postgres_one_on_sqlite_unless_configured() {
        let postgres =
            crate::store::Store::connect_lazy("postgres://calltrail@127.0.0.1:1/none", 1).unwrap();
        let sqlite = crate::store::Store::connect_lazy("sqlite://unused.db", 1).unwrap();
        let (postgres, sqlite) = (
            ingest::default_writers(&postgres),
            ingest::default_writers(&sqlite),
        );
        let mut notify = NotifySettings::default();

        assert_eq!(notify.group_commit_settings(postgres).writers, 2);
        assert_eq!(notify.group_commit_settings(sqlite).writers, 1);
        notify.writers = Some(3);
        assert_eq!(notify.group_commit_settings(postgres).writers, 3);
        assert_eq!(notify.group_commit_settings(sqlite).writers, 3);
    }

    fn with_gateway() -> Settings {
        let mut settings = Settings::default();
        settings.dialout.base_url = "https://platform.kore.ai".into();
        settings.dialout.bot_id = "st-1".into();
        settings.dialout.client_id = "cs-1".into();
        settings.dialout.client_secret = crate::dialout::Secret::new("s3cret");
        settings
    }

    #[test]
    fn dialouts_are_off_by_default_and_need_their_keys_when_on() {
        assert!(!Settings::default().dialout.enabled());
        assert!(with_gateway().validate().is_ok());
        for key in [
            "dialout.bot_id",
            "dialout.client_id",
            "dialout.client_secret",
        ] {
            let mut settings = with_gateway();
            match key {
                "dialout.bot_id" => settings.dialout.bot_id.clear(),
                "dialout.client_id" => settings.dialout.client_id.clear(),
                _ => settings.dialout.client_secret = Default::default(),
            }
            assert!(
                matches!(settings.validate(), Err(ConfigError::Invalid { key: k, .. }) if k == key),
                "{key}"
            );
        }
        let mut settings = with_gateway();
        settings.dialout.base_url = "platform.kore.ai".into();
        assert!(settings.validate().is_err());
    }

    #[test]
    fn a_public_url_is_needed_when_listening_on_every_address() {
        let mut settings = with_gateway();
        settings.server.bind = "0.0.0.0:8080".parse().unwrap();
        settings.server.allow_unauthenticated = true;
        let err = settings.validate().unwrap_err();
        assert!(err.to_string().contains("dialout.public_url"), "{err}");
        settings.dialout.public_url = "https://calltrail.example.com".into();
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn the_client_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", with_gateway());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("Secret(***)"));
    }
}
