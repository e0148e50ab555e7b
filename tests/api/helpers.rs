//! Spawning calltrail for a test and talking to it.

use std::collections::BTreeMap;
use std::sync::Once;

use calltrail::config::Settings;
use calltrail::startup::Application;
use calltrail::store::Store;
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::oneshot;

use crate::support::{Backend, TestDb};

/// Logs from the service under test, only when `TEST_LOG` is set.
fn init_logs() {
    static LOGS: Once = Once::new();
    LOGS.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_test_writer()
                .init();
        }
    });
}

/// A running calltrail.
pub struct TestApp {
    pub address: String,
    /// `metrics.bind`'s address, when set.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    /// The same database, for reading what was stored.
    pub store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test: a random loopback port and the given database.
pub fn test_settings(database_url: &str) -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.database.url = database_url.to_owned();
    settings.database.max_connections = 5;
    // Tests of the spool turn it on, each with a file of its own (`with_spool`).
    settings.spool.enabled = Some(false);
    settings
}

/// `settings` with the spool on, its file in `dir`.
pub fn with_spool(mut settings: Settings, dir: &std::path::Path) -> Settings {
    settings.spool.enabled = Some(true);
    settings.spool.path = dir.join("spool.db");
    settings
}

/// A fresh database for `backend`, or `None` (with a printed notice) when PostgreSQL tests
/// cannot run here.
pub async fn fresh_db(backend: Backend, test_name: &str) -> Option<TestDb> {
    TestDb::new(backend, test_name).await
}

/// Starts calltrail on `settings` and waits until it is ready.
pub async fn spawn_ready(settings: Settings) -> TestApp {
    let app = spawn(settings).await;
    app.wait_ready().await;
    app
}

/// Starts calltrail on `settings` without waiting for its database.
pub async fn spawn(settings: Settings) -> TestApp {
    init_logs();
    let application = Application::build(&settings)
        .await
        .expect("calltrail builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let metrics_address = application
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stop.await;
    }));
    let store = Store::connect_lazy(&settings.database.url, 2).expect("store");
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        store,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Polls `/readyz` until it answers 200 with notifications going to the database (at
    /// most ~10 s).
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            let response = self.get("/readyz").await;
            if response.status() == 200
                && response.json::<Value>().await.unwrap()["accepting"] == "database"
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("calltrail at {} never became ready", self.address);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET sent")
    }

    /// Posts raw bytes to `path` with a JSON content type.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST sent")
    }

    /// Posts a body to `/notify`.
    pub async fn notify(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.post("/notify", body).await
    }

    /// `GET /v1/calls/{id}` as JSON, asserting a 200.
    pub async fn call_json(&self, conversation_id: &str) -> Value {
        let response = self.get(&format!("/v1/calls/{conversation_id}")).await;
        assert_eq!(response.status(), 200, "GET call {conversation_id}");
        response.json().await.expect("call JSON")
    }

    /// Stops the server gracefully and waits for it to exit.
    pub async fn stop(mut self) {
        self.shutdown_now().await;
    }

    async fn shutdown_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server exits cleanly");
        }
        self.store.close().await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Reads a JSON fixture from `tests/data/`.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Asserts a response is problem details with `status`, returning its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "type: {body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title: {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "detail: {body}"
    );
    body
}

/// `(slot, state, outcome, amd_result, reason_code, answered, source)` → calls.
type SlotCounts = BTreeMap<(i64, String, String, String, String, i32, String), i64>;
/// `(day, state, outcome, amd_result, reason_code, duration_s or ring_ms, source)` → calls.
type DurationCounts = BTreeMap<(i64, String, String, String, String, i64, String), i64>;

