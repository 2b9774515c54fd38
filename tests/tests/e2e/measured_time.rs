//! Honest uptime: every answer says how much of its window was measured. Reports that state their
//! cadence stand for their slot; time nobody measured is unknown, never up or down; overlaps never
//! measure more than the whole window; reports without a cadence leave the time unknown (NULL).

use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{sample_report, Stack, TestDatabase};

/// What site_summary says of one site over a window.
#[derive(Debug)]
struct Measured {
    probes: i64,
    uptime: Option<f64>,
    coverage: Option<f64>,
    measured_s: Option<f64>,
    unknown_s: Option<f64>,
    down_s: Option<f64>,
    measured_uptime: Option<f64>,
}

fn summary(db: &TestDatabase, from: OffsetDateTime, to: OffsetDateTime, url: &str) -> Measured {
    let row = db
        .client()
        .query_one(
            "SELECT probes, uptime, coverage, measured_s, unknown_s, down_s, measured_uptime
             FROM site_summary($1, $2, $3)",
            &[&from, &to, &url],
        )
        .expect("one site's summary");
    Measured {
        probes: row.get(0),
        uptime: row.get(1),
        coverage: row.get(2),
        measured_s: row.get(3),
        unknown_s: row.get(4),
        down_s: row.get(5),
        measured_uptime: row.get(6),
    }
}

/// A whole hour two days ago: well inside the raw retention, and in the past whatever the clock.
fn past_hour() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc() - Duration::days(2);
    now.replace_time(time::Time::from_hms(now.hour(), 0, 0).expect("a whole hour"))
}

fn report(url: &str, at: OffsetDateTime, interval_s: Option<u32>, down: bool) -> Report {
    let error = down.then(|| ProbeError { kind: ErrorKind::Connect, message: "refused".into() });
    Report { checked_at: at, interval_s, error, ..sample_report(url) }
}

fn archive(stack: &Stack, db: &TestDatabase, reports: &[Report]) {
    let topic = stack.create_topic(1);
    let records = reports.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
    stack.produce_raw(&topic, 0, records);
    stack.consumer(&topic, db).success();
    db.assert_rollups_match_raw();
}

fn close(found: Option<f64>, expected: f64, within: f64) -> bool {
    found.is_some_and(|found| (found - expected).abs() <= within)
}

#[test]
fn a_two_hour_gap_in_six_hours_is_unknown_time_and_uptime_counts_the_measured_time_only() {
    let stack = Stack::get();
    let db = stack.create_database();
    let url = "http://gap.test/";
    let start = past_hour();
    // Every 5 minutes for 2 hours, nothing for 2 hours, every 5 minutes for 2 hours; down from the
    // 4th hour's start for 30 minutes.
    let mut reports = Vec::new();
    for minute in (0..360).step_by(5) {
        if (120..240).contains(&minute) {
            continue;
        }
        reports.push(report(url, start + Duration::minutes(minute), Some(300), (240..270).contains(&minute)));
    }
    archive(stack, &db, &reports);

    let found = summary(&db, start, start + Duration::hours(6), url);

    let interval = 300.0;
    assert_eq!(found.probes, 48);
    assert!(close(found.coverage, 4.0 / 6.0, interval / 21_600.0), "coverage 4/6: {found:?}");
    assert!(close(found.unknown_s, 7200.0, interval), "two hours unknown: {found:?}");
    assert!(close(found.measured_s, 14_400.0, interval), "four hours measured: {found:?}");
    assert!(close(found.down_s, 1800.0, 1e-6), "half an hour down: {found:?}");
    assert!(close(found.measured_uptime, 1.0 - 1800.0 / 14_400.0, 1e-9), "uptime over the measured time: {found:?}");
    // The same window per hour: the gap's hours are all unknown, with no probe.
    let hours: Vec<(i64, f64, f64)> = db
        .client()
        .query(
            "SELECT probes, coverage, unknown_s FROM site_timeline($1, $2, 'hour', $3) ORDER BY bucket_start",
            &[&start, &(start + Duration::hours(6)), &url],
        )
        .expect("the timeline")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(hours.len(), 6);
    assert_eq!(&hours[2..4], [(0, 0.0, 3600.0), (0, 0.0, 3600.0)], "the gap");
    for (hour, (probes, coverage, _)) in hours.iter().enumerate().filter(|(hour, _)| !(2..4).contains(hour)) {
        assert_eq!((*probes, *coverage), (12, 1.0), "hour {hour} is measured whole");
    }
}

