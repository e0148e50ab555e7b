-- Seeds :calls calls into an empty, migrated calltrail database on SQLite; run by
-- `python3 bench/query_latency.py seed-sqlite`, which binds :calls and :day0.
--
-- The same distribution as bench/seed_postgres.sql (see there), in SQLite's dialect:
-- timestamps are the app's fixed-width UTC text, `2023-05-08T11:32:49.000000Z`.

pragma synchronous = off;
pragma cache_size = -262144;

-- Draws first, in a table: SQLite may evaluate random() once per reference in a subquery.
create temp table draws as
with recursive seq(i) as (select 1 union all select i + 1 from seq where i < :calls)
select i,
       (random() & 4503599627370495) / 4503599627370496.0 as u_out,
       (random() & 4503599627370495) / 4503599627370496.0 as u_sub,
       (random() & 4503599627370495) / 4503599627370496.0 as u_day,
       (random() & 4503599627370495) / 4503599627370496.0 as u_hour,
       (random() & 4503599627370495) / 4503599627370496.0 as u_sec,
       (random() & 4503599627370495) / 4503599627370496.0 as u_d1,
       (random() & 4503599627370495) / 4503599627370496.0 as u_d2,
       (random() & 4503599627370495) / 4503599627370496.0 as u_d3,
       (random() & 4503599627370495) / 4503599627370496.0 as u_d4,
       (random() & 4503599627370495) / 4503599627370496.0 as u_rc,
       (random() & 4503599627370495) / 4503599627370496.0 as u_lag1,
       (random() & 4503599627370495) / 4503599627370496.0 as u_lag2,
       lower(hex(randomblob(16))) as h
from seq;

insert into calls (
    conversation_id, state, status, outcome, reason_code, reason, sip_code, sip_reason,
    duration_s, connected_at, ended_at, amd_mode, amd_result, occurred_at, first_seen_at,
    last_seen_at, event_count, updated_at, ring_ms
)
with kinds as (
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
           :day0 + cast(u_day * 30 as integer) * 86400
               + case when u_hour < 0.85 then 28800 + cast(u_sec * 43200 as integer)
                      else cast(u_sec * 86400 as integer) end as start_s,
           cast(u_lag1 * 2000000 as integer) + 50000 as lag1_us,
           cast(u_lag2 * 2000000 as integer) + 50000 as lag2_us
    from draws d
),
shaped as (
    select k.*,
           outcome in ('busy', 'declined', 'no_answer', 'unavailable') as failed,
           case outcome
               when 'human' then 5 + cast(u_d1 * u_d2 * 400 as integer)
                   + case when u_d3 < 0.03 then cast(u_d4 * 3600 as integer) else 0 end
               when 'machine' then 4 + cast(u_d1 * u_d2 * 60 as integer)
               when 'no_speech' then 3 + cast(u_d1 * u_d2 * 20 as integer)
               when 'amd_undetermined' then 5 + cast(u_d1 * u_d2 * 80 as integer)
               when 'connected' then 2 + cast(u_d1 * u_d2 * 500 as integer)
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
           strftime('%Y-%m-%dT%H:%M:%S', start_s, 'unixepoch') || '.000000Z' as start_at,
           strftime('%Y-%m-%dT%H:%M:%S', start_s + duration_s, 'unixepoch') || '.000000Z' as end_at,
           -- Receipt times: the gateway time plus a lag of 0.05–2.05 s, in microseconds.
           strftime('%Y-%m-%dT%H:%M:%S', start_s + lag1_us / 1000000, 'unixepoch')
               || '.' || printf('%06d', lag1_us % 1000000) || 'Z' as start_seen,
           strftime('%Y-%m-%dT%H:%M:%S', start_s + duration_s + lag1_us / 1000000, 'unixepoch')
               || '.' || printf('%06d', lag1_us % 1000000) || 'Z' as end_seen_1,
           strftime('%Y-%m-%dT%H:%M:%S', start_s + duration_s + lag2_us / 1000000, 'unixepoch')
               || '.' || printf('%06d', lag2_us % 1000000) || 'Z' as end_seen_2
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
    case when failed then end_seen_1 else start_seen end,
    case when failed then end_seen_1 else end_seen_2 end,
    case when failed then 1 else 2 end,
    case when failed then end_seen_1 else end_seen_2 end,
    -- Answered calls rang 1.5 to 21.5 s (the statistics' time to answer).
    case when failed then null else 1500 + (i * 7919) % 20000 end
from times
order by start_s, i;

drop table draws;
analyze;
