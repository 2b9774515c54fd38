//! The status page's windows count what nobody measured: a site silent for days shows those days as
//! unknown time in its 7-, 30- and 90-day figures, never as up, whichever interface call the
//! overview reads its days through.

use time::{Duration, OffsetDateTime, Time};
use websentry_shared::report::Report;
use websentry_tests::{sample_report, status_site_id, Stack, StatusServer};

#[test]
fn days_nobody_measured_are_unknown_time_in_every_window() {
    let stack = Stack::get();
    let db = stack.create_database();
    let now = OffsetDateTime::now_utc();
    let midnight = now.replace_time(Time::MIDNIGHT);
    let (patchy, steady) = ("http://patchy.test/", "http://steady.test/");
    // From 6 days ago to now, a report every 6 hours on the hour stating that cadence; patchy.test
    // is silent 2, 3 and 4 days ago.
    let mut reports = Vec::new();
    let mut at = midnight - Duration::days(6);
    while at <= now {
        let ago = (midnight - at.replace_time(Time::MIDNIGHT)).whole_days();
        for url in [patchy, steady] {
            if url == steady || !(2..=4).contains(&ago) {
                reports.push(Report { checked_at: at, interval_s: Some(21_600), ..sample_report(url) });
            }
        }
        at += Duration::hours(6);
    }
    let topic = stack.create_topic(1);
    let records = reports.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
    stack.produce_raw(&topic, 0, records);
    stack.consumer(&topic, &db).success();
    let status = StatusServer::start(stack.status(&db));

    let figures = |url: &str, window: &str| -> (f64, f64, f64) {
        let answer = status.get(&format!("/api/v1/sites/{}?window={window}", status_site_id(url)));
        assert_eq!(answer.status, 200, "{url} {window}: {}", answer.text());
        let doc: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        let number = |field: &str| doc[field].as_f64().unwrap_or_else(|| panic!("{field} in {doc}"));
        (number("measured_s"), number("unknown_s"), number("coverage"))
    };
    let today = (now - midnight).as_seconds_f64();
    // The windows are the UTC days they overlap: 8 for 7 days (7 days ago to today), 31, 91.
    for (window, days) in [("7d", 8.0), ("30d", 31.0), ("90d", 91.0)] {
        let whole = (days - 1.0) * 86_400.0 + today;
        for (url, measured) in [(patchy, 3.0 * 86_400.0 + today), (steady, 6.0 * 86_400.0 + today)] {
            let (found_measured, unknown, coverage) = figures(url, window);
            // A minute either way: the page's clock and the database's read "now" apart.
            assert!(
                (found_measured - measured).abs() < 60.0,
                "{url} {window}: measured {found_measured} s, not {measured}"
            );
            assert!(
                (unknown - (whole - measured)).abs() < 60.0,
                "{url} {window}: {unknown} s unknown, not {} (the days nobody measured)",
                whole - measured
            );
            assert!((coverage - measured / whole).abs() < 1e-3, "{url} {window}: coverage {coverage}");
        }
    }
    // The last 24 hours in whole hours, as site_summary takes them (the start rounded down): all
    // of it measured for both (a report every 6 hours stands for 6 hours), none unknown.
    let hour_start = now.replace_time(Time::from_hms(now.hour(), 0, 0).expect("an hour"));
    let whole = 86_400.0 + (now - hour_start).as_seconds_f64();
    for url in [patchy, steady] {
        let (measured, unknown, coverage) = figures(url, "24h");
        assert!(
            (measured - whole).abs() < 60.0 && unknown.abs() < 60.0,
            "{url} 24h: measured {measured} s, unknown {unknown} s, not {whole} s and none"
        );
        assert!((coverage - 1.0).abs() < 1e-3, "{url} 24h: coverage {coverage}");
    }
}
