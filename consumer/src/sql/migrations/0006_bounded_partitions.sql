-- Websentry archive, schema version 6: a bounded partition set, whatever the reports' clocks say.
--
-- websentry_create_partitions (migration 4) created, in one call and so in one transaction, the
-- partition of every day that had reports waiting in reports_default. Reports dated one per day
-- since 2000 (a producer's wrong clock) made it create 3,000 partitions in one 78 s transaction,
-- holding the default partition locked and archiving waiting; every later query over `reports`
-- was ten times slower (planning over 3,000 partitions), and a restart of PostgreSQL during it
-- threw all of it away to be done again. Now a call creates:
--
-- * the partition of each day from `first` to `last` that has none (the caller's range: the
--   consumer passes today and the two days after it), and
-- * at most one partition for reports waiting in reports_default: the newest day, from the 31 days
--   before `first` (or from `keep_from` when that is later) to `last`, that has some.
--
-- The consumer calls it again, one transaction per call, until it creates nothing or 8 days in a
-- turn of upkeep (consumer/src/upkeep.rs). Reports dated further away (before those 31 days, or
-- after `last`) stay in reports_default, counted by websentry_default_rows() and warned about by
-- the consumer, until their day comes within reach or retention drops them: a far day costs a few
-- rows of one table, not a partition that every query plans for.
CREATE OR REPLACE FUNCTION websentry_create_partitions(first date, last date, keep_from date) RETURNS SETOF date
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d date;
    late date;
    part text;
    lo timestamptz;
    hi timestamptz;
    -- greatest() ignores a NULL keep_from.
    late_from date := greatest(keep_from, first - 31);
BEGIN
    -- Once per call and with the migrations: replicas starting together create each day once.
    PERFORM pg_advisory_xact_lock(8603390910923699314);  -- the migration lock ("websentr")
    -- The newest day within reach whose reports wait in the default partition (a day that has a
    -- partition has no rows there: creating it moved them).
    SELECT (max(checked_at) AT TIME ZONE 'UTC')::date INTO late FROM reports_default
    WHERE checked_at >= late_from::timestamp AT TIME ZONE 'UTC'
      AND checked_at < (last + 1)::timestamp AT TIME ZONE 'UTC';
    FOR d IN
        SELECT g::date FROM generate_series(first, last, interval '1 day') g
        UNION
        SELECT late WHERE late IS NOT NULL
        ORDER BY 1
    LOOP
        part := format('reports_p%s', to_char(d, 'YYYYMMDD'));
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        -- CREATE TABLE + ATTACH rather than CREATE … PARTITION OF, which would lock `reports`
        -- against every reader and writer (see migration 4).
        EXECUTE format('CREATE TABLE %I (LIKE reports INCLUDING DEFAULTS INCLUDING STORAGE)', part);
        -- Proves the bounds to ATTACH, which then does not scan the new table.
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT day CHECK (checked_at >= %L AND checked_at < %L)', part, lo, hi);
        LOCK TABLE reports_default IN EXCLUSIVE MODE;
        EXECUTE format('WITH moved AS (DELETE FROM reports_default WHERE checked_at >= %L AND checked_at < %L RETURNING *)
                        INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE reports ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT day', part);
        RETURN NEXT d;
    END LOOP;
END $$;

-- CREATE OR REPLACE keeps the function's owner, grants and the REVOKE from PUBLIC of migration 4;
-- said again so that this file alone shows who may run it.
REVOKE EXECUTE ON FUNCTION websentry_create_partitions(date, date, date) FROM PUBLIC;

COMMENT ON FUNCTION websentry_create_partitions(date, date, date) IS
    'Upkeep: creates the partition of each day from first to last that has none, and of at most one day with reports waiting in reports_default (moved into it): the newest from 31 days before first (or from keep_from, when later) to last. Call it again, in a new transaction, for the next such day; reports further away stay in reports_default. Returns the days created.';
