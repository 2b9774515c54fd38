-- Websentry archive, schema version 11: answers pooled across locations. site_summary's helpers
-- answer per location or pooled (a new parameter, and the number of locations among what they
-- return), and the measured-time helper counts a window once per location. CREATE OR REPLACE
-- cannot change a function's parameters (it would add a second function beside the first), so the
-- old helpers go here and interface.sql creates the new ones, with site_summary_pooled and
-- site_timeline_pooled; grants.sql gives the readers those two. No table changes: pooling reads the
-- rollups the archive already keeps, so an existing archive answers pooled for its whole history.
-- IF EXISTS: a new database runs every migration before the interface is first applied.
DROP FUNCTION IF EXISTS websentry_site_summary_one(timestamptz, timestamptz, text);
DROP FUNCTION IF EXISTS websentry_site_summary_all(timestamptz, timestamptz);
DROP FUNCTION IF EXISTS websentry_window_measured(timestamptz, timestamptz, double precision, double precision);
