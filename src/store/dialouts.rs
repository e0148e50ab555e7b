//! Dial-outs in the store, shared by both backends: what is written, the row read back, and
//! the SQL of filters and lists. Correlation with calls happens when calls are read
//! (`conversation_id` = a dial-out's `call_id` or `sid`), so it holds whatever arrived first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::FromRow;
use sqlx::types::Json;

use super::columns::DIALOUT_COLUMNS;
use super::page::{Page, page_of};
use super::sql::{Arg, Dialect, Sql};
use super::{Result, Store, StoreError};
use crate::dialout::{Dialout, DialoutLink, DialoutRequest, DialoutState, Timers};
use crate::notification::AmdMode;

/// A dial-out about to be sent to the gateway.
#[derive(Debug, Clone)]
pub struct NewDialout<'a> {
    pub request: &'a DialoutRequest,
    pub request_hash: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub requested_at: DateTime<Utc>,
}

/// Storing a new dial-out either created it or found the one with the same idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    New(Dialout),
    Existing(Dialout),
}

/// What the gateway made of a dial-out.
#[derive(Debug, Clone)]
pub struct DialoutFinish {
    pub state: DialoutState,
    pub sid: Option<String>,
    pub call_id: Option<String>,
    pub attempts: i32,
    pub gateway_status: Option<u16>,
    pub gateway_body: Option<String>,
    pub error: Option<String>,
    pub completed_at: DateTime<Utc>,
}

/// Conditions on a call's dial-out (in `/v1/calls`, `/v1/stats`) or on dial-outs themselves
/// (in `/v1/dialouts`). Empty lists mean "any"; every metadata pair must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialoutMatch {
    pub targets: Vec<String>,
    pub callers: Vec<String>,
    /// `(key, value)`: the metadata's `key` holds the string `value`, or a number or boolean
    /// spelled `value`.
    pub metadata: Vec<(String, String)>,
}

impl DialoutMatch {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.callers.is_empty() && self.metadata.is_empty()
    }
}

/// Which dial-outs a list covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialoutFilter {
    pub states: Vec<DialoutState>,
    pub matching: DialoutMatch,
    /// Inclusive lower bound on `requested_at`.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `requested_at`.
    pub until: Option<DateTime<Utc>>,
}

/// Where a page of dial-outs ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialoutCursor {
    pub requested_at: DateTime<Utc>,
    pub id: i64,
}

