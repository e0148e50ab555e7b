//! Spawning calltrail for a test and talking to it.

use std::sync::Once;

use calltrail::config::Settings;
use calltrail::startup::Application;
use calltrail::store::Store;
use serde_json::Value;
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
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stop.await;
    }));
    let store = Store::connect_lazy(&settings.database.url, 2).expect("store");
    TestApp {
        address,
        client: reqwest::Client::new(),
        store,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    /// Polls `/readyz` until it answers 200 (at most ~10 s).
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.get("/readyz").await.status() == 200 {
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