#[test]
fn a_producer_faster_than_it_says_or_two_under_one_name_measure_the_window_once() {
    let stack = Stack::get();
    let db = stack.create_database();
    let start = past_hour();
    let mut reports = Vec::new();
    for seconds in (0..3600).step_by(150) {
        // Every 150 s, stating 300 s.
        reports.push(report("http://fast.test/", start + Duration::seconds(seconds), Some(300), false));
    }
    for seconds in (0..3600).step_by(300) {
        // Two producers under one name, each on its 300 s cadence.
        for offset in [0, 100] {
            reports.push(report("http://twice.test/", start + Duration::seconds(seconds + offset), Some(300), false));
        }
    }
    archive(stack, &db, &reports);

    for url in ["http://fast.test/", "http://twice.test/"] {
        let found = summary(&db, start, start + Duration::hours(1), url);
        assert_eq!(found.probes, 24, "{url}");
        assert_eq!((found.coverage, found.unknown_s), (Some(1.0), Some(0.0)), "{url}: {found:?}");
        assert_eq!(found.measured_s, Some(3600.0), "{url}: never more than the window");
    }
}

#[test]
fn reports_without_a_cadence_leave_the_time_unknown_and_a_mix_measures_those_that_state_one() {
    let stack = Stack::get();
    let db = stack.create_database();
    let start = past_hour();
    let mut reports = Vec::new();
    for minute in (0..60).step_by(5) {
        reports.push(report("http://untimed.test/", start + Duration::minutes(minute), None, minute == 10));
        // The first half hour from a build that states nothing, the second from one that does.
        let interval = (minute >= 30).then_some(300);
        reports.push(report("http://mixed.test/", start + Duration::minutes(minute), interval, false));
    }
    archive(stack, &db, &reports);

    let untimed = summary(&db, start, start + Duration::hours(1), "http://untimed.test/");
    let mixed = summary(&db, start, start + Duration::hours(1), "http://mixed.test/");

    assert_eq!(untimed.probes, 12);
    assert!(close(untimed.uptime, 11.0 / 12.0, 1e-9), "the probe-based uptime is still there: {untimed:?}");
    assert_eq!(
        (untimed.coverage, untimed.measured_s, untimed.unknown_s, untimed.down_s, untimed.measured_uptime),
        (None, None, None, None, None),
        "nothing known of its time"
    );
    assert_eq!((mixed.coverage, mixed.unknown_s), (Some(0.5), Some(1800.0)), "{mixed:?}");
    assert_eq!(mixed.measured_uptime, Some(1.0));
}

