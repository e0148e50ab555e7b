-- Answered calls with a ring time, per UTC day (floor of Unix seconds / 86400 of
-- occurred_at), the filterable dimensions and ring time rounded to the nearest 100 ms:
-- what GET /v1/stats reads for the time to answer over whole days (src/store/rollup.rs).
-- Kept by the same transactions as call_slot_counts; filled here from the calls stored
-- before it, in the migration's transaction.
create table call_day_ring_times (
    day bigint not null,
    state text not null,
    outcome text not null,
    amd_result text not null,
    reason_code text not null,
    ring_ms bigint not null,
    calls bigint not null,
    primary key (day, state, outcome, amd_result, reason_code, ring_ms)
);

insert into call_day_ring_times (day, state, outcome, amd_result, reason_code, ring_ms, calls)
select floor(extract(epoch from occurred_at) / 86400)::bigint, state, outcome,
       coalesce(amd_result, ''), coalesce(reason_code, ''), (ring_ms + 50) / 100 * 100,
       count(*)
from calls
where ring_ms is not null and connected_at is not null
group by 1, 2, 3, 4, 5, 6;