/// One row of `dialouts`.
#[derive(Debug, FromRow)]
pub(super) struct DialoutRow {
    pub id: i64,
    pub state: String,
    pub target: String,
    pub caller: String,
    pub trunk: Option<String>,
    pub metadata: Option<Json<Map<String, Value>>>,
    pub timers: Json<Timers>,
    pub machine_detection: Option<String>,
    pub threshold_word_count: Option<i64>,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub sid: Option<String>,
    pub call_id: Option<String>,
    pub attempts: i32,
    pub gateway_status: Option<i32>,
    pub gateway_body: Option<String>,
    pub error: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl TryFrom<DialoutRow> for Dialout {
    type Error = StoreError;

    fn try_from(row: DialoutRow) -> Result<Self> {
        let corrupt = |what: String| StoreError::Corrupt(format!("dialout {}: {what}", row.id));
        let state = DialoutState::parse(&row.state)
            .ok_or_else(|| corrupt(format!("state {:?}", row.state)))?;
        let machine_detection = match &row.machine_detection {
            None => None,
            Some(mode) => Some(
                AmdMode::parse(mode)
                    .ok_or_else(|| corrupt(format!("machine_detection {mode:?}")))?,
            ),
        };
        let threshold_word_count = row
            .threshold_word_count
            .map(|n| u32::try_from(n).map_err(|_| corrupt(format!("threshold_word_count {n}"))))
            .transpose()?;
        let gateway_status = row
            .gateway_status
            .map(|s| u16::try_from(s).map_err(|_| corrupt(format!("gateway_status {s}"))))
            .transpose()?;
        Ok(Dialout {
            id: row.id,
            state,
            request: DialoutRequest {
                target: row.target,
                caller: row.caller,
                trunk: row.trunk,
                metadata: row.metadata.map(|m| m.0),
                timers: row.timers.0,
                machine_detection,
                threshold_word_count,
            },
            idempotency_key: row.idempotency_key,
            sid: row.sid,
            call_id: row.call_id,
            attempts: row.attempts,
            gateway_status,
            gateway_body: row.gateway_body,
            error: row.error,
            requested_at: row.requested_at,
            completed_at: row.completed_at,
            request_hash: row.request_hash,
        })
    }
}

/// Appends ` and …` for `matching`, on the dial-out table aliased `alias`.
pub fn push_match(sql: &mut Sql, dialect: Dialect, alias: &str, matching: &DialoutMatch) {
    push_in(sql, &format!("{alias}.target"), &matching.targets);
    push_in(sql, &format!("{alias}.caller"), &matching.callers);
    for (key, value) in &matching.metadata {
        let value = sql.bind(Arg::Text(value.clone()));
        match dialect {
            Dialect::Postgres => {
                let key = sql.bind(Arg::Text(key.clone()));
                sql.push(&format!(
                    " and jsonb_typeof({alias}.metadata -> {key}) in ('string', 'number', 'boolean') \
                     and {alias}.metadata ->> {key} = {value}"
                ));
            }
            Dialect::Sqlite => {
                // Keys are quoted in the JSON path; the parameter parser refuses keys holding `"`.
                let path = sql.bind(Arg::Text(format!("$.\"{key}\"")));
                sql.push(&format!(
                    " and case json_type({alias}.metadata, {path}) \
                        when 'text' then json_extract({alias}.metadata, {path}) \
                        when 'integer' then {alias}.metadata -> {path} \
                        when 'real' then {alias}.metadata -> {path} \
                        when 'true' then 'true' \
                        when 'false' then 'false' \
                     end = {value}"
                ));
            }
        }
    }
}

fn push_in(sql: &mut Sql, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let placeholders: Vec<String> = values
        .iter()
        .map(|v| sql.bind(Arg::Text(v.clone())))
        .collect();
    sql.push(&format!(" and {column} in ({})", placeholders.join(", ")));
}

/// Appends the condition that a call (the outer query's `calls`) has a dial-out matching.
pub fn push_call_has_dialout(sql: &mut Sql, dialect: Dialect, matching: &DialoutMatch) {
    if matching.is_empty() {
        return;
    }
    sql.push(
        " and exists (select 1 from dialouts d \
         where (d.call_id = calls.conversation_id or d.sid = calls.conversation_id)",
    );
    push_match(sql, dialect, "d", matching);
    sql.push(")");
}

/// One page of dial-outs, newest first, `limit + 1` rows.
pub fn list(
    dialect: Dialect,
    filter: &DialoutFilter,
    after: Option<&DialoutCursor>,
    limit: u32,
) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {DIALOUT_COLUMNS} from dialouts o where true"),
    );
    let states: Vec<String> = filter
        .states
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    push_in(&mut sql, "o.state", &states);
    push_match(&mut sql, dialect, "o", &filter.matching);
    if let Some(since) = filter.since {
        let p = sql.bind(Arg::Time(since));
        sql.push(&format!(" and o.requested_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = sql.bind(Arg::Time(until));
        sql.push(&format!(" and o.requested_at < {p}"));
    }
    if let Some(cursor) = after {
        let at = sql.bind(Arg::Time(cursor.requested_at));
        let id = sql.bind(Arg::Int(cursor.id));
        sql.push(&format!(" and (o.requested_at, o.id) < ({at}, {id})"));
    }
    let limit = sql.bind(Arg::Int(i64::from(limit) + 1));
    sql.push(&format!(
        " order by o.requested_at desc, o.id desc limit {limit}"
    ));
    sql
}

/// The dial-outs whose `call_id` or `sid` is one of `conversation_ids`.
pub fn links(dialect: Dialect, conversation_ids: &[&str]) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {DIALOUT_COLUMNS} from dialouts where false"),
    );
    let ids: Vec<String> = conversation_ids.iter().map(|id| (*id).to_owned()).collect();
    let placeholders: Vec<String> = ids.iter().map(|v| sql.bind(Arg::Text(v.clone()))).collect();
    let list = placeholders.join(", ");
    sql.push(&format!(
        " or call_id in ({list}) or sid in ({list}) order by id"
    ));
    sql
}

