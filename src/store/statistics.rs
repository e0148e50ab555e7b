//! Statistics: where each part of a filter's range is read (the statistics tables for
//! whole days, `calls` for the rest) and the SQL of each part, shared by both backends.

use chrono::DateTime;

use super::query::{CallFilter, push_call_conditions, push_dimension_conditions};
use super::sql::{Arg, Dialect, Sql};

/// Whether a call was answered, as the breakdown groups it.
///
/// This and [`PG_QUARTER_HOUR`] are grouping expressions that PostgreSQL's migration 0002
/// keeps statistics on, so that the planner expects few groups and aggregates in parallel:
/// a change here needs a migration that re-creates those statistics.
const ANSWERED: &str = "case when connected_at is null then 0 else 1 end";

/// The start of the quarter hour holding `occurred_at`, on PostgreSQL.
const PG_QUARTER_HOUR: &str =
    "date_bin('15 minutes', occurred_at, timestamptz '1970-01-01 00:00:00+00')";

/// Counts of calls by every dimension the statistics report, one row per combination.
pub fn call_breakdown(dialect: Dialect, filter: &CallFilter) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!(
            "select state, outcome, amd_result, reason_code, {ANSWERED} as answered, \
             count(*) as calls from calls where true"
        ),
    );
    push_call_conditions(&mut sql, filter);
    sql.push(" group by state, outcome, amd_result, reason_code, answered");
    sql
}

/// How many calls lasted each whole number of seconds.
pub fn duration_histogram(dialect: Dialect, filter: &CallFilter) -> Sql {
    let mut sql = Sql::new(
        dialect,
        "select duration_s, count(*) as calls from calls where duration_s is not null",
    );
    push_call_conditions(&mut sql, filter);
    sql.push(" group by duration_s");
    sql
}

/// How many answered calls rang each ring time, rounded as `call_day_ring_times` keeps it
/// (`store::rollup::ring_ms_bucket`).
pub fn ring_time_histogram(dialect: Dialect, filter: &CallFilter) -> Sql {
    let mut sql = Sql::new(
        dialect,
        &format!(
            "select {RING_MS_BUCKET} as ring_ms, count(*) as calls from calls \
             where ring_ms is not null and connected_at is not null"
        ),
    );
    push_call_conditions(&mut sql, filter);
    sql.push(&format!(" group by {RING_MS_BUCKET}"));
    sql
}

/// `store::rollup::ring_ms_bucket` in SQL: integer arithmetic on a non-negative `ring_ms`.
const RING_MS_BUCKET: &str = "(ring_ms + 50) / 100 * 100";

/// Calls per quarter hour (as Unix seconds / 900) and outcome. Every time zone's offset is
/// a whole number of quarter hours, so these slots fall wholly inside one local hour or day.
pub fn quarter_hour_outcomes(dialect: Dialect, filter: &CallFilter) -> Sql {
    let (slot, group) = match dialect {
        // Grouped by the slot's start as a timestamp, converted once per group:
        // `extract(epoch …)` on every row is numeric arithmetic and more than doubled the
        // query's cost.
        Dialect::Postgres => (
            format!("cast(extract(epoch from {PG_QUARTER_HOUR}) as bigint) / 900"),
            PG_QUARTER_HOUR,
        ),
        // The statistics tables' formula (rounding down before 1970 too).
        Dialect::Sqlite => (occurred_at_in(dialect, super::rollup::SLOT_SECONDS), "slot"),
    };
    let mut sql = Sql::new(
        dialect,
        &format!("select {slot} as slot, outcome, count(*) as calls from calls where true"),
    );
    push_call_conditions(&mut sql, filter);
    sql.push(&format!(" group by {group}, outcome"));
    sql
}

/// Whole UTC days, as days since the epoch; `until` exclusive, `None` open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: Option<i64>,
    pub until: Option<i64>,
}

/// Where the statistics for one filter are read: the whole UTC days of its range from the
/// statistics tables (`store::rollup`), and the parts of a day at either end from `calls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsPlan {
    /// Read from the statistics tables, unless the filter has conditions they do not keep.
    pub days: Option<DayRange>,
    /// Read from `calls`, each with the filter's conditions and a narrower range.
    pub calls: Vec<CallFilter>,
}

