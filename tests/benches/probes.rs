//! `cargo bench -p websentry-tests --bench probes`: what a scrape of the per-site metrics
//! (`/probes/metrics`) costs the database and the status process for `WEBSENTRY_BENCH_SITES`
//! (10,000) sites. Needs only the stack's PostgreSQL (`scripts/stack up`). Prints figures; asserts
//! only what must hold whatever the machine (every site exported, answers 200).
//!
//! 1. Two rounds of every site, a minute apart and stating an hourly cadence, ~1 % failures, 30 %
//!    https, written through the consumer's own writer (`Archiver::commit`); then 30 days of
//!    history for each site: today's daily rollup row copied to each of the 30 days before, and
//!    its hourly rows to the 24 hours before now and the 24 hours around 30 days ago (the edges of
//!    a 30-day window), so that `site_uptime` over 30 days reads as many rollup rows as it would.
//! 2. The exporter's four queries alone (`site_states` and `site_uptime` over 24 h, 7 d, 30 d, as
//!    status/src/probes/rows.rs sends them), median and p95 of `WEBSENTRY_BENCH_RUNS` (7) runs;
//!    and, as the baseline, the windows as the exporter read them before SQL interface 15
//!    (`site_summary`, which sums the latency histograms too).
//! 3. `/probes/metrics`: the first answer (windows and states), then the states afresh (the 1 s
//!    cache period let pass before each; the windows are kept 5 minutes) and cached: time to the
//!    whole answer, its size and series, and the status process's peak RSS.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration as StdDuration, Instant},
};

use time::{Duration, OffsetDateTime};
use websentry_consumer::{schema, upkeep::Retention};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{sample_report, upkeep_until_done, Exposition, ReportWriter, Stack, StatusServer, TestDatabase};

const BATCH: usize = 5_000;

/// The exporter's queries, as status/src/probes/rows.rs sends them.
const STATES: &str = "SELECT url, probe, site_name, site_group, state, consecutive_failures, checked_at, \
                      interval_s, code, response_ms, error_kind, http_version, redirects, timing_dns_ms, \
                      timing_connect_ms, timing_tls_ms, timing_ttfb_ms, timing_transfer_ms, \
                      tls_expires_at, tls_chain_expires_at FROM site_states WHERE NOT stale";
const WINDOW: &str = "SELECT url, probe, measured_uptime, coverage \
                      FROM site_uptime(now() - $1::float8 * interval '1 second', now())";
/// The same windows as the exporter read them before SQL interface 15.
const WINDOW_BEFORE: &str = "SELECT url, probe, measured_uptime, coverage \
                             FROM site_summary(now() - $1::float8 * interval '1 second', now())";

