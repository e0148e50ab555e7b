-- Retention (src/store/retention.rs) deletes a purged call's deliveries through its events:
-- this index finds them (without it, every batch of deletions reads all of `deliveries`).
-- A table with many deliveries is locked against writes while the index is built; on a
-- large database, create it first with `create index concurrently` under this name.
create index if not exists deliveries_of_an_event on deliveries (event_id);