/// Asserts that the statistics tables hold exactly the counts of the calls the API lists,
/// computed here from the exported calls.
pub async fn assert_counts_match_calls(db: &TestDb, app: &TestApp) {
    let export = app.get("/v1/calls/export?format=ndjson").await;
    assert_eq!(export.status(), 200);
    let mut slots = SlotCounts::new();
    let mut durations = DurationCounts::new();
    let mut ring_times = DurationCounts::new();
    for line in export.text().await.unwrap().lines() {
        let call: Value = serde_json::from_str(line).unwrap();
        let text = |field: &str| call[field].as_str().unwrap_or_default().to_owned();
        let seconds = chrono::DateTime::parse_from_rfc3339(call["occurred_at"].as_str().unwrap())
            .unwrap()
            .timestamp();
        let dims = (
            text("state"),
            text("outcome"),
            text("amd_result"),
            text("reason_code"),
            text("source"),
        );
        let answered = i32::from(!call["connected_at"].is_null());
        *slots
            .entry((
                seconds.div_euclid(900),
                dims.0.clone(),
                dims.1.clone(),
                dims.2.clone(),
                dims.3.clone(),
                answered,
                dims.4.clone(),
            ))
            .or_default() += 1;
        let day_key = |value: i64| {
            let (state, outcome, amd_result, reason_code, source) = dims.clone();
            (
                seconds.div_euclid(86_400),
                state,
                outcome,
                amd_result,
                reason_code,
                value,
                source,
            )
        };
        if let Some(duration) = call["duration_s"].as_i64() {
            *durations.entry(day_key(duration)).or_default() += 1;
        }
        if let (Some(ring_ms), 1) = (call["ring_ms"].as_i64(), answered) {
            // Rounded to the nearest 100 ms, as docs/api.md says.
            *ring_times
                .entry(day_key((ring_ms + 50) / 100 * 100))
                .or_default() += 1;
        }
    }
    let (stored_slots, stored_durations, stored_ring_times) = stored_counts(db).await;
    assert_eq!(stored_slots, slots, "call_slot_counts");
    assert_eq!(stored_durations, durations, "call_day_durations");
    assert_eq!(stored_ring_times, ring_times, "call_day_ring_times");
}

const SLOT_ROWS: &str = "select slot, state, outcome, amd_result, reason_code, answered, \
     source, calls from call_slot_counts where calls <> 0";
const DURATION_ROWS: &str = "select day, state, outcome, amd_result, reason_code, duration_s, \
     source, calls from call_day_durations where calls <> 0";

const RING_TIME_ROWS: &str = "select day, state, outcome, amd_result, reason_code, ring_ms, \
     source, calls from call_day_ring_times where calls <> 0";

async fn stored_counts(db: &TestDb) -> (SlotCounts, DurationCounts, DurationCounts) {
    type SlotRow = (i64, String, String, String, String, i32, String, i64);
    type DayRow = (i64, String, String, String, String, i64, String, i64);
    let (slots, durations, ring_times): (Vec<SlotRow>, Vec<DayRow>, Vec<DayRow>) = match db.backend
    {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            (
                sqlx::query_as(SLOT_ROWS).fetch_all(&mut db).await.unwrap(),
                sqlx::query_as(DURATION_ROWS)
                    .fetch_all(&mut db)
                    .await
                    .unwrap(),
                sqlx::query_as(RING_TIME_ROWS)
                    .fetch_all(&mut db)
                    .await
                    .unwrap(),
            )
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&db.url).await.unwrap();
            (
                sqlx::query_as(SLOT_ROWS).fetch_all(&mut db).await.unwrap(),
                sqlx::query_as(DURATION_ROWS)
                    .fetch_all(&mut db)
                    .await
                    .unwrap(),
                sqlx::query_as(RING_TIME_ROWS)
                    .fetch_all(&mut db)
                    .await
                    .unwrap(),
            )
        }
    };
    let by_day = |rows: Vec<DayRow>| -> DurationCounts {
        rows.into_iter()
            .map(|(a, b, c, d, e, f, g, n)| ((a, b, c, d, e, f, g), n))
            .collect()
    };
    (
        slots
            .into_iter()
            .map(|(a, b, c, d, e, f, g, n)| ((a, b, c, d, e, f, g), n))
            .collect(),
        by_day(durations),
        by_day(ring_times),
    )
}

/// Takes the human calls out of the statistics tables, as if they had been written by
/// something that does not count (calls loaded with SQL, an older calltrail).
pub async fn lose_some_counts(db: &TestDb) {
    let statements = [
        "delete from call_slot_counts where outcome = 'human'",
        "delete from call_day_durations where outcome = 'human'",
        "delete from call_day_ring_times where outcome = 'human'",
    ];
    match db.backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement).execute(&mut db).await.unwrap();
            }
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for statement in statements {
                sqlx::query(statement).execute(&mut db).await.unwrap();
            }
        }
    }
}
