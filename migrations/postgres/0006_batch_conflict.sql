-- The group-commit writer records a batch in one statement, with what it read of the
-- batch's calls just before (src/store/postgres/write.rs). If another transaction changed
-- one of those calls in between, the statement calls this function, which aborts it (and
-- with it every change it made); the writer then records the batch under the calls' locks.
create function calltrail_batch_conflict() returns boolean
language plpgsql as $$
begin
    raise exception 'a call of this batch changed after the batch read it'
        using errcode = '40001';
end
$$;

