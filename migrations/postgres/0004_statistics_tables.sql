-- Counts of calls that GET /v1/stats reads instead of the calls themselves (see
-- src/store/rollup.rs). Every transaction that writes a call's record moves its count
-- here in the same transaction. Absent values are '' (key columns cannot be null).
-- calltrail refills them from `calls` at start when they do not count every call (as at
-- the first start after this migration): see `count_calls_if_uncounted` in src/store/*.rs.

-- Calls per quarter hour (floor of Unix seconds / 900 of occurred_at) and breakdown.
create table call_slot_counts (
    slot bigint not null,
    state text not null,
    outcome text not null,
    amd_result text not null,
    reason_code text not null,
    answered integer not null,
    calls bigint not null,
    primary key (slot, state, outcome, amd_result, reason_code, answered)
);

-- Calls per UTC day (floor of Unix seconds / 86400 of occurred_at), dimensions and
-- whole-second duration, for calls that have a duration.
create table call_day_durations (
    day bigint not null,
    state text not null,
    outcome text not null,
    amd_result text not null,
    reason_code text not null,
    duration_s bigint not null,
    calls bigint not null,
    primary key (day, state, outcome, amd_result, reason_code, duration_s)
);
