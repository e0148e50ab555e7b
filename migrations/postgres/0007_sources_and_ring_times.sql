-- Every gateway's notifications (docs/api.md, "Sources"): the source whose endpoint received
-- each delivery (reprocessing reads it with that source's normalizer), each event's source
-- and ring and connect durations, and the call's, folded from its events. Rows stored
-- before these columns came from `POST /notify`, the only endpoint then: `kore`.
-- A constant default is a catalog change in PostgreSQL 11 and later: no table rewrite.
alter table deliveries add column source text not null default 'kore';
alter table events
    add column source text not null default 'kore',
    add column ring_ms bigint,
    add column connect_ms bigint;
alter table calls
    add column source text not null default 'kore',
    add column ring_ms bigint,
    add column connect_ms bigint;
