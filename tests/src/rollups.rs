//! The rollups checked against the raw rows they count: the one invariant every archive test can
//! end with, whatever it did to the archive on the way.

use crate::TestDatabase;

/// Per (url, probe, hour): the raw reports' probes and successes beside the hourly rollup's, where
/// they differ (a side missing is NULL).
const HOURLY_MISMATCHES: &str = "
    WITH raw AS (
        SELECT url, probe, date_trunc('hour', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
               count(*) AS probes, count(*) FILTER (WHERE error_kind IS NULL) AS successes
        FROM reports GROUP BY 1, 2, 3
    )
    SELECT coalesce(r.url, h.url), coalesce(r.probe, h.probe), coalesce(r.hour, h.hour)::text,
           r.probes, h.probes::bigint, r.successes, h.successes::bigint
    FROM raw r FULL JOIN rollup_hourly h ON (h.url, h.probe, h.hour) = (r.url, r.probe, r.hour)
    WHERE r.probes IS DISTINCT FROM h.probes OR r.successes IS DISTINCT FROM h.successes
    ORDER BY 1, 2, 3";

/// Per (url, probe, UTC day): the sums of the hourly rollups beside the daily rollup's, where they
/// differ.
const DAILY_MISMATCHES: &str = "
    WITH hours AS (
        SELECT url, probe, (hour AT TIME ZONE 'UTC')::date AS day,
               sum(probes)::bigint AS probes, sum(successes)::bigint AS successes
        FROM rollup_hourly GROUP BY 1, 2, 3
    )
    SELECT coalesce(h.url, d.url), coalesce(h.probe, d.probe), coalesce(h.day, d.day)::text,
           h.probes, d.probes::bigint, h.successes, d.successes::bigint
    FROM hours h FULL JOIN rollup_daily d ON (d.url, d.probe, d.day) = (h.url, h.probe, h.day)
    WHERE h.probes IS DISTINCT FROM d.probes OR h.successes IS DISTINCT FROM d.successes
    ORDER BY 1, 2, 3";

impl TestDatabase {
    /// Asserts that `rollup_hourly` counts exactly the rows of `reports`, hour by hour, and that
    /// `rollup_daily` is the sum of its hours; the failure lists every mismatch.
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
                let counts: [Option<i64>; 4] = [row.get(3), row.get(4), row.get(5), row.get(6)];
                found.push(format!(
                    "\n  {rollup} {url} {probe:?} {at}: probes {:?} in {against}, {:?} in {rollup}; successes {:?} vs {:?}",
                    counts[0], counts[1], counts[2], counts[3]
                ));
            }
        }
        assert!(found.is_empty(), "{} rollup rows differ from what they count:{}", found.len(), found.concat());
    }
}
