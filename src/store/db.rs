//! The seam between the statements written once and the two backends: how a [`Sql`]'s
//! arguments are bound (SQLite keeps times as fixed-width UTC text, PostgreSQL as
//! `timestamptz`), how a snapshot and a write transaction begin, and how a write
//! transaction keeps a call's other writers out.
//!
//! An enum over the two native drivers rather than a generic over `sqlx::Database`: the
//! row types decode from either backend's rows, which a generic would have to restate as
//! bounds at every use, and sqlx's `Any` driver binds neither times nor JSON natively.

use sqlx::postgres::{PgArguments, PgPool, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArguments, SqlitePool, SqliteRow};
use sqlx::types::Json;
use sqlx::{Arguments, FromRow, Transaction};

use super::sql::{Arg, Dialect, Sql, Type};
use super::{Result, postgres, sqlite};
use crate::call::Call;

/// A row type both backends decode.
pub(super) trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A backend's pool, for statements run outside a transaction.
#[derive(Debug, Clone, Copy)]
pub(super) enum Db<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}

/// A transaction on either backend.
pub(super) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// The backend's arguments for `sql`.
fn sqlite_args<'q>(sql: &Sql) -> Result<SqliteArguments<'q>> {
    let mut args = SqliteArguments::default();
    for arg in &sql.args {
        match arg {
            Arg::Text(text) => args.add(text.clone()),
            Arg::Int(int) => args.add(*int),
            Arg::Time(time) => args.add(sqlite::utc_text(*time)),
            Arg::Json(value) => args.add(Json(value.clone())),
            Arg::Bytes(bytes) => args.add(bytes.clone()),
            // SQLite's columns take a null of any type.
            Arg::Null(_) => args.add(Option::<i64>::None),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn pg_args(sql: &Sql) -> Result<PgArguments> {
    let mut args = PgArguments::default();
    for arg in &sql.args {
        match arg {
            Arg::Text(text) => args.add(text.clone()),
            Arg::Int(int) => args.add(*int),
            Arg::Time(time) => args.add(*time),
            Arg::Json(value) => args.add(Json(value.clone())),
            Arg::Bytes(bytes) => args.add(bytes.clone()),
            Arg::Null(Type::Text) => args.add(Option::<String>::None),
            Arg::Null(Type::Int) => args.add(Option::<i64>::None),
            Arg::Null(Type::Time) => args.add(Option::<chrono::DateTime<chrono::Utc>>::None),
            Arg::Null(Type::Json) => args.add(Option::<Json<serde_json::Value>>::None),
            Arg::Null(Type::Bytes) => args.add(Option::<Vec<u8>>::None),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn lite<'q, O: Row>(
    sql: &'q Sql,
) -> Result<sqlx::query::QueryAs<'q, Sqlite, O, SqliteArguments<'q>>> {
    Ok(sqlx::query_as_with(&sql.text, sqlite_args(sql)?).persistent(sql.persistent))
}

fn pg<'q, O: Row>(sql: &'q Sql) -> Result<sqlx::query::QueryAs<'q, Postgres, O, PgArguments>> {
    Ok(sqlx::query_as_with(&sql.text, pg_args(sql)?).persistent(sql.persistent))
}

/// How a snapshot for reading begins on PostgreSQL (SQLite's plain `begin` is one).
const PG_SNAPSHOT: &str = "begin transaction isolation level repeatable read, read only";

impl Db<'_> {
    pub fn dialect(self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A statement in this backend's dialect.
    pub fn sql(self, text: &str) -> Sql {
        Sql::new(self.dialect(), text)
    }

    pub async fn fetch_all<O: Row>(self, sql: &Sql) -> Result<Vec<O>> {
        Ok(match self {
            Db::Sqlite(pool) => lite(sql)?.fetch_all(pool).await?,
            Db::Postgres(pool) => pg(sql)?.fetch_all(pool).await?,
        })
    }

    pub async fn fetch_optional<O: Row>(self, sql: &Sql) -> Result<Option<O>> {
        Ok(match self {
            Db::Sqlite(pool) => lite(sql)?.fetch_optional(pool).await?,
            Db::Postgres(pool) => pg(sql)?.fetch_optional(pool).await?,
        })
    }

    pub async fn fetch_one<O: Row>(self, sql: &Sql) -> Result<O> {
        Ok(match self {
            Db::Sqlite(pool) => lite(sql)?.fetch_one(pool).await?,
            Db::Postgres(pool) => pg(sql)?.fetch_one(pool).await?,
        })
    }

    /// A transaction that reads one snapshot.
    pub async fn begin_snapshot(self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin_with(PG_SNAPSHOT).await?),
        })
    }

    /// A transaction that writes: on SQLite it takes the write lock up front (a writer
    /// waiting for another waits in busy_timeout, instead of failing when a read lock
    /// cannot be upgraded); on PostgreSQL see `postgres::BEGIN_WRITE`.
    pub async fn begin_write(self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("begin immediate").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin_with(postgres::BEGIN_WRITE).await?),
        })
    }

    /// A write transaction that keeps every other writer of calls out until it ends
    /// (SQLite's `begin immediate` excludes every writer; PostgreSQL locks `calls` in a mode
    /// that excludes itself and every write).
    pub async fn begin_exclusive_of_calls(self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(_) => self.begin_write().await?,
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("lock table calls in share row exclusive mode")
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        })
    }
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A statement in this backend's dialect.
    pub fn sql(&self, text: &str) -> Sql {
        Sql::new(self.dialect(), text)
    }

    pub async fn fetch_all<O: Row>(&mut self, sql: &Sql) -> Result<Vec<O>> {
        Ok(match self {
            Tx::Sqlite(tx) => lite(sql)?.fetch_all(&mut **tx).await?,
            Tx::Postgres(tx) => pg(sql)?.fetch_all(&mut **tx).await?,
        })
    }

    pub async fn fetch_optional<O: Row>(&mut self, sql: &Sql) -> Result<Option<O>> {
        Ok(match self {
            Tx::Sqlite(tx) => lite(sql)?.fetch_optional(&mut **tx).await?,
            Tx::Postgres(tx) => pg(sql)?.fetch_optional(&mut **tx).await?,
        })
    }

    pub async fn execute(&mut self, sql: &Sql) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => {
                sqlx::query_with(&sql.text, sqlite_args(sql)?)
                    .execute(&mut **tx)
                    .await?;
            }
            Tx::Postgres(tx) => {
                sqlx::query_with(&sql.text, pg_args(sql)?)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs `sql` and returns how many rows it changed.
    pub async fn execute_counted(&mut self, sql: &Sql) -> Result<u64> {
        Ok(match self {
            Tx::Sqlite(tx) => sqlx::query_with(&sql.text, sqlite_args(sql)?)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Tx::Postgres(tx) => sqlx::query_with(&sql.text, pg_args(sql)?)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// [`Tx::lock_call`] for several calls, in the order the group-commit writers take
    /// them, so that this transaction and a writer never wait for each other in a circle.
    pub async fn lock_calls(&mut self, conversation_ids: &[String]) -> Result<()> {
        match self {
            Tx::Sqlite(_) => Ok(()),
            Tx::Postgres(tx) => postgres::lock_calls(&mut **tx, conversation_ids).await,
        }
    }

    /// Waits until no other transaction is writing this call, and keeps others waiting
    /// until this one ends (on SQLite, [`Db::begin_write`] already excludes every other
    /// writer).
    pub async fn lock_call(&mut self, conversation_id: &str) -> Result<()> {
        match self {
            Tx::Sqlite(_) => Ok(()),
            Tx::Postgres(tx) => postgres::lock_call(&mut **tx, conversation_id).await,
        }
    }

    /// Writes the records over the calls' rows and moves their statistics counts, as the
    /// backend's batch writer does.
    pub async fn upsert_calls(&mut self, calls: &[Call]) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => sqlite::upsert_calls(tx, calls).await,
            Tx::Postgres(tx) => postgres::upsert_calls(tx, calls).await.map(drop),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