#[test]
fn a_daemon_stopped_and_started_again_leaves_its_pause_unmeasured() {
    let stack = Stack::get();
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    let site = websentry_tests::SiteServer::start();
    let url = site.url("/");
    let interval = 1u32;
    let run = || {
        let running = stack
            .producer(&topic)
            .env("WEBSENTRY_SITES", &url)
            .env("WEBSENTRY_INTERVAL", interval.to_string())
            .env("WEBSENTRY_PROBE_NAME", "daemon")
            .spawn();
        running.wait_for_log_times("round done", 4, StdDuration::from_secs(30));
        running.terminate();
        running.finish(StdDuration::from_secs(30))
    };

    let first = run();
    // The pause is what this test is about: the daemon is not running during it.
    std::thread::sleep(StdDuration::from_secs(6));
    let second = run();
    stack.consumer(&topic, &db).success();

    assert_eq!((first.code, second.code), (Some(0), Some(0)), "{}\n{}", first.stderr, second.stderr);
    let times: Vec<OffsetDateTime> =
        db.column(&format!("SELECT checked_at FROM reports WHERE url = '{url}' ORDER BY checked_at"));
    let stated: Vec<Option<i32>> = db.column(&format!("SELECT DISTINCT interval_s FROM reports WHERE url = '{url}'"));
    assert_eq!(stated, [Some(interval as i32)], "every report states the daemon's interval");
    let pause = times.windows(2).map(|w| w[1] - w[0]).max().expect("reports of two runs");
    assert!(pause >= Duration::seconds(6), "the longest wait between two reports is the pause: {pause}");
    let found = summary(&db, times[0], times[times.len() - 1] + Duration::hours(1), &url);
    let slots = times.len() as f64 * f64::from(interval);
    assert!(
        close(found.measured_s, slots, 1e-3),
        "each report measured its own second: {found:?} for {} reports",
        times.len()
    );
    let span = (times[times.len() - 1] - times[0]).as_seconds_f64() + f64::from(interval);
    assert!(
        found.measured_s.is_some_and(|measured| measured <= span - pause.as_seconds_f64() + 2.0 * f64::from(interval)),
        "the pause is not measured: {found:?}, reports over {span} s with a pause of {pause}"
    );
    db.assert_rollups_match_raw();
}

#[test]
fn a_round_whose_canaries_all_fail_archives_its_failures_as_inconclusive_time_not_down_time() {
    let stack = Stack::get();
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    let (site, other) = (websentry_tests::SiteServer::start(), websentry_tests::SiteServer::start());
    let (up, down) = (site.url("/ok"), websentry_tests::unreachable_url());
    let round = |canary: &str| {
        stack
            .producer(&topic)
            .env("WEBSENTRY_SITES", format!("{up},{down}"))
            .env("WEBSENTRY_CANARIES", canary)
            .env("WEBSENTRY_CADENCE", "60")
            .success()
    };

    // A canary that cannot be reached, as when this producer's own network is down; then one that
    // answers.
    let unreachable_canary = websentry_tests::unreachable_url();
    let cut_off = round(&unreachable_canary);
    round(&other.url("/ok"));
    stack.consumer(&topic, &db).success();

    assert!(
        cut_off.stderr.contains("every canary failed: this round's failures are inconclusive"),
        "{}",
        cut_off.stderr
    );
    let flags = |url: &str| -> Vec<(bool, bool)> {
        db.client()
            .query(
                "SELECT error_kind IS NOT NULL, inconclusive FROM reports WHERE url = $1 ORDER BY checked_at",
                &[&url],
            )
            .expect("the reports")
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    };
    assert_eq!(flags(&down), [(true, true), (true, false)], "failed, inconclusive while the canary failed");
    assert_eq!(flags(&up), [(false, false), (false, false)], "a success is never inconclusive");
    assert_eq!(flags(&unreachable_canary), [(true, true)], "the canary's own report is archived, inconclusive");
    let (covered, down_us): (i64, i64) = db
        .client()
        .query_one("SELECT sum(covered_us)::bigint, sum(down_us)::bigint FROM rollup_hourly WHERE url = $1", &[&down])
        .map(|row| (row.get(0), row.get(1)))
        .expect("the down site's rollups");
    assert_eq!((covered, down_us), (60_000_000, 60_000_000), "one minute measured, down: the second round's only");
    let now = OffsetDateTime::now_utc();
    let row = db
        .client()
        .query_one(
            "SELECT probes, inconclusive, measured_s, down_s FROM site_summary($1, $2, $3)",
            &[&(now - Duration::hours(1)), &(now + Duration::hours(1)), &down],
        )
        .expect("the down site's summary");
    let (probes, inconclusive, measured, down_s): (i64, i64, f64, f64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((probes, inconclusive), (2, 1));
    assert!(measured > 0.0 && down_s == measured, "all it measured is down, none of it from the inconclusive round");
    db.assert_rollups_match_raw();
}
