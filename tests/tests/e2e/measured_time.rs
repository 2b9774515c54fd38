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
    // The rollups sum the slots: two reports less than a second apart (the daemon's overlapping
    // rounds at start) count their common part twice. Less that, the measured time is the union of
    // the slots, which leaves the pause out (all of it but the slot of the report before it).
    let overlap: f64 = times.windows(2).map(|w| (f64::from(interval) - (w[1] - w[0]).as_seconds_f64()).max(0.0)).sum();
    assert!(
        found.measured_s.is_some_and(|measured| measured - overlap
            <= span - pause.as_seconds_f64() + f64::from(interval) + 1e-3),
        "the pause is not measured: {found:?} ({overlap} s of overlapping slots), reports over {span} s with a pause of {pause}"
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

/// One day of `site_timeline(…, 'day')` or of `site_days`: probes, successes, coverage, measured,
/// unknown and down seconds, and the uptime over the measured time.
type DayFigures = (i64, i64, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

#[test]
fn site_days_gives_each_day_what_site_timeline_gives_and_leaves_out_only_the_days_nobody_measured() {
    let stack = Stack::get();
    let db = stack.create_database();
    let now = OffsetDateTime::now_utc();
    let midnight = now.replace_time(time::Time::MIDNIGHT);
    let mut reports = Vec::new();
    // Ten days up to now, a report every 6 hours stating that cadence: one site down on one day
    // and a half, one silent for three whole days, one from two places, one stating no cadence.
    // On the hour, so that no report's slot runs over into the next day.
    let mut at = midnight - Duration::days(9);
    while at <= now {
        let ago = (midnight - at.replace_time(time::Time::MIDNIGHT)).whole_days();
        reports.push(report("http://steady.test/", at, Some(21_600), ago == 3 || (ago == 2 && at.hour() < 12)));
        if !(4..=6).contains(&ago) {
            reports.push(report("http://gap.test/", at, Some(21_600), false));
        }
        for probe in ["eu", "us"] {
            let down = probe == "us" && ago == 1;
            reports.push(Report { probe: probe.into(), ..report("http://places.test/", at, Some(21_600), down) });
        }
        reports.push(report("http://untimed.test/", at, None, ago == 5));
        at += Duration::hours(6);
    }
    // A site last probed before the window: no row, though site_days walks every (url, probe).
    reports.push(report("http://gone.test/", midnight - Duration::days(20), Some(21_600), false));
    archive(stack, &db, &reports);

    // Both in one transaction, so that both see one now() (today's passed part).
    let mut client = db.client();
    let mut tx = client.transaction().expect("a transaction");
    let figures = |row: &postgres::Row, at: usize| -> DayFigures {
        (
            row.get(at),
            row.get(at + 1),
            row.get(at + 2),
            row.get(at + 3),
            row.get(at + 4),
            row.get(at + 5),
            row.get(at + 6),
        )
    };
    let window = [&(now - Duration::days(9)) as &(dyn postgres::types::ToSql + Sync), &now];
    let mut timeline = std::collections::BTreeMap::new();
    for row in tx
        .query(
            "SELECT url, probe, bucket_start::date, probes, successes, coverage, measured_s, unknown_s, down_s,
                    measured_uptime FROM site_timeline($1, $2, 'day')",
            &window,
        )
        .expect("site_timeline")
    {
        let key: (String, String, time::Date) = (row.get(0), row.get(1), row.get(2));
        timeline.insert(key, figures(&row, 3));
    }
    let mut from_days = std::collections::BTreeMap::new();
    let mut absent = 0;
    for row in tx
        .query(
            "SELECT url, probe, first_day, days, measured_days, probes, successes, coverage, measured_s, unknown_s,
                    down_s, measured_uptime FROM site_days($1, $2)",
            &window,
        )
        .expect("site_days")
    {
        let (url, probe, first_day, days): (String, String, time::Date, i32) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let measured: Vec<i32> = row.get(4);
        let column = |at: usize| -> Vec<Option<f64>> { row.get(at) };
        let (probes, successes): (Vec<i64>, Vec<i64>) = (row.get(5), row.get(6));
        let (coverage, measured_s, unknown_s, down_s, uptime) =
            (column(7), column(8), column(9), column(10), column(11));
        assert_eq!(days, 10, "{url} {probe}: nine days ago to today");
        assert!(measured.windows(2).all(|pair| pair[0] < pair[1]), "{url} {probe}: days in order: {measured:?}");
        for day in 0..days {
            let date = first_day + Duration::days(i64::from(day));
            let key = (url.clone(), probe.clone(), date);
            let found = match measured.iter().position(|&d| d == day) {
                Some(i) => (probes[i], successes[i], coverage[i], measured_s[i], unknown_s[i], down_s[i], uptime[i]),
                None => {
                    absent += 1;
                    // A day nobody measured, as site_timeline gives it.
                    let passed = timeline.get(&key).and_then(|figures| figures.4);
                    (0, 0, Some(0.0), Some(0.0), passed, Some(0.0), None)
                }
            };
            assert_eq!(timeline.get(&key), Some(&found), "{url} {probe} {date}");
            from_days.insert(key, found);
        }
    }
    tx.commit().expect("commit");
    assert_eq!(from_days.len(), timeline.len(), "the same (url, probe, day)s");
    assert!(!from_days.keys().any(|(url, _, _)| url == "http://gone.test/"), "no row for a site silent in the window");
    assert_eq!(
        from_days
            .keys()
            .map(|(url, probe, _)| (url.as_str(), probe.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        5,
        "each (url, probe) of the window once"
    );
    assert_eq!(absent, 3, "only gap.test's three silent days are left out");
    let day = |url: &str, probe: &str, ago: i64| {
        from_days[&(url.to_owned(), probe.to_owned(), (midnight - Duration::days(ago)).date())]
    };
    assert_eq!(day("http://steady.test/", "tests", 3).6, Some(0.0), "down all day");
    assert!(close(day("http://steady.test/", "tests", 2).6, 0.5, 1e-9), "down half the day");
    assert_eq!(day("http://places.test/", "us", 1).6, Some(0.0), "one place down, its own row");
    assert_eq!(day("http://places.test/", "eu", 1).6, Some(1.0));
    assert_eq!(day("http://untimed.test/", "tests", 5).2, None, "no cadence: coverage unknown, not 0 and not 1");
    assert_eq!(day("http://gap.test/", "tests", 5).2, Some(0.0), "grey, never green");
}

#[test]
fn site_timeline_gives_each_bucket_the_measured_time_site_summary_gives_that_bucket_as_a_window() {
    let stack = Stack::get();
    let db = stack.create_database();
    let start = past_hour() - Duration::hours(20);
    let mut reports = Vec::new();
    for minute in (0..24 * 60).step_by(10) {
        let hour = minute / 60;
        // Silent hours, down hours, untimed hours, and a producer twice as fast as it says.
        if hour % 7 == 3 {
            continue;
        }
        let interval = (hour % 5 != 2).then_some(if hour % 6 == 1 { 1200 } else { 600 });
        reports.push(report("http://mixed.test/", start + Duration::minutes(minute), interval, hour % 4 == 1));
    }
    archive(stack, &db, &reports);

    // site_summary answers each hour as a window of its own through websentry_window_measured;
    // site_timeline writes the same arithmetic out per bucket.
    let rows = db
        .client()
        .query(
            "SELECT t.bucket_start, t.coverage, s.coverage, t.measured_s, s.measured_s, t.unknown_s, s.unknown_s,
                    t.down_s, s.down_s, t.measured_uptime, s.measured_uptime
             FROM site_timeline($1, $2, 'hour', 'http://mixed.test/') t
             LEFT JOIN LATERAL site_summary(t.bucket_start, t.bucket_end, 'http://mixed.test/') s ON true
             ORDER BY 1",
            &[&start, &(start + Duration::hours(24))],
        )
        .expect("the timeline beside the summaries");
    assert_eq!(rows.len(), 24);
    let mut silent = 0;
    for row in &rows {
        let at: OffsetDateTime = row.get(0);
        if row.get::<_, Option<f64>>(2).is_none() && row.get::<_, Option<f64>>(1) == Some(0.0) {
            silent += 1; // No report: no site_summary row; the timeline says nothing was measured.
            continue;
        }
        for column in [1, 3, 5, 7, 9] {
            let (timeline, summary): (Option<f64>, Option<f64>) = (row.get(column), row.get(column + 1));
            let same = match (timeline, summary) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                (a, b) => a == b,
            };
            assert!(same, "{at} column {column}: timeline {timeline:?}, summary {summary:?}");
        }
    }
    assert_eq!(silent, 3, "hours 3, 10 and 17 had no report");
}

#[test]
fn down_time_is_exact_where_nothing_was_capped_or_everything_was_down() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    // The bucket helper over covered, down and span of every size a bucket has (up to a day of
    // microseconds, and beyond for overlapping slots), where down × span passes 2^53.
    let misses: Vec<i64> = db.column(
        "SELECT count(*) FILTER (WHERE s >= c AND websentry_down_us(c, d, s) <> d)
              + count(*) FILTER (WHERE s < c AND websentry_down_us(c, c, s) <> websentry_measured_us(c, s))
              + count(*) FILTER (WHERE websentry_down_us(c, 0, s) <> 0)
              + count(*) FILTER (WHERE websentry_down_us(c, d, s) > websentry_measured_us(c, s))
         FROM (SELECT (1000003::bigint * (1 + g % 170000)) AS c, 1e3 + (g * 7919 % 100000) * 1.7e6 AS s,
                      (1000003::bigint * (1 + g % 170000)) * (g % 1000) / 1000 AS d
               FROM generate_series(1, 100000) g) x",
    );
    assert_eq!(misses, [0], "down time kept exact at the ends, and never above the measured time");

    // Sites down all of what they measured, in the hour running now, whose slots run on past now
    // (a day each: more than the hour has passed): each is down all of its measured time, so its
    // uptime over the measured time is exactly 0, not a rounding error either side of it.
    let now = OffsetDateTime::now_utc();
    let hour = now.replace_time(time::Time::from_hms(now.hour(), 0, 0).expect("a whole hour"));
    client
        .batch_execute(&format!(
            "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes, covered_us, down_us)
             SELECT '{hour}', 'http://down-' || k || '.test/', 'p', '{hour}', k, 0, 86400000000 + k * 1000003,
                    86400000000 + k * 1000003
             FROM generate_series(1, 200) k"
        ))
        .expect("hours down throughout");
    let uptimes: Vec<Option<f64>> =
        db.column(&format!("SELECT measured_uptime FROM site_summary('{hour}', '{}')", hour + Duration::hours(1)));
    assert_eq!(uptimes.len(), 200);
    assert!(uptimes.iter().all(|u| *u == Some(0.0)), "every site down all of its measured time: {uptimes:?}");
}
