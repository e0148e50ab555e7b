//! `calltrail-sim`'s command line: `serve` (the gateway stand-in) and `load` (the load
//! generator).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::faults::Faults;
use super::load::{self, LoadSettings};
use super::outcome::Weights;
use super::server::{SimSettings, Simulator};
use crate::dialout::Secret;
use crate::notification::{DateOrder, Format};

/// A stand-in for Kore.ai Voice Gateway: takes dial-outs, plays the calls, and sends their
/// status notifications — or posts realistic notifications at a fixed rate.
#[derive(Debug, Parser)]
#[command(name = "calltrail-sim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// A `tracing` filter directive for the simulator's own logs (stderr).
    #[arg(long, global = true, default_value = "info", env = "RUST_LOG")]
    pub log_level: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gateway's dial-out APIs (v1 and v2) and play every accepted call.
    Serve(ServeArgs),
    /// Post realistic notifications to calltrail at a fixed rate and report latency.
    Load(LoadArgs),
}

/// What both commands make notifications with.
#[derive(Debug, Args)]
pub struct NotificationArgs {
    /// Outcome weights, e.g. `human=40,machine=20,busy=10` (outcomes: human, machine, tone,
    /// no_speech, decision_timeout, busy, declined, no_answer, unavailable). Default: a
    /// plausible mix of all.
    #[arg(long, value_parser = Weights::parse)]
    pub weights: Option<Weights>,
    /// IANA zone of the timestamps in notifications (calltrail's `notify.timezone` must match).
    #[arg(long, default_value = "UTC", value_parser = parse_zone)]
    pub timezone: chrono_tz::Tz,
    /// `mdy` (5/8/2023 is May 8th) or `dmy`.
    #[arg(long, default_value = "mdy", value_parser = parse_date_order)]
    pub date_order: DateOrder,
    /// Chance (0–1) that a notification is delivered twice.
    #[arg(long, default_value_t = 0.0, value_parser = parse_chance)]
    pub duplicates: f64,
    /// Chance (0–1) that a call's notifications arrive last first.
    #[arg(long, default_value_t = 0.0, value_parser = parse_chance)]
    pub reorder: f64,
    /// Chance (0–1) that a notification spells its keys differently (`machineDetection`,
    /// `callDisconnecttime`, …).
    #[arg(long, default_value_t = 0.0, value_parser = parse_chance)]
    pub key_variants: f64,
    /// Seed for the random choices, for repeatable runs.
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub bind: SocketAddr,
    /// The client id the `auth` JWT's `appId` must carry.
    #[arg(long, env = "CALLTRAIL_SIM_CLIENT_ID", default_value = "calltrail-sim")]
    pub client_id: String,
    /// The secret the `auth` JWT must be signed with (HS256).
    #[arg(
        long,
        env = "CALLTRAIL_SIM_CLIENT_SECRET",
        default_value = "calltrail-sim-secret",
        hide_default_value = true
    )]
    pub client_secret: String,
    /// Serve only this bot id (another is answered 404).
    #[arg(long)]
    pub bot_id: Option<String>,
    /// Simulated seconds per real second (10 plays a 30-second call in 3 seconds).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Retries of a notification that calltrail answers with a non-2xx status (or not at all).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// The wait before the first retry, doubled for each next one.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub retry_backoff: Duration,
    /// Answer the first N dial-out requests with 500 (to exercise calltrail's retries).
    #[arg(long, default_value_t = 0)]
    pub fail_first_dialouts: u32,
    /// Write every played call to this JSON-lines file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Which gateway's notifications to send: `kore` to the dial-out's `notifyurl`, `jambonz`
    /// or `twilio` to the same URL with `/notify` turned into `/jambonz/notify` or
    /// `/twilio/notify`.
    #[arg(long, default_value = "kore", value_parser = parse_source)]
    pub source: Format,
    /// Sign every notification as the source does with this secret
    /// (`notify.signing_secrets`, `jambonz.signing_secrets` or a Twilio auth token).
    #[arg(long, env = "CALLTRAIL_SIM_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<String>,
    #[command(flatten)]
    pub notifications: NotificationArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// calltrail's notification URL, e.g. `http://127.0.0.1:8080/notify/TOKEN`.
    #[arg(long)]
    pub target: String,
    /// Requests per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long to send: `30s`, `2m`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// An extra header, `Name: value` (repeatable), e.g. `X-Calltrail-Token: …`.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Which gateway to play: `kore`, `jambonz` or `twilio` (`--target` must be its
    /// endpoint, e.g. `…/jambonz/notify/TOKEN`).
    #[arg(long, default_value = "kore", value_parser = parse_source)]
    pub source: Format,
    /// Sign every body as the source does with this secret (`notify.signing_secrets`,
    /// `jambonz.signing_secrets` or a Twilio auth token, whose signature covers `--target`).
    #[arg(long)]
    pub signing_secret: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub notifications: NotificationArgs,
}

