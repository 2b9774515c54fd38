//! `site_summary` answers from the rollups what an exact query over the raw rows answers (counts,
//! uptime, and percentiles within their histogram bucket's bound), for windows with ragged hours,
//! whole days and one site; `latest_reports` and `certificates_expiring` match their exact
//! queries too.

use std::collections::{BTreeMap, BTreeSet};

use rand::{rngs::StdRng, Rng};
use rskafka::{
    chrono::DateTime,
    record::{Record, RecordAndOffset},
};
use time::{Duration, OffsetDateTime, Time};
use uuid::Uuid;
use websentry_consumer::{
    archive::{Archiver, Committed},
    batch::{Batch, Origin},
};
use websentry_shared::report::{ErrorKind, ProbeError};
use websentry_tests::{midnight, sample_report, seeded_rng, Stack, TestDatabase, KEEP_EVERYTHING};

/// The reports of `sites` sites over the last three days and today so far, as Kafka values, with
/// some repeated (a producer retry); returns the values and the number of distinct reports.
fn many_reports(rng: &mut StdRng, sites: usize, count: usize, now: OffsetDateTime) -> (Vec<Vec<u8>>, usize) {
    let start = midnight(now.date() - Duration::days(3));
    let span_ns = (now - start).whole_nanoseconds() as i64;
    let kinds = [ErrorKind::Dns, ErrorKind::Connect, ErrorKind::Timeout, ErrorKind::Http];
    let mut values: Vec<Vec<u8>> = Vec::with_capacity(count + count / 20);
    for _ in 0..count {
        let site = rng.random_range(0..sites);
        let https = site.is_multiple_of(4);
        let mut report = sample_report(&format!("{}://site-{site}.test/", if https { "https" } else { "http" }));
        report.probe = if site.is_multiple_of(5) && rng.random_bool(0.5) { "us".into() } else { "eu".into() };
        report.checked_at = start + Duration::nanoseconds(rng.random_range(0..span_ns));
        report.response_ms = rng.random_range(0.3_f64.ln()..60_000_f64.ln()).exp();
        if https {
            report.tls_expires_at = Some(midnight(now.date()) + Duration::days(10 + site as i64));
        }
        if rng.random_bool(0.05) {
            let kind = kinds[rng.random_range(0..kinds.len())];
            report.error = Some(ProbeError { kind, message: format!("{kind:?}") });
            report.code = if kind == ErrorKind::Http { 503 } else { 0 };
            report.tls_expires_at = None;
            if kind != ErrorKind::Http {
                (report.http_version, report.final_url) = (None, None);
            }
        }
        values.push(report.to_json());
        if rng.random_bool(0.03) {
            // A repeat, in this batch or a later one.
            let earlier = values[rng.random_range(0..values.len())].clone();
            values.push(earlier);
        }
    }
    (values, count)
}

/// Archives `values` through `Archiver::commit`, in batches of 500.
fn archive(db: &TestDatabase, values: &[Vec<u8>]) {
    let mut archiver = Archiver::new(db.client(), KEEP_EVERYTHING);
    let at = Origin { group: "summary", topic: "summary", topic_id: None, partition: 0 };
    let timestamp = DateTime::from_timestamp_millis(1_764_410_400_250).expect("a time");
    let (mut next, mut stored) = (0_i64, -1_i64);
    for chunk in values.chunks(500) {
        let records = (next..)
            .zip(chunk)
            .map(|(offset, value)| RecordAndOffset {
                record: Record { key: None, value: Some(value.clone()), headers: BTreeMap::new(), timestamp },
                offset,
            })
            .collect();
        let batch = Batch::from_records(at, next, records);
        let committed = archiver.commit(at, stored, &batch).expect("committing a batch");
        assert!(matches!(committed, Committed::Done { rejected: 0, past_retention: 0, .. }), "{committed:?}");
        (next, stored) = (batch.next_offset, batch.next_offset);
    }
}

fn floor_hour(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_time(Time::from_hms(t.hour(), 0, 0).expect("an hour"))
}

fn ceil_hour(t: OffsetDateTime) -> OffsetDateTime {
    let floor = floor_hour(t);
    if floor == t {
        floor
    } else {
        floor + Duration::hours(1)
    }
}

/// One row of a summary: (url, probe) → probes, successes, uptime, p50, p95, p99, last report.
type Summary = BTreeMap<(String, String), (i64, i64, f64, [Option<f64>; 3], OffsetDateTime)>;

