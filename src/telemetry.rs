//! Logging: `tracing` to stderr, human-readable or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use serde::{Deserialize, Deserializer};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`.
/// Does nothing if a subscriber is already installed (as in tests).
pub fn init(settings: &LogSettings) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directive| EnvFilter::try_new(directive).ok())
        .unwrap_or_else(|| EnvFilter::new(&settings.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _already_installed = match settings.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// The `[log]` settings.
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
