-- Seeds :calls calls into an empty, migrated calltrail database on PostgreSQL.
-- psql -v calls=1000000 -v day0=EPOCH -v seed=0.42 -f bench/seed_postgres.sql
--
-- The calls fall on the 30 whole UTC days starting at :day0 (Unix seconds), 85% of them
-- between 08:00 and 20:00, in a contact center's mix of outcomes. Every row is what
-- calltrail's fold (src/call.rs) writes for such a call: completed calls have an answered
-- and a completed event, failed calls one failed event; gateway times are whole seconds,
-- receipt times have microseconds; occurred_at = connected_at, else ended_at.
-- The arithmetic matches bench/seed_sqlite.sql (floor() where SQLite's cast truncates), so
-- both stores get the same distribution.

\set ON_ERROR_STOP on
select setseed(:seed);

insert into calls (
    conversation_id, state, status, outcome, reason_code, reason, sip_code, sip_reason,
    duration_s, connected_at, ended_at, amd_mode, amd_result, occurred_at, first_seen_at,
    last_seen_at, event_count, updated_at, ring_ms
)
with draws as (
    select i,
           random() as u_out, random() as u_sub, random() as u_day, random() as u_hour,
           random() as u_sec, random() as u_d1, random() as u_d2, random() as u_d3,
           random() as u_d4, random() as u_rc, random() as u_lag1, random() as u_lag2
    from generate_series(1, :calls) as i
),
kinds as (
    select d.*,
           case when u_out < 0.35 then 'human'
                when u_out < 0.55 then 'machine'
                when u_out < 0.60 then 'no_speech'
                when u_out < 0.65 then 'amd_undetermined'
                when u_out < 0.75 then 'connected'
                when u_out < 0.85 then 'busy'
                when u_out < 0.92 then 'declined'
                when u_out < 0.97 then 'no_answer'
                else 'unavailable' end as outcome,
           :day0::bigint + cast(floor(u_day * 30) as bigint) * 86400
               + case when u_hour < 0.85 then 28800 + cast(floor(u_sec * 43200) as bigint)
                      else cast(floor(u_sec * 86400) as bigint) end as start_s,
           cast(floor(u_lag1 * 2000000) as bigint) + 50000 as lag1_us,
           cast(floor(u_lag2 * 2000000) as bigint) + 50000 as lag2_us
    from draws d
),
shaped as (
    select k.*,
           outcome in ('busy', 'declined', 'no_answer', 'unavailable') as failed,
           -- A product of uniforms: most calls short, a long tail.
           case outcome
               when 'human' then 5 + cast(floor(u_d1 * u_d2 * 400) as bigint)
                   + case when u_d3 < 0.03 then cast(floor(u_d4 * 3600) as bigint) else 0 end
               when 'machine' then 4 + cast(floor(u_d1 * u_d2 * 60) as bigint)
               when 'no_speech' then 3 + cast(floor(u_d1 * u_d2 * 20) as bigint)
               when 'amd_undetermined' then 5 + cast(floor(u_d1 * u_d2 * 80) as bigint)
               when 'connected' then 2 + cast(floor(u_d1 * u_d2 * 500) as bigint)
               else 0 end as duration_s,
           case outcome
               when 'busy' then case when u_sub < 0.95 then 486 else 600 end
               when 'declined' then case when u_sub < 0.6 then 603 else 480 end
               when 'no_answer' then case when u_sub < 0.7 then 487 else 408 end
               when 'unavailable' then case when u_sub < 0.7 then 503 else 500 end
               else 200 end as sip_code,
           case outcome
               when 'machine' then case when u_sub < 0.80 then 'amd_machine_detected'
                                        when u_sub < 0.95 then 'amd_machine_stopped_speaking'
                                        else 'amd_tone_detected' end
               when 'human' then 'amd_human_detected'
               when 'no_speech' then 'amd_no_speech_detected'
               when 'amd_undetermined' then case when u_sub < 0.7 then 'amd_decision_timeout'
                                                 when u_sub < 0.9 then 'amd_error'
                                                 else 'amd_stopped' end
           end as amd_result
    from kinds k
),
times as (
    select s.*,
           md5(:seed::text || ':' || i) as h,
           to_timestamp(start_s) as start_at,
           to_timestamp(start_s + duration_s) as end_at
    from shaped s
)
select
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-'
        || substr(h, 17, 4) || '-' || substr(h, 21, 12),
    case when failed then 'failed' else 'completed' end,
    case when failed then 'failed' else 'completed' end,
    outcome,
    case sip_code
        when 486 then 'busy-here' when 600 then 'busy-everywhere'
        when 603 then 'decline' when 480 then 'temporarily-unavailable'
        when 487 then 'request-terminated' when 408 then 'request-timeout'
        when 503 then 'service-unavailable' when 500 then 'server-internal-error'
        else case when outcome = 'machine' or u_rc < 0.25 then 'savg-disconnected'
                  else 'caller-disconnected' end
    end,
    sip_code || ' ' || case sip_code
        when 486 then 'Busy Here' when 600 then 'Busy Everywhere'
        when 603 then 'Decline' when 480 then 'Temporarily Unavailable'
        when 487 then 'Request Terminated' when 408 then 'Request Timeout'
        when 503 then 'Service Unavailable' when 500 then 'Server Internal Error'
        else 'OK' end,
    sip_code,
    case sip_code
        when 486 then 'Busy Here' when 600 then 'Busy Everywhere'
        when 603 then 'Decline' when 480 then 'Temporarily Unavailable'
        when 487 then 'Request Terminated' when 408 then 'Request Timeout'
        when 503 then 'Service Unavailable' when 500 then 'Server Internal Error'
        else 'OK' end,
    duration_s,
    case when failed then null else start_at end,
    end_at,
    case when failed then 'disconnect' when outcome = 'connected' then 'disabled' end,
    amd_result,
    case when failed then end_at else start_at end,
    case when failed then end_at else start_at end + lag1_us * interval '1 microsecond',
    end_at + case when failed then lag1_us else lag2_us end * interval '1 microsecond',
    case when failed then 1 else 2 end,
    end_at + case when failed then lag1_us else lag2_us end * interval '1 microsecond',
    -- Answered calls rang 1.5 to 21.5 s (the statistics' time to answer).
    case when failed then null else 1500 + (cast(i as bigint) * 7919) % 20000 end
from times
order by start_s, i;

vacuum (analyze) calls;
