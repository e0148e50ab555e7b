-- Less work for every notification (README, "Ingest throughput"):
-- - a call's events are found through the unique index on (conversation_id, content_hash),
--   whose leading column is the call; sorting a call's few events costs nothing, so the
--   second index on conversation_id only cost an entry per event;
-- - no query looks deliveries up by call.
-- (SQLite cannot drop the foreign key from deliveries to events without rebuilding the
-- table; its check is one look-up in the same file, without the row lock PostgreSQL takes.)
drop index events_of_a_call_in_received_order;
drop index deliveries_of_a_call;