/// Splits a statistics filter between the statistics tables and `calls`. The tables keep
/// the dimensions, the source and the time of each call but not its SIP code, id, duration
/// bounds, ring or connect time or dial-out, so a filter on any of those reads `calls`
/// alone.
pub fn stats_plan(filter: &CallFilter) -> StatsPlan {
    let only_calls = || StatsPlan {
        days: None,
        calls: vec![filter.clone()],
    };
    let countable = filter.sip_codes.is_empty()
        && filter.conversation_prefix.is_none()
        && filter.min_duration.is_none()
        && filter.max_duration.is_none()
        && filter.ring_ms == (None, None)
        && filter.connect_ms == (None, None)
        && filter.dialout.is_empty();
    if !countable {
        return only_calls();
    }
    let day = super::rollup::DAY_SECONDS;
    // The first whole day at or after `since`, and the day `until` falls in.
    let from = filter.since.map(|since| {
        let seconds = since.timestamp();
        let aligned = seconds.rem_euclid(day) == 0 && since.timestamp_subsec_nanos() == 0;
        seconds.div_euclid(day) + i64::from(!aligned)
    });
    let until = filter.until.map(|until| until.timestamp().div_euclid(day));
    if let (Some(from), Some(until)) = (from, until) {
        if from >= until {
            return only_calls();
        }
    }
    let start_of = |days: i64| DateTime::from_timestamp(days * day, 0);
    let mut calls = Vec::new();
    if let (Some(since), Some(from)) = (filter.since, from) {
        let Some(first) = start_of(from) else {
            return only_calls();
        };
        if since < first {
            calls.push(CallFilter {
                until: Some(first),
                ..filter.clone()
            });
        }
    }
    if let (Some(end), Some(until)) = (filter.until, until) {
        let Some(last) = start_of(until) else {
            return only_calls();
        };
        if last < end {
            calls.push(CallFilter {
                since: Some(last),
                ..filter.clone()
            });
        }
    }
    StatsPlan {
        days: Some(DayRange { from, until }),
        calls,
    }
}

/// The queries behind the statistics over one part of a range.
#[derive(Debug, Clone)]
pub struct StatisticsSql {
    pub breakdown: Sql,
    pub durations: Sql,
    pub ring_times: Sql,
    pub quarter_hours: Sql,
}

/// The queries behind the statistics for `filter`, per [`stats_plan`]: for each part of the
/// range read from `calls`, then for the whole days read from the statistics tables. Their
/// rows add up; run them in one snapshot.
pub fn statistics(dialect: Dialect, filter: &CallFilter) -> Vec<StatisticsSql> {
    let plan = stats_plan(filter);
    let mut sqls: Vec<StatisticsSql> = plan
        .calls
        .iter()
        .map(|part| StatisticsSql {
            breakdown: call_breakdown(dialect, part),
            durations: duration_histogram(dialect, part),
            ring_times: ring_time_histogram(dialect, part),
            quarter_hours: quarter_hour_outcomes(dialect, part),
        })
        .collect();
    if let Some(days) = plan.days {
        sqls.push(StatisticsSql {
            breakdown: counted_breakdown(dialect, filter, days),
            durations: counted_durations(dialect, filter, days),
            ring_times: counted_ring_times(dialect, filter, days),
            quarter_hours: counted_quarter_hours(dialect, filter, days),
        });
    }
    sqls
}

/// Appends the dimension conditions and the day range, on a statistics table whose time
/// column holds `per_day` units a day.
fn push_count_conditions(
    sql: &mut Sql,
    filter: &CallFilter,
    days: DayRange,
    column: &str,
    per_day: i64,
) {
    push_dimension_conditions(sql, filter, "amd_result = ''");
    if let Some(from) = days.from {
        let p = sql.bind(Arg::Int(from * per_day));
        sql.push(&format!(" and {column} >= {p}"));
    }
    if let Some(until) = days.until {
        let p = sql.bind(Arg::Int(until * per_day));
        sql.push(&format!(" and {column} < {p}"));
    }
}

