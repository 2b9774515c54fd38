-- Websentry archive, schema version 17: uptime without the latency. The helper that answers
-- site_summary for all sites takes a fourth parameter, whether to sum the latency histogram and
-- walk its percentiles: site_uptime and site_uptime_pooled (SQL interface 15) answer without them.
-- CREATE OR REPLACE cannot change a function's parameters, so the old helper goes here and
-- interface.sql creates the new one (no reader is granted the helper; the answers that call it
-- are). No table changes. IF EXISTS: a new database runs every migration before the interface is
-- first applied.
DROP FUNCTION IF EXISTS websentry_site_summary_all(timestamptz, timestamptz, boolean);
