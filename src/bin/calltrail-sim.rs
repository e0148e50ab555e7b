//! `calltrail-sim`: a voice-gateway simulator and load generator for calltrail (see
//! `calltrail::sim`).

use clap::Parser;

use calltrail::sim::cli::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log_level)
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("calltrail-sim: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
