-- Every notification that passed validation, normalized; one row per distinct content.
create table events (
    id bigint generated always as identity primary key,
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
    duration_s bigint,
    connect_time timestamptz,
    disconnect_time timestamptz,
    warnings jsonb not null,
    payload jsonb not null,
    received_at timestamptz not null,
    constraint events_one_per_content unique (conversation_id, content_hash),
    constraint events_warnings_is_a_list check (jsonb_typeof(warnings) = 'array'),
    constraint events_payload_is_an_object check (jsonb_typeof(payload) = 'object')
);

create index events_of_a_call_in_received_order on events (conversation_id, received_at, id);

-- Every authenticated body within the size limit, byte for byte, with what became of it.
create table deliveries (
    id bigint generated always as identity primary key,
    received_at timestamptz not null,
    content_type text,
    body bytea not null,
    result text not null,
    error text,
    -- [{"field": …, "message": …}] for a JSON object with invalid fields
    errors jsonb,
    conversation_id text,
    event_id bigint,
    constraint deliveries_result_is_known check (result in ('accepted', 'duplicate', 'rejected')),
    constraint deliveries_name_their_event_unless_rejected
        check ((result = 'rejected') = (event_id is null)),
    constraint deliveries_errors_is_a_list check (errors is null or jsonb_typeof(errors) = 'array'),
    constraint deliveries_event_exists foreign key (event_id) references events (id)
);

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
    duration_s bigint,
    connected_at timestamptz,
    ended_at timestamptz,
    amd_mode text,
    amd_result text,
    occurred_at timestamptz not null,
    first_seen_at timestamptz not null,
    last_seen_at timestamptz not null,
    event_count bigint not null,
    updated_at timestamptz not null
);

create index calls_newest_first on calls (occurred_at desc, conversation_id desc);
create index calls_by_state_newest_first on calls (state, occurred_at desc, conversation_id desc);
create index calls_by_outcome_newest_first on calls (outcome, occurred_at desc, conversation_id desc);
create index calls_by_amd_result_newest_first on calls (amd_result, occurred_at desc, conversation_id desc);