const SLOTS_PER_DAY: i64 = super::rollup::DAY_SECONDS / super::rollup::SLOT_SECONDS;

/// [`call_breakdown`] over whole days, from the statistics tables.
pub fn counted_breakdown(dialect: Dialect, filter: &CallFilter, days: DayRange) -> Sql {
    let mut sql = Sql::new(
        dialect,
        "select state, outcome, nullif(amd_result, '') as amd_result, \
         nullif(reason_code, '') as reason_code, answered, \
         cast(sum(calls) as bigint) as calls from call_slot_counts where true",
    );
    push_count_conditions(&mut sql, filter, days, "slot", SLOTS_PER_DAY);
    sql.push(" group by state, outcome, amd_result, reason_code, answered having sum(calls) <> 0");
    sql
}

/// [`duration_histogram`] over whole days, from the statistics tables.
pub fn counted_durations(dialect: Dialect, filter: &CallFilter, days: DayRange) -> Sql {
    let mut sql = Sql::new(
        dialect,
        "select duration_s, cast(sum(calls) as bigint) as calls \
         from call_day_durations where true",
    );
    push_count_conditions(&mut sql, filter, days, "day", 1);
    sql.push(" group by duration_s having sum(calls) <> 0");
    sql
}

/// [`ring_time_histogram`] over whole days, from the statistics tables.
pub fn counted_ring_times(dialect: Dialect, filter: &CallFilter, days: DayRange) -> Sql {
    let mut sql = Sql::new(
        dialect,
        "select ring_ms, cast(sum(calls) as bigint) as calls \
         from call_day_ring_times where true",
    );
    push_count_conditions(&mut sql, filter, days, "day", 1);
    sql.push(" group by ring_ms having sum(calls) <> 0");
    sql
}

/// [`quarter_hour_outcomes`] over whole days, from the statistics tables.
pub fn counted_quarter_hours(dialect: Dialect, filter: &CallFilter, days: DayRange) -> Sql {
    let mut sql = Sql::new(
        dialect,
        "select slot, outcome, cast(sum(calls) as bigint) as calls \
         from call_slot_counts where true",
    );
    push_count_conditions(&mut sql, filter, days, "slot", SLOTS_PER_DAY);
    sql.push(" group by slot, outcome having sum(calls) <> 0");
    sql
}

/// `floor(Unix seconds of occurred_at / unit)` in the dialect.
pub(super) fn occurred_at_in(dialect: Dialect, unit: i64) -> String {
    match dialect {
        Dialect::Postgres => format!("floor(extract(epoch from occurred_at) / {unit})::bigint"),
        // Integer division truncates towards zero: subtract the remainder first so that
        // times before 1970 round down as well.
        Dialect::Sqlite => {
            let s = "cast(strftime('%s', occurred_at) as integer)";
            format!("({s} - ((({s} % {unit}) + {unit}) % {unit})) / {unit}")
        }
    }
}

/// True when the statistics tables do not count every call: they were added to a database
/// that already held calls, or calls were written around calltrail (loaded with SQL, or by
/// an older calltrail that does not count). Both totals come from one snapshot, and every
/// write of calltrail changes both in one transaction, so they differ only then.
pub const COUNTS_WRONG: &str = "select (select count(*) from calls) \
     <> coalesce((select sum(calls) from call_slot_counts), 0)";

/// One statistics table, as the statements that refill it and take calls out of it see it:
/// keyed by a time unit of `occurred_at`, the dimensions, one value column and the source.
pub(super) struct CountTable {
    pub name: &'static str,
    /// The time column and how many seconds one of its units is.
    pub time: (&'static str, i64),
    /// The value column and its expression over a row of `calls`.
    value: (&'static str, &'static str),
    /// Which calls the table counts.
    counts: &'static str,
}

/// The statistics tables (see `store::rollup`).
pub(super) const COUNT_TABLES: [CountTable; 3] = [
    CountTable {
        name: "call_slot_counts",
        time: ("slot", super::rollup::SLOT_SECONDS),
        value: ("answered", ANSWERED),
        counts: "true",
    },
    CountTable {
        name: "call_day_durations",
        time: ("day", super::rollup::DAY_SECONDS),
        value: ("duration_s", "duration_s"),
        counts: "duration_s is not null",
    },
    CountTable {
        name: "call_day_ring_times",
        time: ("day", super::rollup::DAY_SECONDS),
        value: ("ring_ms", RING_MS_BUCKET),
        counts: "ring_ms is not null and connected_at is not null",
    },
];

impl CountTable {
    /// `insert into … (key columns, calls)`, for rows that follow in the order of
    /// `store::rollup::CountRow`, then `calls`.
    pub fn insert(&self) -> String {
        format!("insert into {} ({}, calls) ", self.name, self.key())
    }

