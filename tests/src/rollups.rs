//! The rollups checked against the raw rows they count: the one invariant every archive test can
//! end with, whatever it did to the archive on the way.

use crate::TestDatabase;

/// Per (url, probe, hour): what the raw reports give beside the hourly rollup, where they differ (a
/// side missing is NULL). Counts come from the reports that started in the hour; measured and down
/// time from every slot that reaches it (`[checked_at, checked_at + interval_s)` of a report that
/// states its cadence and is not inconclusive), in microseconds.
const HOURLY_MISMATCHES: &str = "
    WITH counted AS (
        SELECT url, probe, date_trunc('hour', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
               count(*) AS probes, count(*) FILTER (WHERE error_kind IS NULL) AS successes,
               count(*) FILTER (WHERE inconclusive) AS inconclusive
        FROM reports GROUP BY 1, 2, 3
    ), pieces AS (
        SELECT url, probe, h AS hour, error_kind IS NOT NULL AS down,
               (extract(epoch FROM least(checked_at + make_interval(secs => interval_s), h + interval '1 hour')
                                   - greatest(checked_at, h)) * 1000000)::bigint AS us
        FROM reports,
             generate_series(date_trunc('hour', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                             checked_at + make_interval(secs => interval_s) - interval '1 microsecond',
                             interval '1 hour') h
        WHERE interval_s IS NOT NULL AND NOT inconclusive
    ), measured AS (
        SELECT url, probe, hour, sum(us)::bigint AS covered, coalesce(sum(us) FILTER (WHERE down), 0)::bigint AS down
        FROM pieces GROUP BY 1, 2, 3
    ), raw AS (
        SELECT coalesce(c.url, m.url) AS url, coalesce(c.probe, m.probe) AS probe, coalesce(c.hour, m.hour) AS hour,
               coalesce(c.probes, 0) AS probes, coalesce(c.successes, 0) AS successes,
               coalesce(c.inconclusive, 0) AS inconclusive, m.covered, m.down
        FROM counted c FULL JOIN measured m ON (m.url, m.probe, m.hour) = (c.url, c.probe, c.hour)
    )
    SELECT coalesce(r.url, h.url), coalesce(r.probe, h.probe), coalesce(r.hour, h.hour)::text,
           ARRAY[r.probes, r.successes, r.inconclusive, r.covered, r.down],
           ARRAY[h.probes, h.successes, h.inconclusive, h.covered_us, h.down_us]::bigint[]
    FROM raw r FULL JOIN rollup_hourly h ON (h.url, h.probe, h.hour) = (r.url, r.probe, r.hour)
    WHERE (r.probes, r.successes, r.inconclusive, r.covered, r.down)
          IS DISTINCT FROM (h.probes, h.successes, h.inconclusive, h.covered_us, h.down_us)
    ORDER BY 1, 2, 3";

/// Per (url, probe, UTC day): the sums of the hourly rollups beside the daily rollup's, where they
/// differ.
const DAILY_MISMATCHES: &str = "
    WITH hours AS (
        SELECT url, probe, (hour AT TIME ZONE 'UTC')::date AS day,
               sum(probes)::bigint AS probes, sum(successes)::bigint AS successes,
               sum(inconclusive)::bigint AS inconclusive, sum(covered_us)::bigint AS covered,
               sum(down_us)::bigint AS down
        FROM rollup_hourly GROUP BY 1, 2, 3
    )
    SELECT coalesce(h.url, d.url), coalesce(h.probe, d.probe), coalesce(h.day, d.day)::text,
           ARRAY[h.probes, h.successes, h.inconclusive, h.covered, h.down],
           ARRAY[d.probes, d.successes, d.inconclusive, d.covered_us, d.down_us]::bigint[]
    FROM hours h FULL JOIN rollup_daily d ON (d.url, d.probe, d.day) = (h.url, h.probe, h.day)
    WHERE (h.probes, h.successes, h.inconclusive, h.covered, h.down)
          IS DISTINCT FROM (d.probes, d.successes, d.inconclusive, d.covered_us, d.down_us)
    ORDER BY 1, 2, 3";

impl TestDatabase {
    /// Asserts that `rollup_hourly` counts exactly the rows of `reports`, hour by hour (probes,
    /// successes, inconclusive probes, measured and down time), and that `rollup_daily` is the sum
    /// of its hours; the failure lists every mismatch.
    ///
    /// Only meaningful while every report is within the raw retention: a report past it is counted
    /// in the rollups and has no raw row, by design.
    ///
    /// # Panics
    /// On a mismatch, or when a query fails.
    pub fn assert_rollups_match_raw(&self) {
        let mut client = self.client();
        let mut found = Vec::new();
        for (rollup, sql, against) in
            [("rollup_hourly", HOURLY_MISMATCHES, "raw rows"), ("rollup_daily", DAILY_MISMATCHES, "rollup_hourly")]
        {
            for row in client.query(sql, &[]).unwrap_or_else(|err| panic!("comparing {rollup}: {err}")) {
                let (url, probe, at): (String, String, String) = (row.get(0), row.get(1), row.get(2));
                let (expected, found_in): (Vec<Option<i64>>, Vec<Option<i64>>) = (row.get(3), row.get(4));
                found.push(format!(
                    "\n  {rollup} {url} {probe:?} {at}: [probes, successes, inconclusive, covered_us, down_us] \
                     {expected:?} in {against}, {found_in:?} in {rollup}"
                ));
            }
        }
        assert!(found.is_empty(), "{} rollup rows differ from what they count:{}", found.len(), found.concat());
    }
}
