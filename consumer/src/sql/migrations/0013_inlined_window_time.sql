-- Websentry archive, schema version 13: the window's measured time computed inline. A function with
-- OUT parameters called in FROM is run once per row, never inlined: 65 ms of every 10,000 sites'
-- site_summary answer. websentry_window_measured returns a table now (one row), which PostgreSQL
-- inlines into the calling query. CREATE OR REPLACE cannot change what a function returns, so the
-- old one goes here and interface.sql creates the new one (no reader is granted the helper; the
-- answers that call it are). No table changes. IF EXISTS: a new database runs every migration before
-- the interface is first applied.
DROP FUNCTION IF EXISTS websentry_window_measured(timestamptz, timestamptz, double precision, double precision, integer);
