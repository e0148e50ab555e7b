use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use calltrail::cli::{Cli, Command};
use calltrail::config::Settings;
use calltrail::ingest::Ingest;
use calltrail::notification::Format;
use calltrail::startup::Application;
use calltrail::store::Store;
use calltrail::{healthcheck, import, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("calltrail: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(&settings)
                .await?
                .run_until_stopped()
                .await?
        }
        Command::Migrate => {
            migrated_store(&settings).await?.close().await;
            println!("migrations applied");
        }
        Command::Import { file } => {
            let content = if file.as_os_str() == "-" {
                let mut buffer = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)?;
                buffer
            } else {
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?
            };
            let store = migrated_store(&settings).await?;
            let pipeline = Ingest::new(
                store.clone(),
                Format::Kore,
                settings.notify.normalize_settings(),
            );
            let summary = import::import(&pipeline, &import::split(&content)).await?;
            store.close().await;
            for (item, reason) in &summary.rejections {
                eprintln!("item {item} rejected: {reason}");
            }
            println!("{summary}");
            if summary.rejected > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Healthcheck => healthcheck::check(settings.server.bind).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn migrated_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect_lazy(&settings.database.url, settings.database.max_connections)?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}
