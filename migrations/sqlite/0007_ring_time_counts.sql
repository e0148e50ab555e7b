-- Answered calls with a ring time, per UTC day (floor of Unix seconds / 86400 of
-- occurred_at), the filterable dimensions and ring time rounded to the nearest 100 ms:
-- what GET /v1/stats reads for the time to answer over whole days (src/store/rollup.rs).
-- Kept by the same transactions as call_slot_counts; filled here from the calls stored
-- before it, in the migration's transaction.
create table call_day_ring_times (
    day integer not null,
    state text not null,
    outcome text not null,
    amd_result text not null,
    reason_code text not null,
    ring_ms integer not null,
    calls integer not null,
    primary key (day, state, outcome, amd_result, reason_code, ring_ms)
) strict, without rowid;

insert into call_day_ring_times (day, state, outcome, amd_result, reason_code, ring_ms, calls)
select (s - (((s % 86400) + 86400) % 86400)) / 86400, state, outcome,
       coalesce(amd_result, ''), coalesce(reason_code, ''), (ring_ms + 50) / 100 * 100,
       count(*)
from (select cast(strftime('%s', occurred_at) as integer) as s, * from calls)
where ring_ms is not null and connected_at is not null
group by 1, 2, 3, 4, 5, 6;
