-- Timestamps are TEXT in one fixed-width UTC format, `2023-05-08T11:32:49.000000Z`, so that
-- text order is time order; the `*_is_utc_text` checks hold every writer to it.

-- Every notification that passed validation, normalized; one row per distinct content.
create table events (
    id integer primary key,
    conversation_id text not null,
    -- hex SHA-256 of the payload's canonical JSON
    content_hash text not null,
    status text not null,
    reason_code text,
    reason_code_raw text,
    reason text,
    sip_code integer,
    sip_reason text,
    amd_mode text,
    amd_result text,
    duration_s integer,
    connect_time text,
    disconnect_time text,
    warnings text not null,
    payload text not null,
    received_at text not null,
    constraint events_one_per_content unique (conversation_id, content_hash),
    constraint events_warnings_is_a_list check (json_type(warnings) = 'array'),
    constraint events_payload_is_an_object check (json_type(payload) = 'object'),
    constraint events_connect_time_is_utc_text
        check (connect_time like '____-__-__T__:__:__.______Z'),
    constraint events_disconnect_time_is_utc_text
        check (disconnect_time like '____-__-__T__:__:__.______Z'),
    constraint events_received_at_is_utc_text
        check (received_at like '____-__-__T__:__:__.______Z')
) strict;

create index events_of_a_call_in_received_order on events (conversation_id, received_at, id);

-- Every authenticated body within the size limit, byte for byte, with what became of it.
create table deliveries (
    id integer primary key,
    received_at text not null,
    content_type text,
    body blob not null,
    result text not null,
    error text,
    -- [{"field": …, "message": …}] for a JSON object with invalid fields
    errors text,
    conversation_id text,
    event_id integer,
    constraint deliveries_result_is_known check (result in ('accepted', 'duplicate', 'rejected')),
    constraint deliveries_name_their_event_unless_rejected
        check ((result = 'rejected') = (event_id is null)),
    constraint deliveries_errors_is_a_list check (errors is null or json_type(errors) = 'array'),
    constraint deliveries_received_at_is_utc_text
        check (received_at like '____-__-__T__:__:__.______Z'),
    constraint deliveries_event_exists foreign key (event_id) references events (id)
) strict;

create index deliveries_newest_first on deliveries (received_at desc, id desc);
create index deliveries_by_result_newest_first on deliveries (result, received_at desc, id desc);
create index deliveries_of_a_call on deliveries (conversation_id);

-- One record per call: the fold of its events (CONTRACT §4), rewritten whenever one arrives.
create table calls (
    conversation_id text primary key,
    state text not null,
    status text,
    outcome text not null,
    reason_code text,
    reason text,
    sip_code integer,
    sip_reason text,
    duration_s integer,
    connected_at text,
    ended_at text,
    amd_mode text,
    amd_result text,
    occurred_at text not null,
    first_seen_at text not null,
    last_seen_at text not null,
    event_count integer not null,
    updated_at text not null,
    constraint calls_connected_at_is_utc_text
        check (connected_at like '____-__-__T__:__:__.______Z'),
    constraint calls_ended_at_is_utc_text check (ended_at like '____-__-__T__:__:__.______Z'),
    constraint calls_occurred_at_is_utc_text
        check (occurred_at like '____-__-__T__:__:__.______Z'),
    constraint calls_first_seen_at_is_utc_text
        check (first_seen_at like '____-__-__T__:__:__.______Z'),
    constraint calls_last_seen_at_is_utc_text
        check (last_seen_at like '____-__-__T__:__:__.______Z'),
    constraint calls_updated_at_is_utc_text check (updated_at like '____-__-__T__:__:__.______Z')
) strict;

create index calls_newest_first on calls (occurred_at desc, conversation_id desc);
create index calls_by_state_newest_first on calls (state, occurred_at desc, conversation_id desc);
create index calls_by_outcome_newest_first on calls (outcome, occurred_at desc, conversation_id desc);
create index calls_by_amd_result_newest_first on calls (amd_result, occurred_at desc, conversation_id desc);
