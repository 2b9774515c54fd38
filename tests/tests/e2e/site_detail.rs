//! What a site's detail page reads through the SQL interface: its name and group as the sites file
//! gives them, its latency per bucket, its outages and its last reports.

use time::{Duration, OffsetDateTime};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{sample_report, Scratch, SiteServer, Stack, TestDatabase};

fn past_hour() -> OffsetDateTime {
    let at = OffsetDateTime::now_utc() - Duration::days(1);
    at.replace_time(time::Time::from_hms(at.hour(), 0, 0).expect("a whole hour"))
}

fn report(url: &str, at: OffsetDateTime, ms: f64, failed: Option<bool>) -> Report {
    // None: up; Some(false): down; Some(true): down, inconclusive.
    let error = failed.map(|_| ProbeError { kind: ErrorKind::Timeout, message: "slow".into() });
    Report { checked_at: at, response_ms: ms, error, inconclusive: failed == Some(true), ..sample_report(url) }
}

fn archive(stack: &Stack, db: &TestDatabase, reports: &[Report]) {
    let topic = stack.create_topic(1);
    stack.produce_raw(
        &topic,
        0,
        reports.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect(),
    );
    stack.consumer(&topic, db).success();
}

#[test]
fn a_sites_name_and_group_travel_from_the_sites_file_to_the_archive() {
    let stack = Stack::get();
    let db = stack.create_database();
    let topic = stack.create_topic(1);
    let site = SiteServer::start();
    let scratch = Scratch::new();
    let file = scratch.write(
        "sites.toml",
        format!("[[site]]\nurl = \"{}\"\nname = \"Shop\"\ngroup = \"Public\"\n", site.url("/ok")).as_bytes(),
    );

    let printed = stack.producer(&topic).arg("--dry-run").env("WEBSENTRY_SITES_FILE", &file).success();
    stack.producer(&topic).env("WEBSENTRY_SITES_FILE", &file).success();
    stack.consumer(&topic, &db).success();

    let document: serde_json::Value = serde_json::from_str(printed.stdout.trim()).expect("one JSON report");
    assert_eq!((document["name"].as_str(), document["group"].as_str()), (Some("Shop"), Some("Public")));
    let row = db
        .client()
        .query_one("SELECT site_name, site_group, report_document(r) FROM reports r", &[])
        .expect("the archived report");
    let (name, group, rebuilt): (String, String, serde_json::Value) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((name.as_str(), group.as_str()), ("Shop", "Public"));
    assert_eq!((rebuilt["name"].as_str(), rebuilt["group"].as_str()), (Some("Shop"), Some("Public")));
    let latest: Vec<String> = db.column("SELECT site_name || '/' || site_group FROM latest_reports");
    assert_eq!(latest, ["Shop/Public"], "latest_reports shows them");
}

#[test]
fn outages_are_runs_of_failures_from_the_first_to_the_next_success_inconclusive_ones_left_out() {
    let stack = Stack::get();
    let db = stack.create_database();
    let url = "http://outages.test/";
    let start = past_hour();
    let at = |minute: i64| start + Duration::minutes(minute);
    // up, down, down, (inconclusive), down, up, up, down (still going)
    let plan = [None, Some(false), Some(false), Some(true), Some(false), None, None, Some(false)];
    let reports: Vec<Report> =
        plan.iter().enumerate().map(|(minute, failed)| report(url, at(minute as i64 * 5), 10.0, *failed)).collect();
    archive(stack, &db, &reports);

    let outages: Vec<(Option<OffsetDateTime>, OffsetDateTime, i64, Vec<String>)> = db
        .client()
        .query(
            "SELECT ended_at, started_at, failures, error_kinds FROM site_outages($1, $2, $3)",
            &[&start, &(start + Duration::hours(1)), &url],
        )
        .expect("the outages")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();

    assert_eq!(
        outages,
        [(None, at(35), 1, vec!["timeout".to_owned()]), (Some(at(25)), at(5), 3, vec!["timeout".to_owned()])],
        "newest first: one still going; one from 00:05 to the success at 00:25, its inconclusive failure not counted"
    );
}

