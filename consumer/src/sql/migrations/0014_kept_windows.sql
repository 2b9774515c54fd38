-- Websentry archive, schema version 14: the answers of the fixed windows kept ahead. The status
-- page and the per-site metrics ask every site for the last 24 hours, 7, 30 and 90 days (and people
-- for 365); each answer read a rollup row per site and day, or hour, of the window: 0.7–2 s for
-- 10,000 sites. The consumer's upkeep now sums, per (url, probe), the buckets of each such window
-- that are over (all but its last two hours) before the hour the window is asked in, and a reader
-- adds the two or three rows per site that are still being written. The answer is the one the
-- rollups give, exactly: a batch that writes into the part already summed makes that kept answer
-- void (it is read from the rollups again until the upkeep sums it anew).
--
-- How a kept answer stays exact, without holding batches up while it is summed:
-- - each batch takes the lock KEPT_WINDOWS_LOCK shared, from the time it notes its writes until it
--   commits, and notes in rollup_writes, with an increasing id, the hours it wrote when they reach
--   before the current hour (websentry_note_rollup_writes);
-- - the upkeep takes that lock exclusively (every batch that noted writes has committed), starts a
--   REPEATABLE READ transaction, reads the last id noted (`seen`: its snapshot holds every write up to
--   it), releases the lock and sums;
-- - a kept answer counts only while no write noted after `seen` reaches into what it summed.
-- Nothing is converted: the first upkeep of this version sums the windows.

CREATE TABLE rollup_writes (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The first and last hour the batch wrote rollups for (its daily rows are of their days).
    earliest timestamptz NOT NULL,
    latest   timestamptz NOT NULL
);
COMMENT ON TABLE rollup_writes IS
    'Batches that wrote rollups of hours before the hour they were written in (late reports, and reports of the hour just over), with an increasing id: a kept window answer summed before such a write into its part is void.';

CREATE TABLE rollup_windows (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The window in whole hours and the whole UTC days inside it, as websentry_summary_bounds gives
    -- them for a window asked during the hour before `hi`.
    lo       timestamptz NOT NULL,
    hi       timestamptz NOT NULL,
    day_lo   timestamptz NOT NULL,
    day_hi   timestamptz NOT NULL,
    -- The sums hold the window's buckets that end at or before it; readers add the ones after it.
    cutoff   timestamptz NOT NULL,
    -- The last rollup_writes id the sums' snapshot holds.
    seen     bigint      NOT NULL,
    built_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    built_ms double precision NOT NULL,
    UNIQUE (lo, hi, day_lo, day_hi)
);
COMMENT ON TABLE rollup_windows IS
    'Kept window answers (the upkeep''s): a window''s bounds, the time up to which its buckets are summed in rollup_window_sums, and the last rollup write its sums hold.';

-- Per (url, probe): the sums of its buckets in the window up to the cutoff, each bucket's measured
-- time capped at the bucket's length first, as site_summary sums them. Integers as in the rollups:
-- a sum that does not fit is not kept (that window is then read from the rollups).
DO $$
BEGIN
    EXECUTE format('CREATE TABLE rollup_window_sums (
                        window_id       bigint           NOT NULL REFERENCES rollup_windows ON DELETE CASCADE,
                        url             text             NOT NULL,
                        probe           text             NOT NULL,
                        probes          integer          NOT NULL,
                        successes       integer          NOT NULL,
                        last_checked_at timestamptz      NOT NULL,
                        inconclusive    integer          NOT NULL,
                        measured_us     double precision,
                        down_us         double precision, %s)',
                   (SELECT string_agg(format('b%s integer', k), ', ' ORDER BY k) FROM generate_series(0, 127) k));
END $$;
CREATE INDEX rollup_window_sums_window ON rollup_window_sums (window_id);
COMMENT ON TABLE rollup_window_sums IS
    'Kept window answers: per window (rollup_windows) and (url, probe), the sums of its rollup buckets up to the window''s cutoff.';

-- A batch's note, in its transaction: the lock shared until it commits, and its hours when they
-- reach before the current hour (by the database's clock, which the upkeep reads too). Writes of
-- the running hour only are not noted: no kept answer sums an hour before it is over.
CREATE FUNCTION websentry_note_rollup_writes(earliest timestamptz, latest timestamptz) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(8603390910923699317);
    IF earliest < date_trunc('hour', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        INSERT INTO rollup_writes (earliest, latest) VALUES (earliest, latest);
    END IF;
END $$;
COMMENT ON FUNCTION websentry_note_rollup_writes(timestamptz, timestamptz) IS
    'Each batch, before it commits: takes the kept-windows lock shared and notes its rollup hours in rollup_writes when they reach before the current hour.';

-- Both levels before a day, as before, and the kept answers of windows that reach before it (their
-- sums hold rows deleted now).
CREATE OR REPLACE FUNCTION websentry_expire_rollups(before date) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    hourly bigint;
    daily bigint;
    at timestamptz := before::timestamp AT TIME ZONE 'UTC';
BEGIN
    DELETE FROM rollup_hourly WHERE hour < at;
    GET DIAGNOSTICS hourly = ROW_COUNT;
    DELETE FROM rollup_daily WHERE day < before;
    GET DIAGNOSTICS daily = ROW_COUNT;
    IF hourly + daily > 0 THEN
        DELETE FROM rollup_windows WHERE lo < at;
    END IF;
    INSERT INTO rollup_retention AS r (level, kept_from) VALUES ('hour', at), ('day', at)
        ON CONFLICT (level) DO UPDATE SET kept_from = greatest(r.kept_from, excluded.kept_from);
    RETURN hourly + daily;
END $$;

REVOKE EXECUTE ON FUNCTION websentry_note_rollup_writes(timestamptz, timestamptz) FROM PUBLIC;
