-- Websentry archive, schema version 12: hourly rollups kept for less time than daily ones. The
-- hourly rows are 96 % of the rollups' bytes (a year of 10,000 sites: 87.6 M hourly rows against
-- 3.65 M daily ones), and what they add to the daily rows is the hours inside a day: a window's
-- edge hours and hourly charts, wanted for recent days. The consumer now expires them by a
-- retention of their own (WEBSENTRY_ROLLUP_HOURLY_RETENTION_DAYS), a day at a time.
--
-- Where hourly rows are gone, the archive must not answer as if those hours had not been
-- measured: `rollup_retention` records, per level, the time from which its rows are all kept.
-- The interface reads it: a window whose edge falls in a day whose hours are gone is taken in whole
-- days there (from the daily rows, which still hold those hours), and an hourly series starts at
-- the horizon rather than showing expired hours as unmeasured.
--
-- Nothing is deleted here: an existing archive keeps its hourly rows until the consumer's upkeep
-- expires them, a few days per turn, each day in a transaction that also moves the horizon.

CREATE TABLE rollup_retention (
    level     text        PRIMARY KEY CHECK (level IN ('hour', 'day')),
    -- Every row of the level from this time on is kept; rows before it were expired (a late report
    -- may write one there again, which readers ignore and the next upkeep deletes).
    kept_from timestamptz NOT NULL
);
COMMENT ON TABLE rollup_retention IS
    'Per rollup level (hour, day): the time from which its rows are all kept; before it, retention expired them. No row: none was expired yet.';

-- The hourly rollups expire a UTC day at a time, oldest first, each day in its own transaction with
-- the horizon moved in it, so that readers never take a deleted hour for a kept one and a long
-- backlog (an archive that kept hours as long as days) is trimmed a few days per turn rather than in
-- one transaction of billions of bytes. Deletes the hours before the next day after the horizon
-- (with any row written late before it) and moves the horizon there; returns that day and the rows
-- deleted; once the horizon is at `before`, a row with no day and the rows written late before the
-- horizon (a late report), deleted, when there were any, else no row.
CREATE FUNCTION websentry_expire_hours(before date) RETURNS TABLE (kept_from date, deleted bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    kept date := (SELECT (r.kept_from AT TIME ZONE 'UTC')::date FROM rollup_retention r WHERE r.level = 'hour');
    next date;
    n bigint;
BEGIN
    IF kept >= before THEN
        DELETE FROM rollup_hourly WHERE hour < kept::timestamp AT TIME ZONE 'UTC';
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            kept_from := NULL;
            deleted := n;
            RETURN NEXT;
        END IF;
        RETURN;
    END IF;
    IF kept IS NULL THEN
        -- The first expiry: one read of the table for its oldest hour.
        kept := (SELECT (min(hour) AT TIME ZONE 'UTC')::date FROM rollup_hourly WHERE hour < before::timestamp AT TIME ZONE 'UTC');
    END IF;
    -- A day without rows (the monitor was stopped) is skipped to the next day that has a daily row
    -- (each batch writes both levels), so that a gap does not cost a turn per day. Deleting every
    -- hour before `next` keeps this right even where a day's hours had no daily row.
    IF kept < before AND NOT EXISTS (SELECT 1 FROM rollup_daily WHERE day = kept) THEN
        kept := coalesce((SELECT min(day) FROM rollup_daily WHERE day > kept AND day < before), before);
    END IF;
    next := least(coalesce(kept + 1, before), before);
    DELETE FROM rollup_hourly WHERE hour < next::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO rollup_retention AS r (level, kept_from) VALUES ('hour', next::timestamp AT TIME ZONE 'UTC')
        ON CONFLICT (level) DO UPDATE SET kept_from = greatest(r.kept_from, excluded.kept_from);
    kept_from := next;
    deleted := n;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION websentry_expire_hours(date) IS
    'Upkeep, retention: deletes the hourly rollups of the oldest UTC day kept before `before` and moves the hourly horizon (rollup_retention) past it; returns the new horizon and the rows deleted; once the horizon is at `before`, deletes hours written late before it and returns their count with no horizon, or no row when there were none.';

-- Both levels before a day, as before, now with their horizons recorded.
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
    INSERT INTO rollup_retention AS r (level, kept_from) VALUES ('hour', at), ('day', at)
        ON CONFLICT (level) DO UPDATE SET kept_from = greatest(r.kept_from, excluded.kept_from);
    RETURN hourly + daily;
END $$;

COMMENT ON FUNCTION websentry_expire_rollups(date) IS
    'Upkeep, retention: deletes the hourly and daily rollups before a day and records it as both levels'' horizon (rollup_retention); returns the rows deleted.';

REVOKE EXECUTE ON FUNCTION websentry_expire_hours(date) FROM PUBLIC;
