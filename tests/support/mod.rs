//! Shared by the integration-test crates (`mod support;`): a fresh database per test on
//! either store, and [`both_stores!`] to run one test body on both.
//!
//! PostgreSQL tests run when `DATABASE_URL` is a `postgres://` URL: each gets its own
//! database, created there and dropped afterwards. Otherwise they are skipped with a notice
//! on stderr, unless `CALLTRAIL_REQUIRE_POSTGRES=1` (set in CI), which makes them fail.

// Each test crate uses a part of this module.
#![allow(dead_code, unused_macros, unused_imports)]

use std::io::Write;

pub mod proxy;

use calltrail::store::Store;
use sqlx::Connection;

/// The stores a test can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body written once as `async fn name(backend: Backend)` on both stores.
///
/// `both_stores!(records_a_notification);` adds the tests
/// `records_a_notification::sqlite` and `records_a_notification::postgres`, so that
/// `cargo test records_a_notification` runs both and `cargo test ::postgres` all of one.
macro_rules! both_stores {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )+};
}
pub(crate) use both_stores;

/// A database of its own for one test, removed when dropped.
pub struct TestDb {
    /// Where to connect: `sqlite://…` or `postgres://…`.
    pub url: String,
    pub backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The directory holding the SQLite file, deleted on drop.
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

impl TestDb {
    /// A fresh, empty database, or `None` (after saying so on stderr) when `backend` is
    /// PostgreSQL and `DATABASE_URL` does not name a PostgreSQL server.
    pub async fn new(backend: Backend, test_name: &str) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("calltrail.db").display());
                Some(TestDb {
                    url,
                    backend,
                    cleanup: Cleanup::Sqlite(dir),
                })
            }
            Backend::Postgres => {
                let Some(admin_url) = postgres_url() else {
                    skip(test_name);
                    return None;
                };
                let database = PgDatabase::create(&admin_url).await;
                Some(TestDb {
                    url: with_database(&admin_url, &database.name),
                    backend,
                    cleanup: Cleanup::Postgres(database),
                })
            }
        }
    }

    /// A store on this database with the schema applied. Each call opens a pool of its
    /// own, like another calltrail instance sharing the database.
    pub async fn store(&self) -> Store {
        let store = Store::connect_lazy(&self.url, 5).expect("a valid database URL");
        store.migrate().await.expect("apply migrations");
        store
    }
}

/// `DATABASE_URL` when it names a PostgreSQL server.
fn postgres_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
}

fn skip(test_name: &str) {
    if std::env::var("CALLTRAIL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!(
            "{test_name}: CALLTRAIL_REQUIRE_POSTGRES=1, but DATABASE_URL is not a postgres:// URL"
        );
    }
    // Straight to the process's stderr: libtest captures `eprintln!`, and a skip that
    // nobody sees is a pass that did not happen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test_name} on PostgreSQL: PostgreSQL tests need DATABASE_URL=postgres://…"
    );
}

/// A database created for one test on the server of `DATABASE_URL`.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> PgDatabase {
        let name = format!("calltrail_test_{}", random_hex());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to DATABASE_URL: {e}"));
        sqlx::query(&format!(r#"create database "{name}""#))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        let _ = admin.close().await;
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!(r#"drop database if exists "{}" with (force)"#, self.name);
        // A runtime of its own on a thread of its own: this may run inside an async test,
        // whose runtime cannot be blocked on.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&sql)
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok::<_, String>(())
            })
        })
        .join();
        if let Ok(Err(e)) | Err(e) = dropped.map_err(|_| "panicked".to_owned()) {
            let _ = writeln!(
                std::io::stderr(),
                "could not drop test database {}: {e}",
                self.name
            );
        }
    }
}

/// `url` with its database (the path) replaced by `database`; the query string is kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// 16 hex digits, different for every call in every process: the hash of a per-process
/// random key, the time, the process id and a counter.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    format!("{:016x}", hasher.finish())
}
