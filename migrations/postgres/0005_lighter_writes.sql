-- Less work for every notification (README, "Ingest throughput"):
-- - a call's events are found through events_one_per_content (conversation_id, content_hash),
--   whose leading column is the call; sorting a call's few events costs nothing, so the
--   second index on conversation_id only cost an entry per event;
-- - no query looks deliveries up by call;
-- - the foreign key from deliveries to events made every delivery insert look up its event
--   and lock it (FOR KEY SHARE, a write to the event's row). calltrail writes a delivery
--   and its event in one transaction and never deletes events; the check constraint
--   deliveries_name_their_event_unless_rejected stays.
drop index events_of_a_call_in_received_order;
drop index deliveries_of_a_call;
alter table deliveries drop constraint deliveries_event_exists;
