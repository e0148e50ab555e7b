//! The read side's filters and cursors, and the SQL of the lists, shared by both backends
//! (built with [`Sql`]). Conditions only ever compare columns with bound values.

use chrono::{DateTime, Utc};

use super::DeliveryResult;
use super::columns::{CALL_COLUMNS, DELIVERY_COLUMNS};
pub use super::page::{Page, page_of};
pub use super::sql::{Arg, Dialect, Sql};
use crate::call::{CallState, Outcome};
use crate::notification::{AmdResult, Format};

/// Which calls a list, export or statistic covers. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub states: Vec<CallState>,
    pub outcomes: Vec<Outcome>,
    /// `None` in the list matches calls without an AMD result.
    pub amd_results: Vec<Option<AmdResult>>,
    pub reason_codes: Vec<String>,
    pub sip_codes: Vec<u16>,
    /// Inclusive lower bound on `occurred_at`.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `occurred_at`.
    pub until: Option<DateTime<Utc>>,
    /// A prefix of the conversation id.
    pub conversation_prefix: Option<String>,
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    /// The gateways that sent the call's notifications.
    pub sources: Vec<Format>,
    /// Inclusive bounds on `ring_ms`; a bound leaves out calls without it.
    pub ring_ms: (Option<i64>, Option<i64>),
    /// Inclusive bounds on `connect_ms`; a bound leaves out calls without it.
    pub connect_ms: (Option<i64>, Option<i64>),
    /// Conditions on the call's dial-out (`target`, `caller`, `metadata.KEY`).
    pub dialout: super::dialouts::DialoutMatch,
}

/// Which deliveries a list or bulk reprocessing covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub results: Vec<DeliveryResult>,
    /// Inclusive lower bound on `received_at`.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `received_at`.
    pub until: Option<DateTime<Utc>>,
    /// Deliveries of this call only (no index: read with a `since`, see docs/api.md#deliveries).
    pub conversation_id: Option<String>,
}

/// Where a page of calls ends: the last call's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCursor {
    pub occurred_at: DateTime<Utc>,
    pub conversation_id: String,
}

/// Where a page of deliveries ends: the last delivery's sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryCursor {
    pub received_at: DateTime<Utc>,
    pub id: i64,
}

/// The cursor after `call`.
pub fn call_cursor(call: &crate::call::Call) -> CallCursor {
    CallCursor {
        occurred_at: call.occurred_at,
        conversation_id: call.conversation_id.clone(),
    }
}

/// The cursor after `delivery`.
pub fn delivery_cursor(delivery: &super::Delivery) -> DeliveryCursor {
    DeliveryCursor {
        received_at: delivery.received_at,
        id: delivery.id,
    }
}

/// Appends ` and …` for the filter's conditions on the dimensions the statistics tables
/// keep too (source, state, outcome, AMD result, reason code); `no_amd_result` is the condition
/// matching a call without an AMD result.
pub(super) fn push_dimension_conditions(sql: &mut Sql, filter: &CallFilter, no_amd_result: &str) {
    if !filter.sources.is_empty() {
        sql.push_in(
            "source",
            filter.sources.iter().map(|s| Arg::Text(s.source().into())),
        );
    }
    if !filter.states.is_empty() {
        sql.push_in(
            "state",
            filter.states.iter().map(|s| Arg::Text(s.as_str().into())),
        );
    }
    if !filter.outcomes.is_empty() {
        sql.push_in(
            "outcome",
            filter.outcomes.iter().map(|o| Arg::Text(o.as_str().into())),
        );
    }
    if !filter.amd_results.is_empty() {
        let known: Vec<Arg> = filter
            .amd_results
            .iter()
            .flatten()
            .map(|r| Arg::Text(r.as_str().into()))
            .collect();
        let none = filter.amd_results.contains(&None);
        let placeholders: Vec<String> = known.into_iter().map(|a| sql.bind(a)).collect();
        let mut alternatives = Vec::new();
        if !placeholders.is_empty() {
            alternatives.push(format!("amd_result in ({})", placeholders.join(", ")));
        }
        if none {
            alternatives.push(no_amd_result.to_owned());
        }
        sql.push(&format!(" and ({})", alternatives.join(" or ")));
    }
    if !filter.reason_codes.is_empty() {
        sql.push_in(
            "reason_code",
            filter.reason_codes.iter().map(|r| Arg::Text(r.clone())),
        );
    }
}

