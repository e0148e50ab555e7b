//! The `calltrail` binary as an operator runs it: configuration errors, `migrate`,
//! `import`, `healthcheck`, and a clean exit on SIGTERM.

mod support;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{Backend, TestDb, both_stores};

/// The binary with a clean environment: no configuration file, no `DATABASE_URL`.
fn calltrail(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calltrail"));
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("CALLTRAIL_") {
            command.env_remove(key);
        }
    }
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run calltrail")
}

#[test]
fn a_bad_configuration_value_names_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "CALLTRAIL__NOTIFY__TIMEZONE",
            "Mars/Base",
            "notify.timezone",
            "IANA time zone",
        ),
        (
            "CALLTRAIL__NOTIFY__DATE_ORDER",
            "ymd",
            "notify.date_order",
            "neither `mdy` nor `dmy`",
        ),
        (
            "CALLTRAIL__DATABASE__MAX_CONNECTIONS",
            "many",
            "database.max_connections",
            "integer",
        ),
        (
            "CALLTRAIL__SERVER__BIND",
            "nowhere",
            "server.bind",
            "socket address",
        ),
        (
            "CALLTRAIL__LOG__FORMAT",
            "xml",
            "log.format",
            "neither `pretty` nor `json`",
        ),
        (
            "CALLTRAIL__DATABASE__URL",
            "mysql://x",
            "database.url",
            "sqlite:// or postgres://",
        ),
    ];
    for (variable, value, key, problem) in cases {
        let output = run(calltrail(dir.path()).arg("migrate").env(variable, value));

        assert_eq!(output.status.code(), Some(1), "{variable}={value}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(key) && stderr.contains(problem),
            "{variable}={value}: {stderr}"
        );
    }
}

#[test]
fn a_public_address_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();

    let refused = run(calltrail(dir.path()).env("CALLTRAIL__SERVER__BIND", "0.0.0.0:0"));
    let half = run(calltrail(dir.path())
        .env("CALLTRAIL__SERVER__BIND", "0.0.0.0:0")
        .env("CALLTRAIL__NOTIFY__TOKENS", "a,b"));

    for output in [refused, half] {
        assert_eq!(output.status.code(), Some(1));
        let stderr = text(&output.stderr);
        assert!(stderr.contains("server.allow_unauthenticated"), "{stderr}");
    }
}

#[test]
fn the_configuration_file_is_layered_under_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("calltrail.toml"),
        "[notify]\ntimezone = \"Nowhere/Land\"\n[database]\nurl = \"sqlite://from-file.db\"\n",
    )
    .unwrap();

    let from_file = run(calltrail(dir.path()).arg("migrate"));
    let overridden = run(calltrail(dir.path())
        .arg("migrate")
        .env("CALLTRAIL__NOTIFY__TIMEZONE", "Asia/Kolkata"));
    let missing = run(calltrail(dir.path()).args(["--config", "absent.toml", "migrate"]));

    assert!(
        text(&from_file.stderr).contains("Nowhere/Land"),
        "the file is read"
    );
    assert!(overridden.status.success(), "{}", text(&overridden.stderr));
    assert_eq!(text(&overridden.stdout).trim(), "migrations applied");
    assert!(
        dir.path().join("from-file.db").exists(),
        "database.url from the file"
    );
    assert!(text(&missing.stderr).contains("absent.toml does not exist"));
}

async fn import_backfills_and_summarizes(backend: Backend) {
    let Some(db) = TestDb::new(backend, "import_backfills_and_summarizes").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let samples = format!("{}/tests/data/samples", env!("CARGO_MANIFEST_DIR"));
    let mut lines: Vec<String> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|entry| {
            std::fs::read_to_string(entry.unwrap().path())
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    lines.sort();
    lines.push(lines[0].clone());
    lines.push(r#"{"status":"completed"}"#.into());
    lines.push("not json".into());
    std::fs::write(dir.path().join("backfill.jsonl"), lines.join("\n")).unwrap();
    let array = format!("[{}]", lines[..6].join(",\n"));
    std::fs::write(dir.path().join("again.json"), array).unwrap();

    let output = run(calltrail(dir.path())
        .args(["import", "backfill.jsonl"])
        .env("DATABASE_URL", &db.url));
    let again = run(calltrail(dir.path())
        .args(["import", "again.json"])
        .env("DATABASE_URL", &db.url));

    assert_eq!(
        output.status.code(),
        Some(2),
        "rejected items make the exit code 2"
    );
    assert_eq!(
        text(&output.stdout).trim(),
        "accepted 6, duplicate 1, rejected 2"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("item 8 rejected: conversationId: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("item 9 rejected: body is not valid JSON"),
        "{stderr}"
    );
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        text(&again.stdout).trim(),
        "accepted 0, duplicate 6, rejected 0"
    );
    let store = db.store().await;
    let (call, events) = store
        .call("29e2d933-527e-429c-95b9-ba4f7c7bxxxx")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call.outcome.as_str(), "machine");
    assert_eq!(events.len(), 2);
    store.close().await;
}

both_stores!(import_backfills_and_summarizes);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn healthcheck_answers_for_a_running_service_which_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let server = calltrail(dir.path())
        .env("CALLTRAIL__SERVER__BIND", &bind)
        .env("CALLTRAIL__LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if run(calltrail(dir.path())
            .arg("healthcheck")
            .env("CALLTRAIL__SERVER__BIND", &bind))
        .status
        .success()
        {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let output = server.wait_with_output().unwrap();
    let stopped = run(calltrail(dir.path())
        .arg("healthcheck")
        .env("CALLTRAIL__SERVER__BIND", &bind));

    assert!(healthy, "healthcheck succeeds against the running service");
    assert!(terminated.success());
    assert_eq!(output.status.code(), Some(0), "SIGTERM exits 0");
    let logs = text(&output.stderr);
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "JSON logs: {first}"
    );
    assert!(logs.contains("calltrail stopped"), "{logs}");
    assert!(
        !stopped.status.success(),
        "healthcheck fails when nothing answers"
    );
    assert!(
        dir.path().join("calltrail.db").exists(),
        "the SQLite default is created"
    );
}