#[test]
fn latency_comes_per_bucket_and_the_last_reports_newest_first_within_their_bound() {
    let stack = Stack::get();
    let db = stack.create_database();
    let url = "http://latency.test/";
    let start = past_hour();
    let mut reports = Vec::new();
    for minute in 0..12 {
        reports.push(report(url, start + Duration::minutes(minute * 5), 100.0, None));
        reports.push(report(url, start + Duration::minutes(60 + minute * 5), 400.0, None));
    }
    reports.push(report(url, start + Duration::minutes(125), 5.0, Some(false)));
    archive(stack, &db, &reports);

    let latency: Vec<(OffsetDateTime, i64, f64)> = db
        .client()
        .query(
            "SELECT bucket_start, successes, p50_ms FROM site_latency($1, $2, 'hour', $3)",
            &[&start, &(start + Duration::hours(3)), &url],
        )
        .expect("the latency")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(latency.len(), 2, "the third hour has no success: left out");
    for ((bucket, successes, p50), (expected_start, exact)) in
        latency.iter().zip([(start, 100.0), (start + Duration::hours(1), 400.0)])
    {
        assert_eq!((*bucket, *successes), (expected_start, 12));
        assert!((p50 - exact).abs() / exact <= 1.1f64.sqrt() - 1.0, "p50 {p50} for {exact} ms");
    }
    let missing = db.client().query("SELECT * FROM site_latency(now() - interval '1 day', now(), 'hour', NULL)", &[]);
    let refusal = missing.expect_err("a url is required");
    let message = refusal.as_db_error().map(|db| db.message().to_owned()).unwrap_or_default();
    assert_eq!(message, "site_latency: url is required (one site at a time)");

    let last = |max: Option<i32>| -> Vec<OffsetDateTime> {
        db.column(&match max {
            Some(max) => format!("SELECT checked_at FROM site_reports('{url}', {max})"),
            None => format!("SELECT checked_at FROM site_reports('{url}')"),
        })
    };
    let newest = last(Some(3));
    assert_eq!(newest.len(), 3);
    assert!(newest.windows(2).all(|w| w[0] > w[1]), "newest first: {newest:?}");
    assert_eq!(newest[0], start + Duration::minutes(125));
    assert_eq!(
        (last(None).len(), last(Some(0)).len(), last(Some(-5)).len(), last(Some(100_000)).len()),
        (20, 0, 0, 25)
    );
}

#[test]
fn each_site_and_location_is_up_down_or_unknown_with_its_conclusive_failures_in_a_row() {
    let stack = Stack::get();
    let db = stack.create_database();
    let now = OffsetDateTime::now_utc();
    let ago = |minutes: i64| now - Duration::minutes(minutes);
    let timed = |mut report: Report| {
        report.interval_s = Some(60);
        report
    };
    let reports = vec![
        // up: the latest succeeded.
        timed(report("http://up.test/", ago(2), 10.0, Some(false))),
        timed(report("http://up.test/", ago(1), 10.0, None)),
        // down: a success, then two failures and an inconclusive one between them.
        timed(report("http://down.test/", ago(4), 10.0, None)),
        timed(report("http://down.test/", ago(3), 10.0, Some(false))),
        timed(report("http://down.test/", ago(2), 10.0, Some(true))),
        timed(report("http://down.test/", ago(1), 10.0, Some(false))),
        // never up: every failure counts.
        timed(report("http://never.test/", ago(3), 10.0, Some(false))),
        timed(report("http://never.test/", ago(2), 10.0, Some(false))),
        timed(report("http://never.test/", ago(1), 10.0, Some(false))),
        // unknown: the latest failure was inconclusive.
        timed(report("http://cut-off.test/", ago(2), 10.0, None)),
        timed(report("http://cut-off.test/", ago(1), 10.0, Some(true))),
        // unknown: nothing for more than twice its cadence of a minute.
        timed(report("http://stale.test/", ago(5), 10.0, None)),
        // a report without a cadence is stale after ten minutes.
        report("http://untimed.test/", ago(5), 10.0, None),
    ];
    archive(stack, &db, &reports);

    let states: Vec<(String, String, i64, bool)> = db
        .client()
        .query("SELECT url, state, consecutive_failures, stale FROM site_states ORDER BY url", &[])
        .expect("the states")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    let expected = [
        ("http://cut-off.test/", "unknown", 0, false),
        ("http://down.test/", "down", 2, false),
        ("http://never.test/", "down", 3, false),
        ("http://stale.test/", "unknown", 0, true),
        ("http://untimed.test/", "up", 0, false),
        ("http://up.test/", "up", 0, false),
    ];
    let expected: Vec<(String, String, i64, bool)> =
        expected.iter().map(|(u, s, f, st)| ((*u).to_owned(), (*s).to_owned(), *f, *st)).collect();
    assert_eq!(states, expected);
}