fn summary(client: &mut postgres::Client, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Summary {
    let rows = client.query(sql, params).unwrap_or_else(|err| panic!("{sql}: {err}"));
    rows.iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3), r.get(4), [r.get(5), r.get(6), r.get(7)], r.get(8))))
        .collect()
}

const EXACT_SUMMARY: &str = "
    SELECT url, probe, count(*), count(*) FILTER (WHERE error_kind IS NULL),
           (count(*) FILTER (WHERE error_kind IS NULL))::double precision / count(*),
           percentile_disc(0.50) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE error_kind IS NULL),
           percentile_disc(0.95) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE error_kind IS NULL),
           percentile_disc(0.99) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE error_kind IS NULL),
           max(checked_at)
    FROM reports
    WHERE checked_at >= $1 AND checked_at < $2 AND ($3::text IS NULL OR url = $3)
    GROUP BY url, probe";

/// Whether a percentile from the histogram is as close to the exact one as its bucket allows.
fn close(approx: Option<f64>, exact: Option<f64>) -> bool {
    match (approx, exact) {
        (None, None) => true,
        (Some(a), Some(e)) if e < 1.0 => (a - e).abs() <= 0.5,
        (Some(a), Some(e)) if e < 165_000.0 => ((a - e) / e).abs() <= 1.1_f64.sqrt() - 1.0 + 1e-9,
        _ => false,
    }
}

#[test]
fn site_summary_answers_from_the_rollups_what_exact_sql_over_the_raw_rows_answers() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let now = OffsetDateTime::now_utc();
    let d = |n: i64, h: u8, m: u8, s: u8| {
        midnight(now.date() + Duration::days(n)).replace_time(Time::from_hms(h, m, s).expect("a time"))
    };
    client
        .query("SELECT websentry_create_partitions($1, $2, NULL)", &[&(now.date() - Duration::days(3)), &now.date()])
        .expect("creating days");
    let mut rng = seeded_rng("site_summary_answers_from_the_rollups");
    let (values, distinct) = many_reports(&mut rng, 20, 4000, now);
    assert!(values.len() > distinct, "some reports are repeated");

    archive(&db, &values);

    assert_eq!(db.count("SELECT count(*) FROM reports"), distinct as i64, "each report once");
    db.assert_rollups_match_raw();
    let one_site = "http://site-5.test/";
    let windows: [(&str, OffsetDateTime, OffsetDateTime, Option<&str>); 5] = [
        ("ragged hours across midnight", d(-2, 21, 17, 33), d(-1, 3, 42, 10), None),
        ("inside one day", d(-1, 5, 10, 0), d(-1, 17, 59, 59), None),
        ("whole days", d(-3, 0, 0, 0), d(0, 0, 0, 0), None),
        ("whole days and ragged edges", d(-3, 13, 30, 0), d(-1, 8, 20, 1), None),
        ("one site", d(-3, 13, 30, 0), d(0, 8, 20, 1), Some(one_site)),
    ];
    for (name, start, end, site) in windows {
        let approx = match site {
            Some(site) => summary(&mut client, "SELECT * FROM site_summary($1, $2, $3)", &[&start, &end, &site]),
            None => summary(&mut client, "SELECT * FROM site_summary($1, $2)", &[&start, &end]),
        };
        let exact = summary(&mut client, EXACT_SUMMARY, &[&floor_hour(start), &ceil_hour(end), &site]);
        assert!(exact.len() >= if site.is_some() { 2 } else { 20 }, "window {name}: {} rows", exact.len());
        assert_eq!(approx.keys().collect::<Vec<_>>(), exact.keys().collect::<Vec<_>>(), "window {name}: sites");
        for (key, (probes, successes, uptime, percentiles, last)) in &exact {
            let got = &approx[key];
            assert_eq!((got.0, got.1, got.4), (*probes, *successes, *last), "window {name}, {key:?}: counts");
            assert!((got.2 - uptime).abs() < 1e-12, "window {name}, {key:?}: uptime {} vs {uptime}", got.2);
            for (p, (a, e)) in ["p50", "p95", "p99"].iter().zip(got.3.iter().zip(percentiles)) {
                assert!(close(*a, *e), "window {name}, {key:?}: {p} {a:?} from the rollups, {e:?} exactly");
            }
        }
    }

    let latest: Vec<(String, String, Uuid)> = client
        .query("SELECT url, probe, id FROM latest_reports ORDER BY url, probe", &[])
        .expect("latest_reports")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let exact_latest: Vec<(String, String, Uuid)> = client
        .query("SELECT DISTINCT ON (url, probe) url, probe, id FROM reports ORDER BY url, probe, checked_at DESC", &[])
        .expect("latest rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(latest, exact_latest, "latest_reports: each site's latest row");
    let expiring: BTreeSet<(String, String, OffsetDateTime)> = client
        .query("SELECT url, probe, tls_expires_at FROM certificates_expiring", &[])
        .expect("certificates_expiring")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let exact_expiring: BTreeSet<(String, String, OffsetDateTime)> = client
        .query(
            "SELECT url, probe, tls_expires_at FROM (
                 SELECT DISTINCT ON (url, probe) url, probe, tls_expires_at FROM reports
                 ORDER BY url, probe, checked_at DESC) latest
             WHERE tls_expires_at IS NOT NULL",
            &[],
        )
        .expect("latest certificates")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(!exact_expiring.is_empty(), "some sites show a certificate");
    assert_eq!(expiring, exact_expiring, "certificates_expiring: the latest certificate of each https site");
}