/// Appends ` and …` for every condition of `filter`.
pub fn push_call_conditions(sql: &mut Sql, filter: &CallFilter) {
    push_dimension_conditions(sql, filter, "amd_result is null");
    if !filter.sip_codes.is_empty() {
        sql.push_in(
            "sip_code",
            filter.sip_codes.iter().map(|c| Arg::Int(i64::from(*c))),
        );
    }
    if let Some(since) = filter.since {
        let p = sql.bind(Arg::Time(since));
        sql.push(&format!(" and occurred_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = sql.bind(Arg::Time(until));
        sql.push(&format!(" and occurred_at < {p}"));
    }
    if let Some(prefix) = &filter.conversation_prefix {
        // Exact and case-sensitive on both stores (SQLite's LIKE ignores ASCII case).
        let p = sql.bind(Arg::Text(prefix.clone()));
        sql.push(&format!(
            " and substr(conversation_id, 1, length({p})) = {p}"
        ));
    }
    if let Some(min) = filter.min_duration {
        let p = sql.bind(Arg::Int(min));
        sql.push(&format!(" and duration_s >= {p}"));
    }
    if let Some(max) = filter.max_duration {
        let p = sql.bind(Arg::Int(max));
        sql.push(&format!(" and duration_s <= {p}"));
    }
    for (column, (min, max)) in [
        ("ring_ms", filter.ring_ms),
        ("connect_ms", filter.connect_ms),
    ] {
        if let Some(min) = min {
            let p = sql.bind(Arg::Int(min));
            sql.push(&format!(" and {column} >= {p}"));
        }
        if let Some(max) = max {
            let p = sql.bind(Arg::Int(max));
            sql.push(&format!(" and {column} <= {p}"));
        }
    }
    let dialect = sql.dialect;
    super::dialouts::push_call_has_dialout(sql, dialect, &filter.dialout);
}

/// One page of calls, newest `occurred_at` first; fetches `limit + 1` rows so that the
/// caller can tell whether another page follows.
pub fn list_calls(
    dialect: Dialect,
    filter: &CallFilter,
    after: Option<&CallCursor>,
    limit: u32,
) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {CALL_COLUMNS} from calls where true"),
    );
    push_call_conditions(&mut sql, filter);
    if let Some(cursor) = after {
        let at = sql.bind(Arg::Time(cursor.occurred_at));
        let id = sql.bind(Arg::Text(cursor.conversation_id.clone()));
        sql.push(&format!(
            " and (occurred_at, conversation_id) < ({at}, {id})"
        ));
    }
    let limit = sql.bind(Arg::Int(i64::from(limit) + 1));
    sql.push(&format!(
        " order by occurred_at desc, conversation_id desc limit {limit}"
    ));
    sql
}

/// One page of deliveries, newest first, `limit + 1` rows.
pub fn list_deliveries(
    dialect: Dialect,
    filter: &DeliveryFilter,
    after: Option<&DeliveryCursor>,
    limit: u32,
) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!("select {DELIVERY_COLUMNS} from deliveries where true"),
    );
    if !filter.results.is_empty() {
        sql.push_in(
            "result",
            filter.results.iter().map(|r| Arg::Text(r.as_str().into())),
        );
    }
    if let Some(since) = filter.since {
        let p = sql.bind(Arg::Time(since));
        sql.push(&format!(" and received_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = sql.bind(Arg::Time(until));
        sql.push(&format!(" and received_at < {p}"));
    }
    if let Some(conversation_id) = &filter.conversation_id {
        let p = sql.bind(Arg::Text(conversation_id.clone()));
        sql.push(&format!(" and conversation_id = {p}"));
    }
    if let Some(cursor) = after {
        let at = sql.bind(Arg::Time(cursor.received_at));
        let id = sql.bind(Arg::Int(cursor.id));
        sql.push(&format!(" and (received_at, id) < ({at}, {id})"));
    }
    let limit = sql.bind(Arg::Int(i64::from(limit) + 1));
    sql.push(&format!(
        " order by received_at desc, id desc limit {limit}"
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_numbered_placeholders_in_each_dialect() {
        let filter = CallFilter {
            states: vec![CallState::Failed],
            sip_codes: vec![486, 480],
            amd_results: vec![Some(AmdResult::HumanDetected), None],
            conversation_prefix: Some("abc".into()),
            ..CallFilter::default()
        };

        let pg = list_calls(Dialect::Postgres, &filter, None, 50);
        let lite = list_calls(Dialect::Sqlite, &filter, None, 50);

        assert!(
            pg.text
                .contains(" and state in ($1) and (amd_result in ($2) or amd_result is null)"),
            "{}",
            pg.text
        );
        assert!(pg.text.contains(" and sip_code in ($3, $4)"), "{}", pg.text);
        assert!(
            pg.text
                .contains("substr(conversation_id, 1, length($5)) = $5"),
            "{}",
            pg.text
        );
        assert!(
            pg.text
                .ends_with("order by occurred_at desc, conversation_id desc limit $6")
        );
        assert_eq!(pg.args.last(), Some(&Arg::Int(51)));
        assert_eq!(lite.text, pg.text.replace('$', "?"));
    }
}
