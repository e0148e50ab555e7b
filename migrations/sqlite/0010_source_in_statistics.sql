-- The statistics tables keep each call's source beside its other dimensions, so that
-- GET /v1/stats?source=… reads them like any filter they keep, not every call of the range
-- (docs/benchmarks.md). They are created anew with `source` in their keys, empty;
-- calltrail refills them from `calls` right after the migrations, as for any database whose
-- counts do not match its calls (`count_calls_if_uncounted` in src/store/recount.rs).
drop table call_slot_counts;
drop table call_day_durations;
drop table call_day_ring_times;

create table call_slot_counts (
    slot integer not null,
    state text not null,
    outcome text not null,
    amd_result text not null,
    reason_code text not null,
    answered integer not null,
    source text not null,
    calls integer not null,
    primary key (slot, state, outcome, amd_result, reason_code, answered, source)
) strict, without rowid;

create table call_day_durations (
    day integer not null,
    state text not null,
    outcome text not null,
    amd_result text not null,
    reason_code text not null,
    duration_s integer not null,
    source text not null,
    calls integer not null,
    primary key (day, state, outcome, amd_result, reason_code, duration_s, source)
) strict, without rowid;

create table call_day_ring_times (
    day integer not null,
    state text not null,
    outcome text not null,
    amd_result text not null,
    reason_code text not null,
    ring_ms integer not null,
    source text not null,
    calls integer not null,
    primary key (day, state, outcome, amd_result, reason_code, ring_ms, source)
) strict, without rowid;
