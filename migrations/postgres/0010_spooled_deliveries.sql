-- A delivery replayed from calltrail's local spool (the database was away when it arrived)
-- says when it was spooled; its received_at is still the time it arrived.
alter table deliveries add column spooled_at timestamptz;