impl NotificationArgs {
    fn faults(&self) -> Faults {
        Faults {
            duplicates: self.duplicates,
            reorder: self.reorder,
            key_variants: self.key_variants,
            ..Faults::default()
        }
    }
}

/// Runs the command; the exit code is 1 for a load run with errors.
pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let n = &args.notifications;
            let settings = SimSettings {
                bind: args.bind,
                client_id: args.client_id.clone(),
                client_secret: Secret::new(args.client_secret.clone()),
                bot_id: args.bot_id.clone(),
                speed: args.speed,
                weights: n.weights.clone().unwrap_or_default(),
                timezone: n.timezone,
                date_order: n.date_order,
                faults: Faults {
                    retries: args.retries,
                    retry_backoff: args.retry_backoff,
                    ..n.faults()
                },
                fail_first_dialouts: args.fail_first_dialouts,
                log: args.log.clone(),
                seed: n.seed,
                source: args.source,
                signing_secret: args.signing_secret.clone().map(Secret::new),
            };
            let simulator = Simulator::bind(settings).await?;
            tracing::info!(port = simulator.port(), "calltrail-sim listening");
            eprintln!(
                "calltrail-sim: dial-out APIs at http://{}:{}/api/1.1/public/bot/BOT/smartassist/dialout (v1) and \
                 /api/1.1/public/V2/smartassist/dialout (v2)",
                args.bind.ip(),
                simulator.port()
            );
            simulator
                .run_until(crate::startup::shutdown_signal(), Duration::from_secs(5))
                .await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Load(args) => {
            let n = &args.notifications;
            let settings = LoadSettings {
                target: args.target.clone(),
                rate: args.rate,
                duration: args.duration,
                concurrency: args.concurrency,
                headers: args.headers.clone(),
                weights: n.weights.clone().unwrap_or_default(),
                timezone: n.timezone,
                date_order: n.date_order,
                faults: n.faults(),
                seed: n.seed,
                source: args.source,
                signing_secret: args.signing_secret.clone(),
            };
            let report = load::run(&settings).await?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{report}");
            }
            Ok(if report.error_count() == 0 {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            })
        }
    }
}

/// `250ms`, `10s`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 10s or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}` is not a duration such as 500ms, 10s or 2m"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

fn parse_chance(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| format!("`{text}` is not a probability from 0 to 1"))
}

fn parse_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not an IANA time zone"))
}

fn parse_date_order(text: &str) -> Result<DateOrder, String> {
    match text.to_ascii_lowercase().as_str() {
        "mdy" => Ok(DateOrder::Mdy),
        "dmy" => Ok(DateOrder::Dmy),
        _ => Err(format!("`{text}` is neither mdy nor dmy")),
    }
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `Name: value`"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

fn parse_source(text: &str) -> Result<Format, String> {
    Format::parse_name(text).ok_or_else(|| format!("`{text}` is not one of kore, jambonz, twilio"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from([
            "calltrail-sim",
            "load",
            "--target",
            "http://127.0.0.1:8080/notify/t",
            "--rate",
            "50",
            "--duration",
            "2s",
            "--concurrency",
            "4",
            "--header",
            "X-Calltrail-Token: t",
            "--duplicates",
            "0.1",
        ])
        .unwrap();
        let Command::Load(load) = cli.command else {
            panic!()
        };
        assert_eq!(load.rate, 50.0);
        assert_eq!(
            load.headers,
            [("X-Calltrail-Token".to_owned(), "t".to_owned())]
        );
        assert!(Cli::try_parse_from(["calltrail-sim", "serve", "--reorder", "2"]).is_err());
        assert!(
            Cli::try_parse_from([
                "calltrail-sim",
                "serve",
                "--weights",
                "human=1,busy=1",
                "--speed",
                "20"
            ])
            .is_ok()
        );
    }
}
