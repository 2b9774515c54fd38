-- Websentry archive, schema version 18: hourly rollups partitioned by UTC day, so that their
-- retention drops a day's partition instead of deleting its rows.
--
-- Since version 12 the hours are kept 8 days and expired a day at a time by DELETE: 240,000 rows
-- a day for 10,000 sites, left to autovacuum as dead row versions, in a table every batch writes.
-- Now `rollup_hourly` is partitioned by range of `hour`, one partition per UTC day
-- (`rollup_hourly_pYYYYMMDD`, as `reports_pYYYYMMDD`), and `rollup_hourly_default` holds the hours
-- of days without one: hours written late before the hourly horizon (deleted by the next upkeep,
-- as before), and hours of days out of the upkeep's reach (a producer's wrong clock). The upkeep
-- creates the days ahead with the reports' ones (websentry_create_hourly_partitions). Expiry moves
-- the hourly horizon past a day as before (websentry_expire_hours); the day's partition is dropped
-- at a later turn (websentry_drop_expired_hours), never in the transaction that moves the horizon:
-- a reader takes the horizon and then opens the partitions, and a DROP is not MVCC-safe as a
-- DELETE is, so a partition dropped between the two would read as hours nobody measured. Readers
-- see the same table.
--
-- The conversion copies the rows: the table as it was is renamed, the partitioned one created with
-- the same columns, comments and grants, the partitions of the days that hold hours from the
-- hourly horizon (at most 31 days back) to today and the two days after created, and every row
-- inserted into it; rows of other days go to the default partition. An archive that keeps 8 days
-- of hours for 10,000 sites copies about 2 M rows (0.8 GB) here, under the migration lock.

ALTER TABLE rollup_hourly RENAME TO rollup_hourly_v17;
ALTER INDEX rollup_hourly_pkey RENAME TO rollup_hourly_v17_pkey;
ALTER INDEX rollup_hourly_hour RENAME TO rollup_hourly_v17_hour;

