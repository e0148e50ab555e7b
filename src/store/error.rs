//! Store errors, classified so that the HTTP layer can tell "try again" from "bug".

use sqlx::migrate::MigrateError;
use sqlx::postgres::PgDatabaseError;
use sqlx::sqlite::SqliteError;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (connection refused or lost, pool timed
    /// out, database locked). Retrying later may succeed; nothing was half-written.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A migration could not be applied.
    #[error("could not apply migrations")]
    Migrate(#[from] MigrateError),
    /// The database URL names no supported backend.
    #[error("database.url must start with sqlite:// or postgres://")]
    UnsupportedUrl,
    /// The database URL could not be parsed.
    #[error("database.url is not a valid URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    /// A stored value does not read back as a domain value.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// An error of the SQLite group-commit writer's connection.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite group-commit writer's thread could not be started.
    #[error("could not start the SQLite writer thread")]
    WriterThread(#[source] std::io::Error),
    /// The SQLite write-ahead log could not be synced to disk after a commit: the batch is
    /// committed (and visible) but was not answered `200`; or an earlier sync failed and
    /// nothing more is recorded until calltrail restarts.
    #[error("could not sync the database to disk")]
    Sync(#[source] std::io::Error),
    /// The SQLite group-commit writer's thread is gone.
    #[error("the SQLite writer thread stopped")]
    WriterStopped,
    /// An in-memory SQLite database was configured.
    #[error(
        "database.url names an in-memory SQLite database; calltrail keeps what it answered 200 on disk, so it needs a file"
    )]
    InMemory,
    /// A read-only SQLite database was configured.
    #[error(
        "database.url opens the SQLite file read-only (mode=ro or immutable); calltrail records every notification there, so it must be writable"
    )]
    ReadOnly,
    /// A SQLite URL that the pool's connections and the writer's could read differently.
    #[error("database.url is ambiguous for SQLite: {0}")]
    AmbiguousUrl(String),
}

impl StoreError {
    /// True when the caller should answer "try again later": the database could not be
    /// reached, also while applying migrations.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Migrate(
                MigrateError::Execute(err) | MigrateError::ExecuteMigration(err, _),
            ) => is_unavailable(err),
            StoreError::Sqlite(err) => err
                .sqlite_error_code()
                .is_some_and(sqlite_error_code_is_unavailable),
            StoreError::Sync(_) | StoreError::WriterStopped => true,
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

/// True for errors that say "the database cannot serve you right now" rather than "this
/// request is wrong".
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                pg_code_is_unavailable(pg.code())
            } else if db.try_downcast_ref::<SqliteError>().is_some() {
                db.code()
                    .is_some_and(|code| sqlite_code_is_unavailable(&code))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLSTATE class 08 (connection exception), 53 (insufficient resources), and
/// 57P01–57P03 (the server is shutting down or starting up).
fn pg_code_is_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03")
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), also in their extended forms (`517` is
/// SQLITE_BUSY_SNAPSHOT): the low byte of an extended code is its primary code.
fn sqlite_code_is_unavailable(code: &str) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

/// The writer's connection: busy or locked (as [`sqlite_code_is_unavailable`]), or the file
/// cannot be opened, written (disk full) or read.
fn sqlite_error_code_is_unavailable(code: rusqlite::ErrorCode) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        code,
        ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_and_connection_failures_are_unavailable() {
        for err in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ] {
            assert!(StoreError::from(err).is_unavailable());
        }
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
    }

    #[test]
    fn postgres_codes_for_connections_resources_and_shutdown_are_unavailable() {
        for code in [
            "08006", "08001", "53300", "53100", "57P01", "57P02", "57P03",
        ] {
            assert!(pg_code_is_unavailable(code), "{code}");
        }
        for code in ["23505", "42P01", "57014", "40001", "28P01"] {
            assert!(!pg_code_is_unavailable(code), "{code}");
        }
    }

    #[test]
    fn sqlite_busy_and_locked_are_unavailable_also_in_extended_form() {
        for code in ["5", "6", "261", "517", "773", "262"] {
            assert!(sqlite_code_is_unavailable(code), "{code}");
        }
        for code in ["1", "19", "2067", "11", "not a number"] {
            assert!(!sqlite_code_is_unavailable(code), "{code}");
        }
    }

    #[test]
    fn migrations_that_cannot_reach_the_database_are_unavailable() {
        let err = StoreError::Migrate(MigrateError::Execute(sqlx::Error::PoolTimedOut));
        assert!(err.is_unavailable());
        let err = StoreError::Migrate(MigrateError::VersionMismatch(1));
        assert!(!err.is_unavailable());
    }
}
