-- Websentry archive, schema version 15: one index for the daily rollup's key and for site_days.
-- Migration 10 added rollup_daily_days, on (url, probe, day) like the primary key, holding what
-- site_days reads (INCLUDE). The two indexes had the same keys in the same order: the primary key
-- took 113 of a daily row's 599 bytes (0.41 GB of a year of 10,000 sites) and each daily row a
-- batch merges wrote both (no update of a row is HOT: the included columns change every time).
-- The primary key is now that one index, unique, with the columns site_days reads included:
-- upserts (ON CONFLICT (url, probe, day)) and one site's reads use it as they used the old key,
-- site_days as it used rollup_daily_days.
--
-- Builds one index of rollup_daily, in the migration's transaction: writes to the table wait
-- meanwhile, and reads too while the old key is dropped (5.4 s for the 3.66 M daily rows of a year
-- of 10,000 sites on our 2-core machine). The old index is dropped only if it is there: an operator
-- may have dropped it already (docs/benchmarks.md describes trying that).

CREATE UNIQUE INDEX rollup_daily_key ON rollup_daily (url, probe, day) INCLUDE (probes, successes, covered_us, down_us);
ALTER TABLE rollup_daily DROP CONSTRAINT rollup_daily_pkey;
DROP INDEX IF EXISTS rollup_daily_days;
-- Renames rollup_daily_key to rollup_daily_pkey.
ALTER TABLE rollup_daily ADD CONSTRAINT rollup_daily_pkey PRIMARY KEY USING INDEX rollup_daily_key;
