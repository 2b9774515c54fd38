//! Answers pooled across locations (`site_summary_pooled`, `site_timeline_pooled`): each location's
//! time counts once, over the locations with a row in the window; with one location the pooled row
//! is the location's row; summing the pooled buckets gives the pooled window.

use time::{Duration, OffsetDateTime};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{sample_report, Stack, TestDatabase};

/// A whole hour two days ago: well inside the raw retention, and in the past whatever the clock.
fn past_hour() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc() - Duration::days(2);
    now.replace_time(time::Time::from_hms(now.hour(), 0, 0).expect("a whole hour"))
}

fn report(url: &str, probe: &str, at: OffsetDateTime, response_ms: f64, down: bool) -> Report {
    let error = down.then(|| ProbeError { kind: ErrorKind::Connect, message: "refused".into() });
    Report { checked_at: at, interval_s: Some(300), error, probe: probe.into(), response_ms, ..sample_report(url) }
}

fn archive(stack: &Stack, db: &TestDatabase, reports: &[Report]) {
    let topic = stack.create_topic(1);
    let records = reports.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
    stack.produce_raw(&topic, 0, records);
    stack.consumer(&topic, db).success();
    db.assert_rollups_match_raw();
}

/// A row's columns from `uptime` on, as text, for comparing whole rows.
const FIGURES: &str = "probes::text, successes::text, uptime::text, p50_ms::text, p95_ms::text, p99_ms::text, \
                       last_checked_at::text, inconclusive::text, coverage::text, measured_s::text, \
                       unknown_s::text, down_s::text, measured_uptime::text";

fn close(found: f64, expected: f64) -> bool {
    (found - expected).abs() <= 1e-9 * expected.abs().max(1.0)
}

/// Six whole hours: `eu` measures all of them, up, at 10 ms; `us` measures the first three, down
/// during the second, up at 100 ms otherwise, then stops. `solo.test` is measured from `eu` only.
fn six_hours(stack: &Stack, db: &TestDatabase, start: OffsetDateTime) {
    let mut reports = Vec::new();
    for minute in (0..360).step_by(5) {
        let at = start + Duration::minutes(minute);
        reports.push(report("http://pooled.test/", "eu", at, 10.0, false));
        reports.push(report(
            "http://solo.test/",
            "eu",
            at + Duration::seconds(7),
            20.0 + f64::from(minute as i32 % 13),
            false,
        ));
        if minute < 180 {
            reports.push(report("http://pooled.test/", "us", at, 100.0, (60..120).contains(&minute)));
        }
    }
    archive(stack, db, &reports);
}

#[test]
fn two_locations_pool_by_location_seconds_and_the_percentiles_merge_their_probes() {
    let stack = Stack::get();
    let db = stack.create_database();
    let start = past_hour() - Duration::hours(6);
    six_hours(stack, &db, start);
    let end = start + Duration::hours(6);
    let mut client = db.client();

    // Per location: eu all six hours up, us three hours of which one down.
    let per_location: Vec<(String, f64, f64, f64)> = client
        .query(
            "SELECT probe, coverage, measured_s, down_s FROM site_summary($1, $2, 'http://pooled.test/') ORDER BY probe",
            &[&start, &end],
        )
        .expect("per location")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    assert_eq!(
        per_location,
        [("eu".into(), 1.0, 21_600.0, 0.0), ("us".into(), 0.5, 10_800.0, 3600.0)],
        "each location's own answer"
    );

    // Pooled, through the one-site helper and the all-sites helper: the same row.
    for (path, sql) in [
        ("one site", "SELECT * FROM site_summary_pooled($1, $2, 'http://pooled.test/')"),
        ("all sites", "SELECT * FROM site_summary_pooled($1, $2) WHERE url = 'http://pooled.test/'"),
    ] {
        let row = client.query_one(sql, &[&start, &end]).unwrap_or_else(|e| panic!("{path}: {e}"));
        let locations: i32 = row.get("locations");
        let (probes, successes): (i64, i64) = (row.get("probes"), row.get("successes"));
        let (coverage, measured, unknown, down, uptime): (f64, f64, f64, f64, f64) = (
            row.get("coverage"),
            row.get("measured_s"),
            row.get("unknown_s"),
            row.get("down_s"),
            row.get("measured_uptime"),
        );
        assert_eq!(locations, 2, "{path}");
        assert_eq!((probes, successes), (72 + 36, 72 + 24), "{path}: the locations' probes summed");
        assert!(close(coverage, 0.75), "{path}: the mean of 1 and 0.5, not 1 (eu measured it all): {coverage}");
        assert!(
            close(measured, 32_400.0) && close(unknown, 10_800.0),
            "{path}: {measured} measured, {unknown} unknown"
        );
        assert!(close(down, 3600.0), "{path}: {down} down");
        assert!(close(uptime, 1.0 - 3600.0 / 32_400.0), "{path}: weighted by measured time: {uptime}");
        // The merged histogram: 72 successes at 10 ms and 24 at 100 ms. p50 is a 10 ms probe's
        // bucket, p95 (rank 92 of 96) a 100 ms one's; each within the histogram's 4.88 %.
        let (p50, p95): (f64, f64) = (row.get("p50_ms"), row.get("p95_ms"));
        assert!((p50 / 10.0 - 1.0).abs() <= 0.0488, "{path}: p50 {p50}");
        assert!((p95 / 100.0 - 1.0).abs() <= 0.0488, "{path}: p95 {p95}");
    }

    // One location: the pooled row is its row, column for column, through either helper.
    for filter in ["'http://solo.test/'", "NULL"] {
        let mut solo = |function: &str| -> Vec<Option<String>> {
            let row = client
                .query_one(
                    &format!("SELECT {FIGURES} FROM {function}($1, $2, {filter}) WHERE url = 'http://solo.test/'"),
                    &[&start, &end],
                )
                .expect(function);
            (0..13).map(|i| row.get(i)).collect()
        };
        assert_eq!(solo("site_summary_pooled"), solo("site_summary"), "url {filter}");
    }
}