    /// The tail of [`CountTable::insert`]: a row adds to the row of its key.
    pub fn add_on_conflict(&self) -> String {
        format!(
            " on conflict ({}) do update set calls = calls + excluded.calls",
            self.key()
        )
    }

    /// The key columns, in key order.
    fn key(&self) -> String {
        let (time, value) = (self.time.0, self.value.0);
        format!("{time}, state, outcome, amd_result, reason_code, {value}, source")
    }

    /// The table's rows for the calls `only` admits (a condition on `calls`), uncounted.
    fn rows(&self, dialect: Dialect, only: &str) -> String {
        let (time, unit) = self.time;
        let (value, expression) = self.value;
        format!(
            "select {} as {time}, state, outcome, coalesce(amd_result, '') as amd_result,
                    coalesce(reason_code, '') as reason_code, {expression} as {value}, source
             from calls
             where {} and {only}",
            occurred_at_in(dialect, unit),
            self.counts
        )
    }
}

/// Statements that empty the statistics tables and fill them from `calls`.
pub fn rebuild_counts(dialect: Dialect) -> Vec<String> {
    let empty = COUNT_TABLES
        .iter()
        .map(|table| format!("delete from {}", table.name));
    let fill = COUNT_TABLES.iter().map(|table| {
        let (name, key) = (table.name, table.key());
        format!(
            "insert into {name} ({key}, calls)
             select {key}, count(*) from ({}) as c
             group by {key}",
            table.rows(dialect, "true")
        )
    });
    empty.chain(fill).collect()
}

/// The statements that take the calls whose ids `ids` lists out of the statistics tables,
/// as if they had never been written; run before the calls are deleted, in the same
/// transaction. The changed rows are taken in key order, as the group-commit writers
/// take them.
pub fn uncount_calls(dialect: Dialect, ids: &[String]) -> Vec<Sql> {
    COUNT_TABLES
        .iter()
        .map(|table| {
            let mut sql = Sql::new(dialect, "");
            let list = sql.bind_text_rows(ids);
            let (name, key) = (table.name, table.key());
            // `where true`: without a `where`, SQLite would parse `on conflict` as a join's `on`.
            sql.push(&format!(
                "insert into {name} as t ({key}, calls)
                 select {key}, -count(*)
                 from ({}) as c
                 where true
                 group by {key}
                 order by {key}
                 on conflict ({key})
                 do update set calls = t.calls + excluded.calls",
                table.rows(dialect, &format!("conversation_id in ({list})"))
            ));
            sql
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Outcome;
    use chrono::Utc;

    #[test]
    fn statistics_grouping_expressions_match_the_planner_statistics_migration() {
        let migration =
            include_str!("../../migrations/postgres/0002_call_statistics_for_the_planner.sql");
        let breakdown = call_breakdown(Dialect::Postgres, &CallFilter::default());
        let slots = quarter_hour_outcomes(Dialect::Postgres, &CallFilter::default());

        assert!(breakdown.text.contains(ANSWERED), "{}", breakdown.text);
        assert!(
            slots
                .text
                .ends_with(&format!(" group by {PG_QUARTER_HOUR}, outcome")),
            "{}",
            slots.text
        );
        assert!(
            migration.contains(&format!("({ANSWERED})")),
            "migration 0002 lost `{ANSWERED}`"
        );
        assert!(
            migration.contains(&format!("({PG_QUARTER_HOUR})")),
            "migration 0002 lost `{PG_QUARTER_HOUR}`"
        );
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn statistics_read_whole_days_from_the_counts_and_the_rest_from_calls() {
        let day = |text: &str| at(text).timestamp() / 86_400;
        let filter = CallFilter {
            outcomes: vec![Outcome::Machine],
            since: Some(at("2026-11-01T10:00:00Z")),
            until: Some(at("2026-11-04T06:30:00Z")),
            ..CallFilter::default()
        };
        let plan = stats_plan(&filter);
        assert_eq!(
            plan.days,
            Some(DayRange {
                from: Some(day("2026-11-02T00:00:00Z")),
                until: Some(day("2026-11-04T00:00:00Z")),
            })
        );
        let ranges: Vec<_> = plan.calls.iter().map(|f| (f.since, f.until)).collect();
        assert_eq!(
            ranges,
            [
                (
                    Some(at("2026-11-01T10:00:00Z")),
                    Some(at("2026-11-02T00:00:00Z"))
                ),
                (
                    Some(at("2026-11-04T00:00:00Z")),
                    Some(at("2026-11-04T06:30:00Z"))
                ),
            ]
        );
        assert!(plan.calls.iter().all(|f| f.outcomes == [Outcome::Machine]));

        // Midnight to midnight: the counts alone.
        let aligned = CallFilter {
            since: Some(at("2026-11-01T00:00:00Z")),
            until: Some(at("2026-11-04T00:00:00Z")),
            ..CallFilter::default()
        };
        assert_eq!(stats_plan(&aligned).calls, []);
        // No range at all: every day, from the counts.
        let everything = stats_plan(&CallFilter::default());
        assert_eq!(
            everything.days,
            Some(DayRange {
                from: None,
                until: None
            })
        );
        assert_eq!(everything.calls, []);
        // A microsecond past midnight starts the whole days a day later.
        let late = CallFilter {
            since: Some(at("2026-11-01T00:00:00.000001Z")),
            ..CallFilter::default()
        };
        let plan = stats_plan(&late);
        assert_eq!(plan.days.unwrap().from, Some(day("2026-11-02T00:00:00Z")));
        assert_eq!(plan.calls[0].until, Some(at("2026-11-02T00:00:00Z")));
    }

    #[test]
    fn statistics_within_one_day_or_on_uncounted_conditions_read_calls() {
        let within = CallFilter {
            since: Some(at("2026-11-01T10:00:00Z")),
            until: Some(at("2026-11-02T06:00:00Z")),
            ..CallFilter::default()
        };
        assert_eq!(stats_plan(&within).days, None);
        assert_eq!(stats_plan(&within).calls, std::slice::from_ref(&within));
        for filter in [
            CallFilter {
                sip_codes: vec![486],
                ..CallFilter::default()
            },
            CallFilter {
                conversation_prefix: Some("a".into()),
                ..CallFilter::default()
            },
            CallFilter {
                min_duration: Some(1),
                ..CallFilter::default()
            },
        ] {
            assert_eq!(stats_plan(&filter).days, None, "{filter:?}");
        }
    }

    #[test]
    fn a_source_filter_reads_the_counts_like_the_dimensions() {
        let filter = CallFilter {
            sources: vec![crate::notification::Format::Jambonz],
            since: Some(at("2026-11-01T00:00:00Z")),
            until: Some(at("2026-12-01T00:00:00Z")),
            ..CallFilter::default()
        };
        let plan = stats_plan(&filter);
        assert_eq!(plan.calls, []);
        let sql = counted_breakdown(Dialect::Postgres, &filter, plan.days.unwrap());
        assert!(sql.text.contains(" and source in ($1)"), "{}", sql.text);
        assert_eq!(sql.args[0], Arg::Text("jambonz".into()));
    }

    #[test]
    fn counts_match_calls_without_an_amd_result_by_the_empty_string() {
        let filter = CallFilter {
            amd_results: vec![None],
            ..CallFilter::default()
        };
        let days = DayRange {
            from: Some(2),
            until: Some(3),
        };
        let sql = counted_quarter_hours(Dialect::Postgres, &filter, days);
        assert!(
            sql.text
                .contains(" and (amd_result = '') and slot >= $1 and slot < $2"),
            "{}",
            sql.text
        );
        assert_eq!(sql.args, [Arg::Int(192), Arg::Int(288)]);
    }
}
