//! The one SQL builder of every statement that is not a batch writer's: text with numbered
//! placeholders in the backend's style, and the values bound to them. The backend binds the
//! [`Arg`]s (see `store/db.rs`), encoding times and JSON its own way.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Result, StoreError};

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
    Json(serde_json::Value),
    Bytes(Vec<u8>),
    /// SQL null, typed: PostgreSQL types every parameter.
    Null(Type),
}

/// The type of a bound value, for a null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Text,
    Int,
    Time,
    Json,
    Bytes,
}

impl Arg {
    /// `value` as JSON (`jsonb` on PostgreSQL, text on SQLite).
    pub fn json(value: &impl Serialize) -> Result<Self> {
        serde_json::to_value(value).map(Arg::Json).map_err(|err| {
            StoreError::Corrupt(format!("a value would not serialize as JSON: {err}"))
        })
    }

    /// [`Arg::json`], or a JSON null for `None`.
    pub fn json_or_null(value: Option<&impl Serialize>) -> Result<Self> {
        value.map_or(Ok(Arg::Null(Type::Json)), Arg::json)
    }
}

/// A Rust type bound as one [`Type`].
pub trait Typed: Into<Arg> {
    const TYPE: Type;
}

macro_rules! typed {
    ($($rust:ty => $variant:ident($convert:expr)),* $(,)?) => {$(
        impl From<$rust> for Arg {
            fn from(value: $rust) -> Self {
                Arg::$variant($convert(value))
            }
        }
        impl Typed for $rust {
            const TYPE: Type = Type::$variant;
        }
    )*};
}

typed! {
    String => Text(|v| v),
    &String => Text(String::clone),
    &str => Text(str::to_owned),
    i64 => Int(|v| v),
    i32 => Int(i64::from),
    u16 => Int(i64::from),
    u32 => Int(i64::from),
    DateTime<Utc> => Time(|v| v),
    &[u8] => Bytes(<[u8]>::to_vec),
}

impl<T: Typed> From<Option<T>> for Arg {
    fn from(value: Option<T>) -> Self {
        value.map_or(Arg::Null(T::TYPE), Into::into)
    }
}

/// How a backend spells placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `$1`
    Postgres,
    /// `?1`
    Sqlite,
}

/// A statement under construction with its arguments.
#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    pub(super) dialect: Dialect,
    /// Whether the driver may keep the statement prepared on the connection (see
    /// [`Sql::planned_per_run`]).
    pub(super) persistent: bool,
}

impl Sql {
    pub fn new(dialect: Dialect, text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
            dialect,
            persistent: true,
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds `arg` and returns its placeholder, for use once or several times.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        let sigil = match self.dialect {
            Dialect::Postgres => '$',
            Dialect::Sqlite => '?',
        };
        format!("{sigil}{}", self.args.len())
    }

    /// Binds each of `args` and returns their placeholders, comma-separated.
    pub fn bind_list(&mut self, args: impl IntoIterator<Item = Arg>) -> String {
        let placeholders: Vec<String> = args.into_iter().map(|arg| self.bind(arg)).collect();
        placeholders.join(", ")
    }

    /// Binds `values` as one JSON array and returns a subquery that yields them as rows of
    /// text, for `column in (…)`: one statement text, and one bound value, whatever the
    /// list's length.
    pub fn bind_text_rows(&mut self, values: &[String]) -> String {
        let list = self.bind(Arg::Json(serde_json::Value::from(values.to_vec())));
        match self.dialect {
            Dialect::Postgres => format!("select jsonb_array_elements_text({list})"),
            Dialect::Sqlite => format!("select value from json_each({list})"),
        }
    }

    /// Appends `column in (…)` for a non-empty list.
    pub fn push_in(&mut self, column: &str, values: impl IntoIterator<Item = Arg>) {
        let list = self.bind_list(values);
        self.text.push_str(&format!(" and {column} in ({list})"));
    }

    /// `update table set columns = values where key.0 = key.1`.
    pub fn update(
        dialect: Dialect,
        table: &str,
        columns: &[&str],
        values: Vec<Arg>,
        key: (&str, Arg),
    ) -> Self {
        let mut sql = Self::new(dialect, &format!("update {table} set "));
        let key_placeholder = sql.bind(key.1);
        let sets: Vec<String> = columns
            .iter()
            .zip(values)
            .map(|(column, value)| format!("{column} = {}", sql.bind(value)))
            .collect();
        sql.push(&sets.join(", "));
        sql.push(&format!(" where {} = {key_placeholder}", key.0));
        sql
    }

    /// `insert into table (columns) values (…)`, one row.
    pub fn insert(dialect: Dialect, table: &str, columns: &[&str], values: Vec<Arg>) -> Self {
        let mut sql = Self::new(
            dialect,
            &format!("insert into {table} ({}) values (", columns.join(", ")),
        );
        let list = sql.bind_list(values);
        sql.push(&list).push(")");
        sql
    }

    /// Has the statement planned at each run, not kept prepared on the connection: for a
    /// statement run both inside and outside PostgreSQL's write transactions, whose plans
    /// differ (see `postgres::BEGIN_WRITE`).
    pub fn planned_per_run(mut self) -> Self {
        self.persistent = false;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_and_updates_bind_every_value_with_nulls_typed() {
        let sql = Sql::insert(
            Dialect::Postgres,
            "t",
            &["a", "b", "c"],
            vec![
                "x".into(),
                Option::<i64>::None.into(),
                Arg::json(&[1, 2]).unwrap(),
            ],
        );
        assert_eq!(sql.text, "insert into t (a, b, c) values ($1, $2, $3)");
        assert_eq!(sql.args[1], Arg::Null(Type::Int));
        assert_eq!(sql.args[2], Arg::Json(serde_json::json!([1, 2])));

        let sql = Sql::update(
            Dialect::Sqlite,
            "t",
            &["a", "b"],
            vec![Some("y").into(), Option::<DateTime<Utc>>::None.into()],
            ("id", 7i64.into()),
        );
        assert_eq!(sql.text, "update t set a = ?2, b = ?3 where id = ?1");
        assert_eq!(sql.args[0], Arg::Int(7));
        assert_eq!(sql.args[2], Arg::Null(Type::Time));
    }
}
