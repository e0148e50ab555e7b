-- Retention (src/store/retention.rs) deletes a purged call's deliveries through its events:
-- this index finds them, and lets SQLite check the foreign key from deliveries to events
-- without reading every delivery for each event deleted. (There is no 0006 here:
-- PostgreSQL's 0006 is a function SQLite has no use for.)
create index deliveries_of_an_event on deliveries (event_id);