fn main() {
    let sites = env_usize("WEBSENTRY_BENCH_SITES", 10_000);
    let runs = env_usize("WEBSENTRY_BENCH_RUNS", 7);
    let stack = Stack::get();
    let db = stack.create_database();

    archive(&db, sites);
    let (states, windows) = queries(&db, sites, runs);
    let status = StatusServer::start(stack.status(&db).env("WEBSENTRY_STATUS_CACHE_SECONDS", "1"));
    scrapes(&status, sites, runs);
    // Per 15 s: the states once (one load per cache period, shared by every scrape in it), the
    // windows once per 300 s (WINDOWS_KEPT).
    let per_15s = states + windows * 15.0 / 300.0;
    println!(
        "scrape cost, scraped every 15 s: {:.0} ms of database time per 15 s = {:.1} % of one core (without the windows' cache: {:.1} %)",
        per_15s * 1_000.0,
        per_15s / 15.0 * 100.0,
        (states + windows) / 15.0 * 100.0
    );
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// Part 1.
fn archive(db: &TestDatabase, sites: usize) {
    let mut client = db.client();
    schema::migrate(&mut client).expect("migrating");
    let now = OffsetDateTime::now_utc();
    let retention = Retention::default();
    upkeep_until_done(&mut client, retention, now.date());
    let started = Instant::now();
    let mut writer = ReportWriter::new(client, retention, BATCH);
    for round in 0..2_i64 {
        for site in 0..sites {
            let down = (site + round as usize) % 97 == 13;
            let https = site % 10 < 3;
            let url = format!("{}://site-{site:05}.example.com/", if https { "https" } else { "http" });
            let report = Report {
                checked_at: now - Duration::seconds(60 * (1 - round)) - Duration::milliseconds((site % 1000) as i64),
                interval_s: Some(3_600),
                response_ms: 20.0 + (site % 50) as f64 * 4.0,
                code: if down { 503 } else { 200 },
                error: down.then(|| ProbeError { kind: ErrorKind::Http, message: "503 Service Unavailable".into() }),
                name: (site % 3 == 0).then(|| format!("Service {site}")),
                group: Some(format!("Team {}", site % 10)),
                tls_expires_at: https.then(|| now + Duration::days(30 + (site % 300) as i64)),
                tls_chain_expires_at: https.then(|| now + Duration::days(20 + (site % 300) as i64)),
                ..sample_report(&url)
            };
            writer.write(&report);
        }
    }
    let written = writer.finish();
    let mut client = db.client();
    let history = history_sql(&mut client);
    client.batch_execute(&format!("{history} ANALYZE;")).expect("the history");
    println!(
        "archive: {sites} sites, 2 rounds ({written} reports) through Archiver::commit and 30 days of rollups copied, in {:.1} s: {} raw rows, {} daily and {} hourly rollup rows",
        started.elapsed().as_secs_f64(),
        db.count("SELECT count(*) FROM reports"),
        db.count("SELECT count(*) FROM rollup_daily"),
        db.count("SELECT count(*) FROM rollup_hourly"),
    );
}

/// Today's rollup rows copied back in time: daily to each of the 30 days before, hourly to the 24
/// hours before and the 24 hours around 30 days ago.
fn history_sql(client: &mut postgres::Client) -> String {
    let mut copy = |table: &str, time: &str, shifted: &str, shifts: &str, source: &str| {
        let columns: (String, String) = {
            let row = client
                .query_one(
                    "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),
                            string_agg(CASE column_name WHEN $2 THEN $3
                                                        WHEN 'last_checked_at' THEN 'last_checked_at - shift'
                                                        ELSE quote_ident(column_name) END, ', ' ORDER BY ordinal_position)
                     FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
                    &[&table, &time, &shifted],
                )
                .expect("columns");
            (row.get(0), row.get(1))
        };
        format!(
            "INSERT INTO {table} ({}) SELECT {} FROM {table}, ({shifts}) s(shift) WHERE {source} ON CONFLICT DO NOTHING;",
            columns.0, columns.1
        )
    };
    let daily = copy(
        "rollup_daily",
        "day",
        "(day - shift)::date",
        "SELECT k * interval '1 day' FROM generate_series(1, 30) k",
        "day = (now() AT TIME ZONE 'UTC')::date",
    );
    let hourly = copy(
        "rollup_hourly",
        "hour",
        "hour - shift",
        "SELECT k * interval '1 hour' FROM generate_series(1, 24) k
         UNION ALL SELECT k * interval '1 hour' FROM generate_series(30 * 24 - 12, 30 * 24 + 12) k",
        "hour >= date_trunc('hour', now()) - interval '1 hour'",
    );
    // Postgres's interval arithmetic on `day` (a date) gives a timestamp: cast back above.
    format!("{daily} {hourly}")
}

/// Part 2: the exporter's queries alone; returns the medians of `site_states` and of the three
/// windows together, in seconds.
fn queries(db: &TestDatabase, sites: usize, runs: usize) -> (f64, f64) {
    let mut client = db.client();
    println!("the exporter's queries alone, as the stack's user (median / p95 of {runs}):");
    let mut medians = Vec::new();
    for (what, sql, seconds) in [
        ("site_states", STATES, None),
        ("site_uptime 24h", WINDOW, Some(86_400.0)),
        ("site_uptime 7d", WINDOW, Some(604_800.0)),
        ("site_uptime 30d", WINDOW, Some(2_592_000.0)),
        ("site_summary 24h", WINDOW_BEFORE, Some(86_400.0)),
        ("site_summary 7d", WINDOW_BEFORE, Some(604_800.0)),
        ("site_summary 30d", WINDOW_BEFORE, Some(2_592_000.0)),
    ] {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs {
            let started = Instant::now();
            rows = match seconds {
                None => client.query(sql, &[]),
                Some(seconds) => client.query(sql, &[&seconds]),
            }
            .expect(what)
            .len();
            times.push(started.elapsed().as_secs_f64());
        }
        assert_eq!(rows, sites, "{what}: one row per site");
        times.sort_by(f64::total_cmp);
        medians.push(times[runs / 2]);
        println!("  {what:<17} {}, {rows} rows", median_p95(&times));
    }
    let windows: f64 = medians[1..4].iter().sum();
    let before: f64 = medians[4..].iter().sum();
    println!(
        "  the three windows together {:.0} ms (pipelined on one connection); read with site_summary as before SQL interface 15, {:.0} ms ({:.1} x)",
        windows * 1_000.0,
        before * 1_000.0,
        before / windows
    );
    (medians[0], windows)
}

/// Part 3: `/probes/metrics` afresh and cached.
fn scrapes(status: &StatusServer, sites: usize, runs: usize) {
    let (cold, body) = timed_get(&status.address, "/probes/metrics");
    let exposition = Exposition::parse(&body).expect("an exposition");
    assert_eq!(exposition.series("websentry_site_last_checked_timestamp_seconds", &[]).len(), sites, "every site");
    let mut fresh = Vec::with_capacity(runs);
    let mut cached = Vec::with_capacity(runs);
    for _ in 0..runs {
        std::thread::sleep(StdDuration::from_millis(1_100));
        fresh.push(timed_get(&status.address, "/probes/metrics").0);
        cached.push(timed_get(&status.address, "/probes/metrics").0);
    }
    fresh.sort_by(f64::total_cmp);
    cached.sort_by(f64::total_cmp);
    println!(
        "/probes/metrics for {sites} sites: {} series, {:.1} MB of text\n  first (windows and states) {:.0} ms; states afresh {} (median / p95 of {runs}), cached {}",
        exposition.samples.len(),
        body.len() as f64 / 1e6,
        cold * 1_000.0,
        median_p95(&fresh),
        median_p95(&cached)
    );
    let proc = std::fs::read_to_string(format!("/proc/{}/status", status.running.id())).expect("/proc status");
    let hwm = proc.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or_default();
    println!("  status process: {hwm}");
}

/// One `GET path`: seconds to the end of the answer, and its body.
fn timed_get(address: &str, path: &str) -> (f64, String) {
    let mut stream = TcpStream::connect(address).expect("connecting");
    stream.set_read_timeout(Some(StdDuration::from_secs(60))).expect("a timeout");
    let started = Instant::now();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("sending");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("the whole answer");
    let seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "GET {path}: {}", text.lines().next().unwrap_or_default());
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (seconds, body)
}

fn median_p95(sorted: &[f64]) -> String {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] * 1_000.0;
    format!("{:.0} / {:.0} ms", at(0.5), at(0.95))
}
