-- GET /v1/stats groups a month of calls by a few low-cardinality columns
-- (src/store/query.rs: call_breakdown, quarter_hour_outcomes). Without statistics on the
-- columns together, the planner multiplies per-column estimates, expects hundreds of
-- thousands of groups and so runs each grouping as one serial HashAggregate (with JIT);
-- knowing there are dozens of combinations (a few per quarter hour and outcome), it splits
-- the scan over parallel workers instead: twice as fast on 2 cores (README, "Query
-- performance"). The expressions must stay exactly those of the queries.
-- (Expression statistics need PostgreSQL 14 or later.)
create statistics calls_breakdown_groups (ndistinct)
    on state, outcome, amd_result, reason_code, (case when connected_at is null then 0 else 1 end)
    from calls;

create statistics calls_quarter_hour_groups (ndistinct)
    on outcome, (date_bin('15 minutes', occurred_at, timestamptz '1970-01-01 00:00:00+00'))
    from calls;

-- Gather them now rather than at the next autoanalyze (a sample: quick on any size).
analyze calls;