#[test]
fn the_pooled_timeline_counts_a_location_that_stopped_as_unknown_and_sums_to_the_pooled_window() {
    let stack = Stack::get();
    let db = stack.create_database();
    let start = past_hour() - Duration::hours(6);
    six_hours(stack, &db, start);
    let end = start + Duration::hours(6);
    let mut client = db.client();

    let hours: Vec<(i32, i64, f64, f64, f64)> = client
        .query(
            "SELECT locations, probes, coverage, unknown_s, down_s
             FROM site_timeline_pooled($1, $2, 'hour', 'http://pooled.test/') ORDER BY bucket_start",
            &[&start, &end],
        )
        .expect("the pooled timeline")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect();
    assert_eq!(hours.len(), 6);
    for (hour, &(locations, probes, coverage, unknown, down)) in hours.iter().enumerate() {
        assert_eq!(locations, 2, "hour {hour}: both locations count in every bucket");
        match hour {
            0 | 2 => assert_eq!((probes, coverage, unknown, down), (24, 1.0, 0.0, 0.0), "hour {hour}"),
            1 => assert_eq!((probes, coverage, unknown, down), (24, 1.0, 0.0, 3600.0), "hour {hour}: us down"),
            // us stopped: its hour is unknown, though eu measured the site throughout.
            _ => assert_eq!((probes, coverage, unknown, down), (12, 0.5, 3600.0, 0.0), "hour {hour}: us stopped"),
        }
    }

    // The buckets summed against the window, per site, for every site at once.
    let rows = client
        .query(
            "SELECT s.url, s.probes, t.probes, s.measured_s, t.measured_s, s.unknown_s, t.unknown_s, s.down_s, t.down_s
             FROM site_summary_pooled($1, $2) s
             JOIN (SELECT url, sum(probes)::bigint AS probes, sum(measured_s) AS measured_s,
                          sum(unknown_s) AS unknown_s, sum(down_s) AS down_s
                   FROM site_timeline_pooled($1, $2, 'hour') GROUP BY url) t USING (url)
             ORDER BY 1",
            &[&start, &end],
        )
        .expect("the window beside its buckets");
    assert_eq!(rows.len(), 2, "both sites");
    for row in &rows {
        let url: String = row.get(0);
        assert_eq!(row.get::<_, i64>(1), row.get::<_, i64>(2), "{url}: probes");
        for column in [3, 5, 7] {
            let (window, buckets): (f64, f64) = (row.get(column), row.get(column + 1));
            assert!(close(window, buckets), "{url} column {column}: window {window}, buckets {buckets}");
        }
    }
}

#[test]
fn a_window_after_a_location_stopped_pools_the_locations_still_measuring() {
    let stack = Stack::get();
    let db = stack.create_database();
    let start = past_hour() - Duration::hours(6);
    six_hours(stack, &db, start);
    let mut client = db.client();

    // The last three hours: us has no row there, so only eu counts (as site_summary leaves out a
    // site without a row in its window).
    let row = client
        .query_one(
            "SELECT locations, coverage, measured_uptime FROM site_summary_pooled($1, $2, 'http://pooled.test/')",
            &[&(start + Duration::hours(3)), &(start + Duration::hours(6))],
        )
        .expect("the last three hours");
    let (locations, coverage, uptime): (i32, f64, f64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((locations, coverage, uptime), (1, 1.0, 1.0));
    // No row anywhere in the window: no answer, not an answer of nothing measured.
    let none = client
        .query(
            "SELECT * FROM site_summary_pooled($1, $2, 'http://pooled.test/')",
            &[&(start - Duration::hours(10)), &(start - Duration::hours(8))],
        )
        .expect("a window before the first report");
    assert!(none.is_empty());
}
