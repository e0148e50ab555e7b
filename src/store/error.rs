//! Store errors, classified so that the HTTP layer can tell "try again" from "bug".

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
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no supported backend.
    #[error("database.url must start with sqlite:// or postgres://")]
    UnsupportedUrl,
    /// The database URL could not be parsed.
    #[error("database.url is not a valid URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    /// A stored value does not read back as a domain value.
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the caller should answer "try again later".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        // TODO: classify Io/PoolTimedOut/PoolClosed/Tls, SQLSTATE 08*/57P0*/53* and
        // SQLITE_BUSY/LOCKED as Unavailable.
        StoreError::Database(err)
    }
}