/// Which dial-out each conversation id belongs to: the one whose `call_id` it is, else the
/// one whose `sid` it is; the first stored where several are.
pub fn link_map(conversation_ids: &[&str], dialouts: &[Dialout]) -> HashMap<String, DialoutLink> {
    let mut links = HashMap::new();
    for id in conversation_ids {
        let by_call_id = dialouts.iter().find(|d| d.call_id.as_deref() == Some(id));
        let chosen = by_call_id.or_else(|| dialouts.iter().find(|d| d.sid.as_deref() == Some(id)));
        if let Some(dialout) = chosen {
            links.insert((*id).to_owned(), DialoutLink::from(dialout));
        }
    }
    links
}

/// The cursor after `dialout`.
pub fn cursor(dialout: &Dialout) -> DialoutCursor {
    DialoutCursor {
        requested_at: dialout.requested_at,
        id: dialout.id,
    }
}

/// Dial-outs (`POST /v1/dialouts`) and their correlation with calls.
impl Store {
    /// Stores a pending dial-out before it is sent, or finds the one stored under the same
    /// idempotency key (a unique constraint: concurrent requests with one key make one row).
    #[tracing::instrument(name = "store.insert_dialout", skip_all)]
    pub async fn insert_dialout(&self, new: &NewDialout<'_>) -> Result<Inserted> {
        let db = self.db();
        let request = new.request;
        let mut sql = Sql::insert(
            db.dialect(),
            "dialouts",
            &[
                "state",
                "target",
                "caller",
                "trunk",
                "metadata",
                "timers",
                "machine_detection",
                "threshold_word_count",
                "idempotency_key",
                "request_hash",
                "requested_at",
            ],
            vec![
                "pending".into(),
                request.target.as_str().into(),
                request.caller.as_str().into(),
                request.trunk.as_deref().into(),
                Arg::json_or_null(request.metadata.as_ref())?,
                Arg::json(&request.timers)?,
                request.machine_detection.map(|mode| mode.as_str()).into(),
                request.threshold_word_count.into(),
                new.idempotency_key.into(),
                new.request_hash.into(),
                new.requested_at.into(),
            ],
        );
        sql.push(&format!(
            " on conflict (idempotency_key) do nothing returning {DIALOUT_COLUMNS}"
        ));
        if let Some(row) = db.fetch_optional::<DialoutRow>(&sql).await? {
            return Ok(Inserted::New(row.try_into()?));
        }
        let mut sql = db.sql(&format!(
            "select {DIALOUT_COLUMNS} from dialouts where idempotency_key = "
        ));
        let key = sql.bind(new.idempotency_key);
        sql.push(&key);
        let existing: DialoutRow = db.fetch_one(&sql).await?;
        Ok(Inserted::Existing(existing.try_into()?))
    }

