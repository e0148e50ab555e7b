-- Retention (src/store/retention.rs) deletes a purged call's deliveries through its events:
-- this index finds them, and lets SQLite check the foreign key from deliveries to events
-- without reading every delivery for each event deleted.
create index deliveries_of_an_event on deliveries (event_id);
