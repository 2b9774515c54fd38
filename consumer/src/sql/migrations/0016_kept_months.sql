-- Websentry archive, schema version 16: calendar months kept like windows. The upkeep's turn at the
-- kept answers (websentry_keep_windows, in the SQL interface) now also sums each closed calendar
-- month of the last 13 into rollup_windows and rollup_window_sums, with its end as its cutoff, and
-- site_summary reads a window's whole months from them: a year ending at any time reads about
-- twelve rows per site and the days and hours at its edges, not a row per day.
--
-- No table changes. The helper that reads a window's parts takes a second range of days and
-- several kept answers now: its old form is dropped here, and the interface creates the new one.

DROP FUNCTION IF EXISTS websentry_window_parts(date, date, timestamptz, timestamptz, timestamptz, timestamptz, date,
                                               timestamptz, bigint);

-- A (url, probe) whose only rows in what a kept answer sums carry measured time and no probe (the
-- slot of a report made before, running on into them) has no last report there: its sums have
-- none either, as site_summary's answer from the rollups has none. Before, such a sum failed the
-- whole turn (a site probed every few hours, or one stopped just before a month ended).
ALTER TABLE rollup_window_sums ALTER COLUMN last_checked_at DROP NOT NULL;
