-- Websentry archive, schema version 7: measured time. A report may state its cadence (`interval_s`:
-- it stands for that much time from its `checked_at`) and that its failure was inconclusive (the
-- round's canaries failed too); the rollups keep, beside the counts, the microseconds each bucket
-- was measured and measured down. Rows written before this version stated nothing: their time is
-- unknown (NULL), never assumed.

ALTER TABLE reports
    ADD COLUMN interval_s   integer,
    ADD COLUMN inconclusive boolean NOT NULL DEFAULT false;

-- A slot that runs past its hour (or day) measures the next one too, which may have no report of
-- its own: such a row has no probe and no last report.
ALTER TABLE rollup_hourly
    ALTER COLUMN last_checked_at DROP NOT NULL,
    ADD COLUMN inconclusive integer NOT NULL DEFAULT 0,
    ADD COLUMN covered_us   bigint,
    ADD COLUMN down_us      bigint;
ALTER TABLE rollup_daily
    ALTER COLUMN last_checked_at DROP NOT NULL,
    ADD COLUMN inconclusive integer NOT NULL DEFAULT 0,
    ADD COLUMN covered_us   bigint,
    ADD COLUMN down_us      bigint;

-- site_summary returns the new figures: CREATE OR REPLACE cannot change what a function returns, so
-- it and its helpers go, and interface.sql creates them again (grants.sql gives them back). IF EXISTS:
-- a new database runs every migration before the interface is first applied.
DROP FUNCTION IF EXISTS site_summary(timestamptz, timestamptz, text);
DROP FUNCTION IF EXISTS websentry_site_summary_one(timestamptz, timestamptz, text);
DROP FUNCTION IF EXISTS websentry_site_summary_all(timestamptz, timestamptz);

COMMENT ON COLUMN reports.interval_s IS
    'The cadence the report stated, in seconds: it stands for [checked_at, checked_at + interval_s). NULL: not stated, its time unknown.';
COMMENT ON COLUMN reports.inconclusive IS
    'A failure while the round''s canaries failed too: the producer could not tell the site from its own network; counts as unknown time, not down.';
COMMENT ON COLUMN rollup_hourly.covered_us IS
    'Microseconds of the hour measured by the slots of reports that stated a cadence, summed (a reader caps it at the hour''s length); NULL while none reached the hour.';
COMMENT ON COLUMN rollup_hourly.down_us IS
    'Of covered_us, the microseconds measured by failed probes that were not inconclusive.';
COMMENT ON COLUMN rollup_hourly.inconclusive IS
    'Failed probes of the hour marked inconclusive (also counted in probes and the failures_* columns).';
COMMENT ON COLUMN rollup_daily.covered_us IS
    'As rollup_hourly.covered_us, for the UTC day: the sum of its hours.';
COMMENT ON COLUMN rollup_daily.down_us IS
    'As rollup_hourly.down_us, for the UTC day.';
COMMENT ON COLUMN rollup_daily.inconclusive IS
    'As rollup_hourly.inconclusive, for the UTC day.';
