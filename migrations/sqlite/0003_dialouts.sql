-- Dial-outs placed through `POST /v1/dialouts`: the request, stored before it is sent to the
-- gateway, and the gateway's answer (`sid`, `callId`) or the failure. A call is correlated
-- with its dial-out when read: conversation_id = call_id (or sid).
create table dialouts (
    id integer primary key,
    state text not null,
    target text not null,
    caller text not null,
    trunk text,
    -- the request's metadata object, or null
    metadata text,
    -- {"no_speech_timeout_ms": …, …}, the defaults filled in
    timers text not null,
    machine_detection text,
    threshold_word_count integer,
    idempotency_key text,
    -- hex SHA-256 of the request's canonical JSON: a reused key must carry the same request
    request_hash text not null,
    sid text,
    call_id text,
    attempts integer not null default 0,
    gateway_status integer,
    gateway_body text,
    error text,
    requested_at text not null,
    completed_at text,
    -- Two requests with one key, however concurrent, make one dial-out.
    constraint dialouts_one_per_idempotency_key unique (idempotency_key),
    constraint dialouts_state_is_known check (state in ('pending', 'placed', 'failed')),
    constraint dialouts_placed_ones_have_their_ids
        check (state <> 'placed' or (sid is not null and call_id is not null)),
    constraint dialouts_finished_ones_have_a_completion_time
        check ((state = 'pending') = (completed_at is null)),
    constraint dialouts_metadata_is_an_object check (metadata is null or json_type(metadata) = 'object'),
    constraint dialouts_timers_is_an_object check (json_type(timers) = 'object'),
    constraint dialouts_requested_at_is_utc_text
        check (requested_at like '____-__-__T__:__:__.______Z'),
    constraint dialouts_completed_at_is_utc_text
        check (completed_at like '____-__-__T__:__:__.______Z')
) strict;

create index dialouts_newest_first on dialouts (requested_at desc, id desc);
create index dialouts_by_call_id on dialouts (call_id);
create index dialouts_by_sid on dialouts (sid);
create index dialouts_by_target_newest_first on dialouts (target, requested_at desc, id desc);