    /// Records the gateway's answer to dial-out `id`, or its failure.
    #[tracing::instrument(name = "store.finish_dialout", skip(self, finish))]
    pub async fn finish_dialout(&self, id: i64, finish: &DialoutFinish) -> Result<Dialout> {
        let db = self.db();
        let mut sql = Sql::update(
            db.dialect(),
            "dialouts",
            &[
                "state",
                "sid",
                "call_id",
                "attempts",
                "gateway_status",
                "gateway_body",
                "error",
                "completed_at",
            ],
            vec![
                finish.state.as_str().into(),
                finish.sid.as_deref().into(),
                finish.call_id.as_deref().into(),
                finish.attempts.into(),
                finish.gateway_status.into(),
                finish.gateway_body.as_deref().into(),
                finish.error.as_deref().into(),
                finish.completed_at.into(),
            ],
            ("id", id.into()),
        );
        sql.push(&format!(" returning {DIALOUT_COLUMNS}"));
        db.fetch_one::<DialoutRow>(&sql).await?.try_into()
    }

    /// One dial-out; `None` for an unknown id.
    #[tracing::instrument(name = "store.dialout", skip(self))]
    pub async fn dialout(&self, id: i64) -> Result<Option<Dialout>> {
        let db = self.db();
        let mut sql = db.sql(&format!(
            "select {DIALOUT_COLUMNS} from dialouts where id = "
        ));
        let p = sql.bind(id);
        sql.push(&p);
        let row: Option<DialoutRow> = db.fetch_optional(&sql).await?;
        row.map(Dialout::try_from).transpose()
    }

    /// A page of dial-outs, newest `requested_at` first.
    #[tracing::instrument(name = "store.list_dialouts", skip_all)]
    pub async fn list_dialouts(
        &self,
        filter: &DialoutFilter,
        after: Option<&DialoutCursor>,
        limit: u32,
    ) -> Result<Page<Dialout, DialoutCursor>> {
        let db = self.db();
        let rows: Vec<DialoutRow> = db
            .fetch_all(&list(db.dialect(), filter, after, limit))
            .await?;
        let items = rows
            .into_iter()
            .map(Dialout::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, cursor))
    }

    /// Sets each call's `dialout`: the dial-out whose `callId` (else `sid`) is the call's
    /// conversation id. Done when calls are read, so a call is correlated whichever of its
    /// notifications and its dial-out was stored first.
    #[tracing::instrument(name = "store.attach_dialouts", skip_all)]
    pub async fn attach_dialouts(&self, calls: &mut [crate::call::Call]) -> Result<()> {
        if calls.is_empty() {
            return Ok(());
        }
        let db = self.db();
        let ids: Vec<&str> = calls.iter().map(|c| c.conversation_id.as_str()).collect();
        let rows: Vec<DialoutRow> = db.fetch_all(&links(db.dialect(), &ids)).await?;
        let found = rows
            .into_iter()
            .map(Dialout::try_from)
            .collect::<Result<Vec<_>>>()?;
        let mut links = link_map(&ids, &found);
        for call in calls.iter_mut() {
            call.dialout = links.remove(&call.conversation_id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_conditions_look_the_dialout_up_by_call_id_or_sid() {
        let matching = DialoutMatch {
            targets: vec!["tel:1".into()],
            callers: vec![],
            metadata: vec![("campaign".into(), "spring".into())],
        };
        let mut pg = Sql::new(Dialect::Postgres, "select 1 from calls where true");
        push_call_has_dialout(&mut pg, Dialect::Postgres, &matching);
        assert!(
            pg.text
                .contains("d.call_id = calls.conversation_id or d.sid = calls.conversation_id"),
            "{}",
            pg.text
        );
        assert!(pg.text.contains("d.target in ($1)"), "{}", pg.text);
        assert!(pg.text.contains("d.metadata ->> $3 = $2"), "{}", pg.text);
        let mut lite = Sql::new(Dialect::Sqlite, "select 1 from calls where true");
        push_call_has_dialout(&mut lite, Dialect::Sqlite, &matching);
        assert_eq!(lite.args[2], Arg::Text("$.\"campaign\"".into()));
        let mut none = Sql::new(Dialect::Sqlite, "x");
        push_call_has_dialout(&mut none, Dialect::Sqlite, &DialoutMatch::default());
        assert_eq!(none.text, "x");
    }
}
