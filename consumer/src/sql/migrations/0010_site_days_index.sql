-- Websentry archive, schema version 10: an index holding what site_days reads of the daily
-- rollup, in its order. The status page's overview reads every site's 90 days through site_days;
-- from the table, each of those rows is read whole (its latency histogram too) and sorted by site
-- (123 ms for 1,000 sites x 91 days); from this index, only the few columns it needs, already in
-- order (62 ms). Each daily rollup row written also writes this index.

CREATE INDEX rollup_daily_days ON rollup_daily (url, probe, day) INCLUDE (probes, successes, covered_us, down_us);
