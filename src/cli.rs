//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Receives voice-gateway call-status notifications and serves call history and outcomes.
#[derive(Debug, Parser)]
#[command(name = "calltrail", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Without it, `calltrail.toml` is read when present.
    #[arg(long, global = true, env = "CALLTRAIL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Backfill notifications from a JSON-lines or JSON-array file.
    Import {
        /// The file; `-` reads standard input.
        file: PathBuf,
    },
    /// Ask the running service's /healthz; exit 0 when it answers 200 (for container health checks).
    Healthcheck,
}