CREATE TABLE rollup_hourly (LIKE rollup_hourly_v17 INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (hour);
ALTER TABLE rollup_hourly ADD PRIMARY KEY (url, probe, hour);
CREATE INDEX rollup_hourly_hour ON rollup_hourly USING brin (hour);
CREATE TABLE rollup_hourly_default PARTITION OF rollup_hourly DEFAULT;
COMMENT ON TABLE rollup_hourly IS
    'Per (url, probe) and UTC hour: probes, successes, failures by error kind, response time sum/min/max and histogram (b0…b127) of the successes, earliest certificate expiry, last report; written with each batch. Partitioned by UTC day (rollup_hourly_pYYYYMMDD, dropped when the day''s hours expire); hours of days without a partition in rollup_hourly_default.';
COMMENT ON TABLE rollup_hourly_default IS
    'The hourly rollups of days without a partition of their own: written late before the hourly horizon (deleted by the next upkeep), or out of the upkeep''s reach (a wrong clock).';

-- Whoever was granted the table (the consumer, through deploy/postgres/grants.sql) keeps its
-- grants: the partitions are read and written through it, so they need none of their own.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.grantee, a.privilege_type, a.is_grantable
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'rollup_hourly_v17'::regclass AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON rollup_hourly TO %s%s', g.privilege_type,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                       CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- The partitions of the days from `first` to `last` that have none, and of at most one day whose
-- hours wait in rollup_hourly_default: the newest from 31 days before `first` (or from `keep_from`,
-- the first day of the hourly retention, when later) to `last`, its rows moved into it. As
-- websentry_create_partitions (migration 6) for the reports: the consumer calls it again, one
-- transaction per call, until it creates nothing or 8 days in a turn; hours further away stay in
-- the default partition.
CREATE FUNCTION websentry_create_hourly_partitions(first date, last date, keep_from date) RETURNS SETOF date
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d date;
    late date;
    part text;
    lo timestamptz;
    hi timestamptz;
    late_from date := greatest(keep_from, first - 31);
BEGIN
    PERFORM pg_advisory_xact_lock(8603390910923699314);  -- the migration lock ("websentr")
    SELECT (max(hour) AT TIME ZONE 'UTC')::date INTO late FROM rollup_hourly_default
    WHERE hour >= late_from::timestamp AT TIME ZONE 'UTC'
      AND hour < (last + 1)::timestamp AT TIME ZONE 'UTC';
    FOR d IN
        SELECT g::date FROM generate_series(first, last, interval '1 day') g
        UNION
        SELECT late WHERE late IS NOT NULL
        ORDER BY 1
    LOOP
        part := format('rollup_hourly_p%s', to_char(d, 'YYYYMMDD'));
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        -- CREATE TABLE + ATTACH rather than CREATE … PARTITION OF, which would lock rollup_hourly
        -- against every batch and reader; the CHECK proves the bounds to ATTACH, which then does
        -- not scan the new table (it still scans the default partition, kept small).
        EXECUTE format('CREATE TABLE %I (LIKE rollup_hourly INCLUDING DEFAULTS INCLUDING STORAGE)', part);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT day CHECK (hour >= %L AND hour < %L)', part, lo, hi);
        LOCK TABLE rollup_hourly_default IN EXCLUSIVE MODE;
        EXECUTE format('WITH moved AS (DELETE FROM rollup_hourly_default WHERE hour >= %L AND hour < %L RETURNING *)
                        INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE rollup_hourly ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT day', part);
        RETURN NEXT d;
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION websentry_create_hourly_partitions(date, date, date) FROM PUBLIC;
COMMENT ON FUNCTION websentry_create_hourly_partitions(date, date, date) IS
    'Upkeep: creates the hourly rollups'' partition of each day from first to last that has none, and of at most one day with hours waiting in rollup_hourly_default (moved into it): the newest from 31 days before first (or from keep_from, when later) to last. Call it again, in a new transaction, for the next such day. Returns the days created.';

-- Whoever may create the reports' partitions (the consumer, through grants.sql) may create these:
-- the upkeep calls both, and an upgrade needs no new grant.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.grantee
        FROM pg_proc p, aclexplode(p.proacl) a
        WHERE p.oid = 'websentry_create_partitions(date, date, date)'::regprocedure
          AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION websentry_create_hourly_partitions(date, date, date) TO %s',
                       g.grantee::regrole::text);
    END LOOP;
END $$;

-- The days of the hourly rollups' partitions, oldest first.
CREATE FUNCTION websentry_hourly_days() RETURNS SETOF date
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT to_date(substr(c.relname, 16), 'YYYYMMDD')
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'rollup_hourly'::regclass AND c.relname ~ '^rollup_hourly_p[0-9]{8}$'
    ORDER BY 1
$$;
REVOKE EXECUTE ON FUNCTION websentry_hourly_days() FROM PUBLIC;
COMMENT ON FUNCTION websentry_hourly_days() IS
    'The UTC days that have a partition of the hourly rollups (rollup_hourly_pYYYYMMDD), oldest first.';

-- The conversion: the partitions of the days that hold hours, from the hourly horizon (at most 31
-- days back: older hours are few unless the hourly retention is longer, and go to the default
-- partition, where they expire by DELETE) to today and the two days after; then every row.
DO $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    horizon date := (SELECT (r.kept_from AT TIME ZONE 'UTC')::date FROM rollup_retention r WHERE r.level = 'hour');
    d date;
BEGIN
    FOR d IN SELECT g::date FROM generate_series(greatest(horizon, today - 31), today - 1, interval '1 day') g LOOP
        IF EXISTS (SELECT 1 FROM rollup_hourly_v17
                   WHERE hour >= d::timestamp AT TIME ZONE 'UTC' AND hour < (d + 1)::timestamp AT TIME ZONE 'UTC') THEN
            PERFORM websentry_create_hourly_partitions(d, d, d);
        END IF;
    END LOOP;
    PERFORM websentry_create_hourly_partitions(today, today + 2, today);
END $$;
INSERT INTO rollup_hourly SELECT * FROM rollup_hourly_v17;
DROP TABLE rollup_hourly_v17;
ANALYZE rollup_hourly;

-- Expiry a UTC day at a time, as in version 12: the horizon moves past the day, the default
-- partition's hours before the next day are deleted, and the day's partition is counted and left
-- to websentry_drop_expired_hours (no answer reads it any more). Returns that day and the rows
-- expired; once the horizon is at `before`, a row with no day and the rows written late before
-- the horizon (into the default partition), deleted, when there were any, else no row.
CREATE OR REPLACE FUNCTION websentry_expire_hours(before date) RETURNS TABLE (kept_from date, deleted bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    kept date := (SELECT (r.kept_from AT TIME ZONE 'UTC')::date FROM rollup_retention r WHERE r.level = 'hour');
    next date;
    n bigint;
    m bigint;
    d date;
    part text;
    -- The horizon before this call: partitions before it were counted when it passed them.
    was date := kept;
BEGIN
    IF kept >= before THEN
        DELETE FROM rollup_hourly_default WHERE hour < kept::timestamp AT TIME ZONE 'UTC';
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            kept_from := NULL;
            deleted := n;
            RETURN NEXT;
        END IF;
        RETURN;
    END IF;
    IF kept IS NULL THEN
        -- The first expiry: the oldest partition, or the oldest hour waiting in the default one.
        kept := least((SELECT min(h) FROM websentry_hourly_days() h WHERE h < before),
                      (SELECT (min(hour) AT TIME ZONE 'UTC')::date FROM rollup_hourly_default
                       WHERE hour < before::timestamp AT TIME ZONE 'UTC'));
    END IF;
    -- A day without rows (the monitor was stopped) is skipped to the next day that has a daily row
    -- (each batch writes both levels), so that a gap does not cost a turn per day. Expiring every
    -- hour before `next` keeps this right even where a day's hours had no daily row.
    IF kept < before AND NOT EXISTS (SELECT 1 FROM rollup_daily WHERE day = kept) THEN
        kept := coalesce((SELECT min(day) FROM rollup_daily WHERE day > kept AND day < before), before);
    END IF;
    next := least(coalesce(kept + 1, before), before);
    DELETE FROM rollup_hourly_default WHERE hour < next::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS n = ROW_COUNT;
    -- The partitions the horizon now passes: counted, and left for websentry_drop_expired_hours.
    FOR d IN SELECT h FROM websentry_hourly_days() h WHERE h >= coalesce(was, h) AND h < next LOOP
        part := format('rollup_hourly_p%s', to_char(d, 'YYYYMMDD'));
        EXECUTE format('SELECT count(*) FROM %I', part) INTO m;
        n := n + m;
    END LOOP;
    INSERT INTO rollup_retention AS r (level, kept_from) VALUES ('hour', next::timestamp AT TIME ZONE 'UTC')
        ON CONFLICT (level) DO UPDATE SET kept_from = greatest(r.kept_from, excluded.kept_from);
    kept_from := next;
    deleted := n;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION websentry_expire_hours(date) IS
    'Upkeep, retention: moves the hourly horizon (rollup_retention) past the oldest UTC day kept before `before`, deletes the default partition''s hours before it and counts the day''s partition (dropped later by websentry_drop_expired_hours); returns the new horizon and the rows expired; once the horizon is at `before`, deletes hours written late before it and returns their count with no horizon, or no row when there were none.';

-- The partitions of the days before the hourly horizon, dropped: called by the upkeep at the start
-- of a turn, so that a day's partition goes at least a turn (an hour) after the horizon passed it,
-- and no reader can still hold the horizon from before. Dropping a partition locks rollup_hourly
-- whole for a moment: it waits for the batches and readers under way (the caller's lock_timeout),
-- as dropping a day of reports does, and all of a turn's days go under one lock, held only for
-- the drops. Returns the days dropped.
CREATE FUNCTION websentry_drop_expired_hours() RETURNS SETOF date
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    kept date := (SELECT (r.kept_from AT TIME ZONE 'UTC')::date FROM rollup_retention r WHERE r.level = 'hour');
    d date;
BEGIN
    FOR d IN SELECT h FROM websentry_hourly_days() h WHERE h < kept LOOP
        EXECUTE format('DROP TABLE %I', format('rollup_hourly_p%s', to_char(d, 'YYYYMMDD')));
        RETURN NEXT d;
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION websentry_drop_expired_hours() FROM PUBLIC;
COMMENT ON FUNCTION websentry_drop_expired_hours() IS
    'Upkeep, retention: drops the hourly rollups'' partitions of the days before the hourly horizon (expired by websentry_expire_hours at an earlier turn); returns the days dropped.';

-- The statistics of rollup_hourly as a whole, which the planner uses for the queries over it and
-- autovacuum never takes for a partitioned table (only for each partition). Called by the upkeep
-- after a turn dropped partitions (about once a day), in a transaction of its own: ANALYZE of the
-- parent samples every partition and analyzes each again (about 4 s for 8 days of 10,000 sites),
-- which must not run while the drop holds rollup_hourly. It takes only the locks that VACUUM
-- takes, so batches and readers go on.
CREATE FUNCTION websentry_analyze_hourly() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    ANALYZE rollup_hourly;
END $$;
REVOKE EXECUTE ON FUNCTION websentry_analyze_hourly() FROM PUBLIC;
COMMENT ON FUNCTION websentry_analyze_hourly() IS
    'Upkeep: ANALYZE rollup_hourly (the partitioned table''s own statistics, which autovacuum never takes), after the upkeep dropped expired partitions.';

-- Whoever may expire the hours (the consumer, through grants.sql) may drop their partitions and
-- analyze the table after.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.grantee
        FROM pg_proc p, aclexplode(p.proacl) a
        WHERE p.oid = 'websentry_expire_hours(date)'::regprocedure
          AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION websentry_drop_expired_hours(), websentry_analyze_hourly() TO %s',
                       g.grantee::regrole::text);
    END LOOP;
END $$;
