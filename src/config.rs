//! Configuration (CONTRACT §2): built-in defaults < `calltrail.toml` < `CALLTRAIL__SECTION__KEY`
//! environment variables; `DATABASE_URL`, when set, overrides `database.url`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::notification::{DateOrder, NormalizeSettings};

/// The file read when no `--config` / `CALLTRAIL_CONFIG` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "calltrail.toml";

/// Everything calltrail can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub notify: NotifySettings,
    pub api: ApiSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Must be true to listen on a non-loopback address without tokens and API keys.
    pub allow_unauthenticated: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_unauthenticated: false,
        }
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
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            max_body_bytes: 65_536,
            timezone: chrono_tz::UTC,
            date_order: DateOrder::Mdy,
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
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Accepted API keys for `/v1/*`; empty means the API is open.
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    #[serde(deserialize_with = "deserialize_log_format")]
    pub format: LogFormat,
    /// A `tracing` env-filter directive; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
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
        if self.notify.max_body_bytes == 0 {
            return invalid("notify.max_body_bytes", "must be at least 1");
        }
        if self.notify.tokens.iter().any(|t| t.trim().is_empty()) {
            return invalid("notify.tokens", "tokens must not be empty strings");
        }
        if self.api.keys.iter().any(|k| k.trim().is_empty()) {
            return invalid("api.keys", "keys must not be empty strings");
        }
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

fn deserialize_log_format<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<LogFormat, D::Error> {
    match String::deserialize(deserializer)?
        .to_ascii_lowercase()
        .as_str()
    {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(serde::de::Error::custom(format!(
            "`{other}` is neither `pretty` nor `json`"
        ))),
    }
}