#[test]
fn site_summary_answers_windows_at_the_edges_of_time_and_empty_ones_without_an_error() {
    let db = Stack::get().create_database().migrated();
    let now = OffsetDateTime::now_utc();
    // The earliest and latest times a report may hold (RFC 3339 years 0000-9999, UTC), and now.
    let at = |url: &str, checked_at: OffsetDateTime| {
        let mut report = sample_report(url);
        report.checked_at = checked_at;
        report.to_json()
    };
    let first = time::macros::datetime!(0000-01-01 00:30 UTC);
    let last = time::macros::datetime!(9999-12-31 23:30 UTC);
    archive(&db, &[at("http://first.test/", first), at("http://now.test/", now), at("http://last.test/", last)]);
    let mut client = db.client();
    const MIN: &str = "'4714-11-24 00:00:00+00 BC'::timestamptz";
    const MAX: &str = "'294276-12-31 23:59:59.999999+00'::timestamptz";
    let all = ["http://first.test/", "http://now.test/", "http://last.test/"];
    let cases: [(&str, &str, &str, &[&str]); 17] = [
        ("everything", "'-infinity'", "'infinity'", &all),
        ("the earliest to the latest time PostgreSQL holds", MIN, MAX, &all),
        ("from an hour ago to the latest time", "now() - interval '1 hour'", MAX, &all[1..]),
        ("the last hour of time", "'294276-12-31 23:00+00'", "'infinity'", &[]),
        ("the latest time, empty", MAX, MAX, &[]),
        ("the last hour of a report's years", "'9999-12-31 23:00+00'", "'10000-01-01 00:00+00'", &all[2..]),
        ("past the last report's years", "'10000-01-01 00:00+00'", MAX, &[]),
        ("the earliest time, empty", MIN, MIN, &[]),
        ("from the earliest time to year 1", MIN, "'0001-01-01 00:00+00'", &all[..1]),
        ("reversed infinities", "'infinity'", "'-infinity'", &[]),
        ("reversed", "now() + interval '1 hour'", "now() - interval '1 hour'", &[]),
        ("infinity twice", "'infinity'", "'infinity'", &[]),
        ("minus infinity twice", "'-infinity'", "'-infinity'", &[]),
        ("no start", "NULL", "now()", &[]),
        ("no end", "now()", "NULL", &[]),
        ("no window", "NULL", "NULL", &[]),
        ("minus infinity to the latest time", "'-infinity'", MAX, &all),
    ];
    // site_uptime (SQL interface 15) takes its windows as site_summary does, through the same
    // helpers but its own branch for all sites.
    for (name, start, end, expected) in cases {
        let mut expected: Vec<&str> = expected.to_vec();
        expected.sort_unstable();
        for function in ["site_summary", "site_uptime"] {
            let sql = format!("SELECT url FROM {function}({start}, {end}) ORDER BY url");
            let urls: Vec<String> = match client.query(&sql, &[]) {
                Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
                Err(err) => panic!("window {name}: {sql}: {err:?}"),
            };
            assert_eq!(urls, expected, "window {name}: all sites, {function}");
            for url in all {
                let sql = format!("SELECT url FROM {function}({start}, {end}, '{url}')");
                let urls: Vec<String> = match client.query(&sql, &[]) {
                    Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
                    Err(err) => panic!("window {name}, one site: {sql}: {err:?}"),
                };
                assert_eq!(
                    urls,
                    expected.iter().filter(|u| **u == url).copied().collect::<Vec<_>>(),
                    "window {name}: {url}, {function}"
                );
            }
        }
    }
}
