//! `cargo bench -p websentry-tests --bench archive`: the archive at scale, against the targets of
//! schema version 4. Needs only the stack's PostgreSQL (`scripts/stack up`). Prints figures and
//! ratios measured in this run; asserts only what must hold whatever the machine (counts).
//!
//! 1. Storage: `WEBSENTRY_BENCH_REPORTS` (200,000) reports of 1,000 sites every 5 minutes, written
//!    through the consumer's own writer (`Archiver::commit`, batches of 5,000 decoded from their
//!    JSON as fetched records are); bytes per raw report (heap, toast, primary key, url index) and
//!    bytes per rollup row.
//! 2. `site_summary` against raw rows: `WEBSENTRY_BENCH_RAW_SITES` (1,000) sites with one report a
//!    minute over two UTC days, generated in SQL, their rollups computed from them in SQL as
//!    migration 0004 converts version-3 rows; the exact answer (`percentile_disc`) timed against
//!    `site_summary`, and the percentiles of the two compared.
//! 3. `site_summary` at scale: rollups of 10,000 sites over 30 days generated directly (one report
//!    a minute cannot be generated here: 432 M raw rows), for the whole window and for one site.
//!    The raw answer at that scale is extrapolated from part 2, per raw row, and says so.
//! 4. A year: in a database of its own, daily rollups of `WEBSENTRY_BENCH_YEAR_SITES` (10,000)
//!    sites for the 366 UTC days ending today, with a realistic histogram per day, and hourly ones
//!    for the edge days of the windows below: `site_summary` over 365 days (all sites, one site),
//!    the fixed windows whose answers the consumer keeps (24 h, 7 d, 30 d, 90 d, 365 d, ending
//!    now) from the rollups alone and then kept (and kept through `site_uptime`, without the
//!    latency, as the per-site metrics read them), and the rollup storage of a year, from the bytes
//!    per row after `VACUUM`, the kept answers included (two windows of each span per site); last,
//!    migration 15 timed on the year's daily rows, laid out as schema version 14 had them.
//!
//! Each figure with a target is also printed as a line a script can read,
//! `<figure>: <value> (target <target>)` ([`figure`]).

use std::time::{Duration, Instant};

use postgres::Client;
use rand::{rngs::StdRng, Rng};
use time::{macros::datetime, OffsetDateTime};
use websentry_consumer::{
    rollup::BUCKETS,
    schema,
    upkeep::{self, Retention, KEPT_MONTHS, KEPT_WINDOWS},
};
use websentry_shared::report::{ErrorKind, ProbeError, Report, Timings};
// The reports carry past times: none may fall out of the archive for its age here.
use websentry_tests::{figure, median, sample_report, seeded_rng, ReportWriter, Stack, TestDatabase, KEEP_EVERYTHING};

const STORAGE_SITES: usize = 1_000;
const BATCH: usize = 5_000;
const SUMMARY_SITES: i32 = 10_000;
/// The error bound of a percentile from the rollups, for values in [1 ms, 165 s): √1.1 − 1.
const BOUND: f64 = 0.048_808_848;
const RAW_ROWS_AT_SCALE: f64 = 10_000.0 * 30.0 * 1_440.0;

fn main() {
    let reports = env_usize("WEBSENTRY_BENCH_REPORTS", 200_000);
    let raw_sites = env_usize("WEBSENTRY_BENCH_RAW_SITES", 1_000);
    let stack = Stack::get();
    let db = stack.create_database();
    let mut client = db.client();
    schema::migrate(&mut client).expect("migrating");
    let workers: String = client.query_one("SHOW max_parallel_workers_per_gather", &[]).expect("SHOW").get(0);
    println!("archive benchmark: server defaults (max_parallel_workers_per_gather = {workers})");

    storage(&db, reports);
    let raw = raw_against_rollups(&mut client, raw_sites);
    at_scale(&mut client, raw);
    let year = stack.create_database();
    let mut client = year.client();
    schema::migrate(&mut client).expect("migrating");
    a_year(&mut client, env_usize("WEBSENTRY_BENCH_YEAR_SITES", 10_000));
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// Part 1: bytes per report and per rollup row, written by the consumer's writer.
fn storage(db: &TestDatabase, reports: usize) {
    let mut rng = seeded_rng("archive benchmark");
    let start = datetime!(2026-09-01 0:00 UTC);
    let rounds = reports.div_ceil(STORAGE_SITES);
    let mut client = db.client();
    let last = start + Duration::from_secs(300 * rounds as u64);
    client
        .execute("SELECT websentry_create_partitions($1, $2, NULL)", &[&start.date(), &last.date()])
        .expect("creating the partitions");
    let mut writer = ReportWriter::new(client, KEEP_EVERYTHING, BATCH);
    let started = Instant::now();
    for n in 0..reports {
        let checked_at = start + Duration::from_secs(300 * (n / STORAGE_SITES) as u64);
        writer.write(&realistic_report(n % STORAGE_SITES, checked_at, &mut rng));
    }
    let written = writer.finish();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(written, reports as u64, "every report archived");
    assert_eq!(db.count("SELECT sum(probes)::bigint FROM rollup_hourly"), reports as i64, "hourly rollups count each");
    println!(
        "storage: {reports} reports ({STORAGE_SITES} sites every 5 min, ~3 % errors, 30 % https) written by Archiver::commit in batches of {BATCH}: {:.0} reports/s (rollups included)",
        reports as f64 / took
    );
    let sizes: Vec<i64> = db
        .client()
        .query_one(
            "SELECT (SELECT sum(pg_relation_size(relid))::bigint FROM pg_partition_tree('reports')),
                    (SELECT sum(pg_table_size(relid) - pg_relation_size(relid))::bigint FROM pg_partition_tree('reports')),
                    (SELECT sum(pg_relation_size(relid))::bigint FROM pg_partition_tree('reports_pkey')),
                    (SELECT sum(pg_relation_size(relid))::bigint FROM pg_partition_tree('reports_url_checked_at')),
                    (SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('reports'))",
            &[],
        )
        .map(|row| (0..5).map(|i| row.get(i)).collect())
        .expect("sizes");
    let per = |bytes: i64| bytes as f64 / reports as f64;
    println!(
        "  bytes per raw report: {:.0} in all (target <= 450; version 3: 1,059) = heap {:.0} + toast/fsm/vm {:.0} + primary key {:.0} + (url, checked_at) index {:.0}",
        per(sizes[4]),
        per(sizes[0]),
        per(sizes[1]),
        per(sizes[2]),
        per(sizes[3])
    );
    figure("bytes per raw report, indexes included", format!("{:.0} B", per(sizes[4])), "<= 450 B");
    for (table, unit) in [("rollup_hourly", "site-hour"), ("rollup_daily", "site-day")] {
        let row = db
            .client()
            .query_one(&format!("SELECT coalesce((SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('{table}')), pg_total_relation_size('{table}')), count(*) FROM {table}"), &[])
            .expect("rollup size");
        let (bytes, rows): (i64, i64) = (row.get(0), row.get(1));
        println!("  {table}: {rows} rows, {:.0} bytes per {unit} (table and indexes)", bytes as f64 / rows as f64);
    }
}

/// A report as a producer writes it: per-site typical latency with log-normal spread, ~3 %
/// failures, 30 % of the sites on https with a certificate expiry.
fn realistic_report(site: usize, at: OffsetDateTime, rng: &mut StdRng) -> Report {
    let https = site % 10 < 3;
    let scheme = if https { "https" } else { "http" };
    let mut report = sample_report(&format!("{scheme}://site-{site}.example.com/"));
    report.checked_at = at + Duration::from_nanos(rng.random_range(0..60_000_000_000));
    report.probe = "eu-west-1".into();
    let median = 20.0 * 1.1_f64.powi((site % 40) as i32);
    let ms = median * (0.4 * normal(rng)).exp();
    if rng.random::<f64>() < 0.03 {
        report.code = 0;
        report.response_ms = 10_000.0;
        report.error = Some(ProbeError { kind: ErrorKind::Timeout, message: "timed out after 10 s".into() });
        report.timings_ms = Timings { dns: Some(ms * 0.05), connect: None, tls: None, ttfb: None, transfer: None };
        report.http_version = None;
        report.final_url = None;
        report.body_bytes = None;
        return report;
    }
    report.response_ms = ms;
    report.timings_ms = Timings {
        dns: Some(ms * 0.05),
        connect: Some(ms * 0.1),
        tls: https.then_some(ms * 0.15),
        ttfb: Some(ms * 0.5),
        transfer: Some(ms * 0.2),
    };
    report.body_bytes = Some(rng.random_range(2_000..120_000));
    if https {
        report.http_version = Some("HTTP/2".into());
        let expiry = datetime!(2027-01-15 12:00 UTC) + Duration::from_secs(86_400 * (site % 90) as u64);
        report.tls_expires_at = Some(expiry);
    }
    report
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// What part 2 measured of the raw answer: rows read and median seconds.
struct RawAnswer {
    rows: i64,
    seconds: f64,
}

/// Part 2: the exact answer from raw rows against `site_summary` over the same data.
fn raw_against_rollups(client: &mut Client, sites: usize) -> RawAnswer {
    let started = Instant::now();
    client
        .batch_execute(&format!(
            "SELECT websentry_create_partitions('2026-10-01', '2026-10-02', NULL);
             INSERT INTO reports (checked_at, id, response_ms, timing_dns_ms, timing_connect_ms, timing_tls_ms,
                                  timing_ttfb_ms, timing_transfer_ms, tls_expires_at, body_bytes, kafka_offset, code,
                                  kafka_partition, report_version, url, probe, error_kind, error_message, http_version,
                                  kafka_topic)
             SELECT t, gen_random_uuid(), CASE WHEN failed THEN 10000 ELSE ms END, ms * 0.05,
                    CASE WHEN NOT failed THEN ms * 0.1 END, CASE WHEN NOT failed AND https THEN ms * 0.15 END,
                    CASE WHEN NOT failed THEN ms * 0.5 END, CASE WHEN NOT failed THEN ms * 0.2 END,
                    CASE WHEN https THEN timestamptz '2027-01-15 12:00Z' + (s % 90) * interval '1 day' END,
                    CASE WHEN NOT failed THEN 2000 + (u0 * 100000)::bigint END, n, CASE WHEN failed THEN 0 ELSE 200 END,
                    s % 4, 1, CASE WHEN https THEN 'https' ELSE 'http' END || '://site-' || s || '.example.com/',
                    'eu-west-1', CASE WHEN failed THEN 'timeout' END, CASE WHEN failed THEN 'timed out after 10 s' END,
                    CASE WHEN failed THEN NULL WHEN https THEN 'HTTP/2' ELSE 'HTTP/1.1' END, 'bench'
             FROM (SELECT s, t, row_number() OVER () AS n, s % 10 < 3 AS https, random() AS u0, random() < 0.03 AS failed,
                          20 * power(1.1, s % 40) * exp(0.4 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS ms
                   FROM generate_series(0, {}) s,
                        generate_series(timestamptz '2026-10-01Z', '2026-10-02 23:59Z', '1 minute') t) g;
             {}
             ANALYZE reports, rollup_hourly, rollup_daily;",
            sites - 1,
            rollups_from_raw()
        ))
        .expect("generating raw rows and their rollups");
    // A whole day from the daily rollups, 18 hours from the hourly ones.
    let (lo, hi) = (datetime!(2026-10-01 0:00 UTC), datetime!(2026-10-02 18:00 UTC));
    let rows: i64 = client
        .query_one("SELECT count(*) FROM reports WHERE checked_at >= $1 AND checked_at < $2", &[&lo, &hi])
        .expect("count")
        .get(0);
    println!(
        "raw rows: {sites} sites x 2 days at one a minute generated in SQL with their rollups in {:.1} s; window [{lo}, {hi}): {rows} rows",
        started.elapsed().as_secs_f64()
    );
    let exact_sql = "SELECT url, probe, count(*), count(*) FILTER (WHERE error_kind IS NULL),
            percentile_disc(0.5) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE error_kind IS NULL),
            percentile_disc(0.95) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE error_kind IS NULL),
            percentile_disc(0.99) WITHIN GROUP (ORDER BY response_ms) FILTER (WHERE error_kind IS NULL)
        FROM reports WHERE checked_at >= $1 AND checked_at < $2 GROUP BY url, probe ORDER BY url, probe";
    let summary_sql = "SELECT url, probe, probes, successes, p50_ms, p95_ms, p99_ms FROM site_summary($1, $2)";
    let (raw_s, exact) = median_of(3, || client.query(exact_sql, &[&lo, &hi]).expect("exact answer"));
    let (summary_s, summary) = median_of(3, || client.query(summary_sql, &[&lo, &hi]).expect("site_summary"));
    assert_eq!(exact.len(), sites, "one exact row per site");
    assert_eq!(summary.len(), sites, "one site_summary row per site");
    println!(
        "  exact from raw rows (count, percentile_disc x3): {:.3} s; site_summary over their rollups: {:.4} s; raw/site_summary {:.0} x (target >= 100)",
        raw_s,
        summary_s,
        raw_s / summary_s
    );
    accuracy(&exact, &summary);
    RawAnswer { rows, seconds: raw_s }
}

/// Rollups of the raw rows, as migration 0004 computes them from version-3 rows.
fn rollups_from_raw() -> String {
    let buckets = (0..BUCKETS)
        .map(|k| format!("nullif(count(*) FILTER (WHERE error_kind IS NULL AND bucket = {k}), 0)"))
        .collect::<Vec<_>>()
        .join(", ");
    let cols = (0..BUCKETS).map(|k| format!("b{k}")).collect::<Vec<_>>().join(", ");
    let sums = (0..BUCKETS).map(|k| format!("sum(b{k})")).collect::<Vec<_>>().join(", ");
    let counters = "last_checked_at, tls_expires_at, response_ms_sum, response_ms_min, response_ms_max, probes,
                    successes, failures_invalid_url, failures_dns, failures_connect, failures_tls, failures_timeout,
                    failures_http, failures_body_limit, failures_regex_limit";
    format!(
        "INSERT INTO rollup_hourly (hour, url, probe, {counters}, {cols})
         SELECT date_trunc('hour', checked_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', url, probe,
                max(checked_at), min(tls_expires_at),
                sum(response_ms) FILTER (WHERE error_kind IS NULL), min(response_ms) FILTER (WHERE error_kind IS NULL),
                max(response_ms) FILTER (WHERE error_kind IS NULL), count(*), count(*) FILTER (WHERE error_kind IS NULL),
                count(*) FILTER (WHERE error_kind = 'invalid_url'), count(*) FILTER (WHERE error_kind = 'dns'),
                count(*) FILTER (WHERE error_kind = 'connect'), count(*) FILTER (WHERE error_kind = 'tls'),
                count(*) FILTER (WHERE error_kind = 'timeout'), count(*) FILTER (WHERE error_kind = 'http'),
                count(*) FILTER (WHERE error_kind = 'body_limit'), count(*) FILTER (WHERE error_kind = 'regex_limit'),
                {buckets}
         FROM (SELECT *, websentry_bucket(response_ms) AS bucket FROM reports WHERE checked_at >= '2026-10-01Z') r
         GROUP BY 1, 2, 3;
         INSERT INTO rollup_daily (day, url, probe, {counters}, {cols})
         SELECT (hour AT TIME ZONE 'UTC')::date, url, probe, max(last_checked_at), min(tls_expires_at),
                sum(response_ms_sum), min(response_ms_min), max(response_ms_max), sum(probes), sum(successes),
                sum(failures_invalid_url), sum(failures_dns), sum(failures_connect), sum(failures_tls),
                sum(failures_timeout), sum(failures_http), sum(failures_body_limit), sum(failures_regex_limit),
                {sums}
         FROM rollup_hourly WHERE hour >= '2026-10-01Z' GROUP BY 1, 2, 3;"
    )
}

/// Each site's p50/p95/p99 from `site_summary` against `percentile_disc` over the same rows.
fn accuracy(exact: &[postgres::Row], summary: &[postgres::Row]) {
    let (mut worst, mut over, mut compared) = ([0.0_f64; 3], 0, 0);
    for (e, s) in exact.iter().zip(summary) {
        assert_eq!(
            (e.get::<_, String>(0), e.get::<_, i64>(2)),
            (s.get::<_, String>(0), s.get::<_, i64>(2)),
            "same site, same probes"
        );
        assert_eq!(e.get::<_, i64>(3), s.get::<_, i64>(3), "same successes");
        for (q, worst) in worst.iter_mut().enumerate() {
            let (want, got): (f64, f64) = (e.get(4 + q), s.get(4 + q));
            if !(1.0..165_000.0).contains(&want) {
                continue;
            }
            let error = (got - want).abs() / want;
            *worst = worst.max(error);
            compared += 1;
            over += usize::from(error > BOUND);
        }
    }
    println!(
        "  accuracy over {} sites: max relative error p50 {:.3} %, p95 {:.3} %, p99 {:.3} % (bound {:.3} %); {over} of {compared} percentiles over the bound",
        exact.len(),
        worst[0] * 100.0,
        worst[1] * 100.0,
        worst[2] * 100.0,
        BOUND * 100.0
    );
}

/// Part 3: `site_summary` over 10,000 sites and 30 days of generated rollups.
fn at_scale(client: &mut Client, raw: RawAnswer) {
    let started = Instant::now();
    let daily = synthetic_rollups(
        "rollup_daily",
        "day",
        "SELECT d::date FROM generate_series(date '2026-11-01', date '2026-12-01', interval '1 day') d",
        1_440.0,
    );
    let hourly = synthetic_rollups(
        "rollup_hourly",
        "hour",
        "SELECT h FROM generate_series(timestamptz '2026-11-01Z', '2026-11-01 23:00Z', interval '1 hour') h
         UNION ALL SELECT h FROM generate_series(timestamptz '2026-12-01Z', '2026-12-01 23:00Z', interval '1 hour') h",
        60.0,
    );
    client
        .batch_execute(&format!("{daily}; {hourly}; ANALYZE rollup_hourly, rollup_daily;"))
        .expect("generating rollups");
    let buckets: f64 = client
        .query_one(
            &format!(
                "SELECT avg(num_nonnulls(VARIADIC ARRAY[{}]))::float8 FROM rollup_daily WHERE day >= '2026-11-01'",
                (0..BUCKETS).map(|k| format!("b{k}")).collect::<Vec<_>>().join(", ")
            ),
            &[],
        )
        .expect("buckets")
        .get(0);
    println!(
        "rollups of {SUMMARY_SITES} sites generated in {:.1} s: daily 2026-11-01..12-01, hourly for 11-01 and 12-01; {buckets:.1} non-NULL buckets per daily row",
        started.elapsed().as_secs_f64()
    );
    let (lo, hi) = (datetime!(2026-11-01 6:00 UTC), datetime!(2026-12-01 6:00 UTC));
    let (all_s, all) = median_of(3, || {
        client.query_one("SELECT count(*) FROM site_summary($1, $2)", &[&lo, &hi]).expect("site_summary")
    });
    assert_eq!(all.get::<_, i64>(0), i64::from(SUMMARY_SITES), "one row per site");
    let site = "http://site-45.example.com/";
    let (one_s, one) =
        median_of(10, || client.query("SELECT * FROM site_summary($1, $2, $3)", &[&lo, &hi, &site]).expect("one site"));
    assert_eq!(one.len(), 1, "one row for one site");
    let extrapolated = raw.seconds * RAW_ROWS_AT_SCALE / raw.rows as f64;
    println!(
        "site_summary over 30 days [{lo}, {hi}) (29 whole days + 24 edge hours):\n  {SUMMARY_SITES} sites: {:.3} s, median of 3 (target <= 1 s)\n  one site: {:.2} ms, median of 10 (target <= 10 ms)\n  exact from raw rows, extrapolated per raw row to {RAW_ROWS_AT_SCALE:.0} rows (10,000 sites x 30 days x 1/min): {extrapolated:.0} s; extrapolated raw/site_summary {:.0} x (target >= 100)",
        all_s,
        one_s * 1_000.0,
        extrapolated / all_s
    );
    figure(&format!("site_summary, all {SUMMARY_SITES} sites, 30 days"), format!("{all_s:.3} s"), "<= 0.5 s");
    figure("site_summary, one site, 30 days", format!("{:.2} ms", one_s * 1_000.0), "<= 10 ms");
}

/// Part 4: a year of `sites` sites ending now, in a database of its own.
fn a_year(client: &mut Client, sites: usize) {
    let started = Instant::now();
    // Every day of the year ending today; hourly rows for the days the windows below start and
    // end in (the window's edge hours are read from them), up to the current hour.
    let daily = synthetic_rollups_of(
        sites,
        "rollup_daily",
        "day",
        "SELECT d::date FROM generate_series((now() AT TIME ZONE 'UTC')::date - 365, (now() AT TIME ZONE 'UTC')::date, interval '1 day') d",
        1_440.0,
    );
    let hourly = synthetic_rollups_of(
        sites,
        "rollup_hourly",
        "hour",
        "SELECT h FROM unnest(ARRAY[0, 1, 7, 30, 90, 365]) back,
                LATERAL generate_series(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - back * interval '1 day',
                                        least(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - back * interval '1 day' + interval '23 hours',
                                              date_trunc('hour', now())), interval '1 hour') h",
        60.0,
    );
    client.batch_execute(&format!("{daily}; {hourly};")).expect("generating a year of rollups");
    let generated_s = started.elapsed().as_secs_f64();
    client.batch_execute("VACUUM (ANALYZE) rollup_daily, rollup_hourly").expect("vacuum");
    let per_row = |client: &mut Client, table: &str| -> (i64, f64) {
        let row = client
            .query_one(&format!("SELECT count(*), coalesce((SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('{table}')), pg_total_relation_size('{table}')) FROM {table}"), &[])
            .expect("rollup size");
        let (rows, bytes): (i64, i64) = (row.get(0), row.get(1));
        (rows, bytes as f64 / rows as f64)
    };
    let ((daily_rows, daily_b), (hourly_rows, hourly_b)) =
        (per_row(client, "rollup_daily"), per_row(client, "rollup_hourly"));
    println!(
        "a year: rollups of {sites} sites generated in {generated_s:.1} s: {daily_rows} daily rows ({daily_b:.0} B each, table and indexes, after VACUUM), {hourly_rows} hourly rows ({hourly_b:.0} B each)"
    );
    // A year holds 365 daily rows per site, and 24 hourly rows per day of the hourly retention:
    // before schema version 12 the hours were kept as long as the days (400 days by default), now
    // for `WEBSENTRY_ROLLUP_HOURLY_RETENTION_DAYS` (8). Hourly rows here have the buckets of 60
    // probes, daily ones of 1,440.
    let defaults = Retention::default();
    let hourly_days = f64::from(defaults.hourly_days.expect("a default hourly retention"));
    let year_gb = |hours_kept: f64| 10_000.0 * (365.0 * daily_b + 24.0 * hours_kept * hourly_b) / 1e9;
    println!(
        "  before: a year of 10,000 sites with hours kept as long as days: 3.65 M daily + 87.6 M hourly rows, {:.1} GB",
        year_gb(365.0)
    );
    println!(
        "  now: hours kept {hourly_days} days: 3.65 M daily + {:.2} M hourly rows ({:.2} GB daily, {:.2} GB hourly)",
        10_000.0 * 24.0 * hourly_days / 1e6,
        10_000.0 * 365.0 * daily_b / 1e9,
        10_000.0 * 24.0 * hourly_days * hourly_b / 1e9
    );
    let rollups_gb = year_gb(hourly_days);

    // `function` (site_summary, or site_uptime: the same answers without the latency, SQL
    // interface 15) over [from, to) for every site.
    let timed = |client: &mut Client, function: &str, from: &str, to: &str| {
        let sql = format!("SELECT count(*) FROM {function}({from}, {to})");
        let (seconds, row) = median_of(3, || client.query_one(&sql, &[]).expect(function));
        assert_eq!(row.get::<_, i64>(0), sites as i64, "{function}: one row per site over [{from}, {to})");
        seconds
    };
    let between = |client: &mut Client, from: &str, to: &str| timed(client, "site_summary", from, to);
    let all_sites = |client: &mut Client, back: &str| between(client, &format!("now() - interval '{back}'"), "now()");
    // Windows that do not end now (schema version 16 keeps calendar months): a year ending a week
    // ago (its end in the hours of a day kept hourly here, its start before the hourly horizon, in
    // whole days), and the last calendar month.
    let other_windows = [
        (
            "365 days ending 7 days 5 hours ago",
            "now() - interval '372 days 5 hours'",
            "now() - interval '7 days 5 hours'",
            "<= 1 s",
        ),
        (
            "the last calendar month",
            "date_trunc('month', (now() AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'",
            "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            "<= 0.5 s",
        ),
        // What it costs depends on the date: the part of it in the month it starts in is read as
        // that month's sums less its days before the window while they are fewer than its days
        // inside (before the 16th or so of this month), from the daily rows otherwise.
        ("30 days ending 2 days ago", "now() - interval '32 days'", "now() - interval '2 days'", "<= 0.5 s"),
    ];
    // Before the upkeep expires the hours past their retention: each window reads its edge hours.
    for back in KEPT_WINDOWS {
        let seconds = all_sites(client, back);
        println!(
            "  before the hourly retention: the fixed window of {back}, all {sites} sites: {:.0} ms",
            seconds * 1_000.0
        );
    }
    let today = OffsetDateTime::now_utc().date();
    let started = Instant::now();
    // Turns until no more is due: the hourly rows here are only those of the windows' edge days,
    // but every day has a daily row, which the expiry walks a day at a time as it would a real
    // archive's.
    let (mut expired_rows, mut expired_days) = (0, 0);
    loop {
        let upkept = upkeep::run(client, defaults, today).expect("upkeep at the default retention");
        expired_rows += upkept.rollup_rows_expired;
        expired_days += upkept.hours_expired.len();
        if !upkept.expiry_cut_short {
            break;
        }
    }
    // As autovacuum would after a day's expiry; measured here rather than left to race the queries.
    client.batch_execute("VACUUM (ANALYZE) rollup_hourly").expect("vacuum");
    println!(
        "  the upkeep expired {} hourly rows of {} days in {:.1} s; windows that start before {} are taken in whole days there",
        expired_rows,
        expired_days,
        started.elapsed().as_secs_f64(),
        defaults.hourly_first_day(today).expect("a first hourly day")
    );
    let year_s = all_sites(client, "365 days");
    figure(&format!("site_summary, all {sites} sites, 365 days"), format!("{year_s:.3} s"), "<= 1 s");
    // The fixed windows, first read from the rollups alone (as any other window is), then from the
    // answers the upkeep keeps for them (schema version 14).
    let mut from_rollups = Vec::new();
    for back in KEPT_WINDOWS {
        // The year was just measured from the rollups alone.
        let seconds = if back == "365 days" { year_s } else { all_sites(client, back) };
        println!(
            "  the fixed window of {back}, all {sites} sites, from the rollups alone: {:.0} ms",
            seconds * 1_000.0
        );
        from_rollups.push(seconds);
    }
    let mut others_from_rollups = Vec::new();
    for (name, from, to, _) in other_windows {
        let seconds = between(client, from, to);
        println!("  {name}, all {sites} sites, from the rollups alone: {:.0} ms", seconds * 1_000.0);
        others_from_rollups.push(seconds);
    }
    let started = Instant::now();
    let windows = upkeep::keep_windows(client).expect("summing the kept windows");
    println!("  the upkeep summed the kept windows in {:.1} s:", started.elapsed().as_secs_f64());
    // The kept answers are part of the rollups' storage: a consumer keeps each fixed window for
    // the current and the next hour, and 13 calendar months, one row per site each.
    let row = client
        .query_one(
            "SELECT count(*), pg_total_relation_size('rollup_window_sums') + pg_total_relation_size('rollup_windows')
             FROM rollup_window_sums",
            &[],
        )
        .expect("kept answers' size");
    let (kept_rows, kept_bytes): (i64, i64) = (row.get(0), row.get(1));
    let kept_b = kept_bytes as f64 / kept_rows.max(1) as f64;
    let kept_answers = 2 * KEPT_WINDOWS.len() + KEPT_MONTHS;
    let kept_gb = 10_000.0 * kept_answers as f64 * kept_b / 1e9;
    println!(
        "  kept answers: {kept_rows} rows here ({kept_b:.0} B each, tables and index); at most {kept_answers} windows and months of 10,000 sites: {kept_gb:.3} GB"
    );
    println!("  rollups alone {rollups_gb:.2} GB, with the kept answers {:.2} GB", rollups_gb + kept_gb);
    figure("rollup storage, a year of 10000 sites", format!("{:.2} GB", rollups_gb + kept_gb), "<= 3 GB");
    for window in windows.iter().filter(|window| window.outcome != "not yet") {
        println!(
            "    {} asked before {}: {} ({} sums, {:.0} ms)",
            window.span,
            window.hi,
            window.outcome,
            window.sums.unwrap_or(0),
            window.took_ms.unwrap_or(0.0)
        );
    }
    for (back, rollups_s) in KEPT_WINDOWS.iter().zip(from_rollups) {
        let kept: i64 = client
            .query_one(&format!("SELECT count(*) FROM websentry_kept_window(now() - interval '{back}', now())"), &[])
            .expect("websentry_kept_window")
            .get(0);
        assert_eq!(kept, 1, "the answer of {back} is kept");
        let seconds = all_sites(client, back);
        // The targets: 100 ms for the windows the status page and the metrics ask for, 1 s
        // for the year (which any window of a year must also meet: the figure above).
        let target = if *back == "365 days" { "<= 1 s" } else { "<= 100 ms" };
        figure(
            &format!("site_summary, all {sites} sites, the fixed window of {back}"),
            format!("{:.0} ms", seconds * 1_000.0),
            target,
        );
        println!("    {:.1} x faster than from the rollups alone", rollups_s / seconds);
        // The same window as the per-site metrics read it.
        let uptime_s = timed(client, "site_uptime", &format!("now() - interval '{back}'"), "now()");
        figure(
            &format!("site_uptime (the per-site metrics' query), all {sites} sites, the fixed window of {back}"),
            format!("{:.0} ms", uptime_s * 1_000.0),
            target,
        );
        println!("    {:.1} x faster than site_summary's answer with the latency", seconds / uptime_s);
    }
    for ((name, from, to, target), rollups_s) in other_windows.iter().zip(others_from_rollups) {
        let months: i64 = client
            .query_one(
                &format!(
                    "SELECT coalesce(max(array_length(m.ids, 1)), 0)::int8 FROM websentry_summary_bounds({from}, {to}) b,
                     LATERAL websentry_kept_months(b.day_lo, b.day_hi) m"
                ),
                &[],
            )
            .expect("websentry_kept_months")
            .get(0);
        // Months the window starts or ends inside, read as their sums less what is outside it
        // (site_summary's own test, without its guard on how far back months are kept).
        let partial: i64 = client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM websentry_kept_month_around(b.lo) m
                             WHERE m.hi <= b.hi AND b.day_lo - m.lo < m.hi - b.day_lo AND b.hi <= now())
                          + (SELECT count(*) FROM websentry_kept_month_around(b.hi) m
                             WHERE m.lo >= b.lo AND m.hi - b.day_hi < b.day_hi - m.lo AND b.hi <= now())
                     FROM websentry_summary_bounds({from}, {to}) b"
                ),
                &[],
            )
            .expect("websentry_kept_month_around")
            .get(0);
        let seconds = between(client, from, to);
        figure(&format!("site_summary, all {sites} sites, {name}"), format!("{:.0} ms", seconds * 1_000.0), target);
        println!(
            "    {months} whole months kept and {partial} read less their part outside the window, {:.1} x faster than from the rollups alone",
            rollups_s / seconds
        );
    }
    let site = "http://site-45.example.com/";
    for back in ["24 hours", "365 days"] {
        let sql = format!("SELECT * FROM site_summary(now() - interval '{back}', now(), $1)");
        let (seconds, rows) = median_of(10, || client.query(&sql, &[&site]).expect("one site"));
        assert_eq!(rows.len(), 1, "one row for one site");
        figure(&format!("site_summary, one site, {back}"), format!("{:.2} ms", seconds * 1_000.0), "<= 10 ms");
    }
    // Last, as it rebuilds indexes (the figures above are of indexes grown row by row, as a real
    // archive's are): the daily rollup as schema versions 10 to 14 left it (a primary key and
    // rollup_daily_days on the same columns), then converted by migration 15's own statements:
    // its cost on a year of rows, and the bytes per row before and after, both freshly built.
    client
        .batch_execute(
            "ALTER TABLE rollup_daily DROP CONSTRAINT rollup_daily_pkey;
             ALTER TABLE rollup_daily ADD PRIMARY KEY (url, probe, day);
             CREATE INDEX rollup_daily_days ON rollup_daily (url, probe, day) INCLUDE (probes, successes, covered_us, down_us)",
        )
        .expect("the daily rollup of schema version 14");
    let (daily_rows, daily_b_v14) = per_row(client, "rollup_daily");
    let fifteen = schema::migrations::MIGRATIONS.iter().find(|m| m.version == 15).expect("migration 15");
    let started = Instant::now();
    client.batch_execute(&format!("BEGIN; {}; COMMIT", fifteen.sql)).expect("migration 15");
    let converted_s = started.elapsed().as_secs_f64();
    let (_, daily_b_v15) = per_row(client, "rollup_daily");
    println!(
        "  migration 15 converted {daily_rows} daily rows in {converted_s:.1} s: {daily_b_v14:.0} B a daily row before, {daily_b_v15:.0} B after, both with indexes freshly built ({:.2} GB less for a year of 10,000 sites)",
        10_000.0 * 365.0 * (daily_b_v14 - daily_b_v15) / 1e9
    );
}

/// Rollup rows of `SUMMARY_SITES` sites for each time of `times`, `per_row` probes each (3 %
/// failures): ~31 non-NULL buckets around a per-site median bucket, a bell with random noise.
fn synthetic_rollups(table: &str, time: &str, times: &str, per_row: f64) -> String {
    synthetic_rollups_of(SUMMARY_SITES as usize, table, time, times, per_row)
}

/// Rollup rows of `sites` sites for each time of `times`, `per_row` probes each, one a minute
/// (3 % failures, each down for its minute): ~31 non-NULL buckets around a per-site median bucket,
/// a bell with random noise. Written a time at a time, every site's row of one hour (or day) before
/// the next one's, as the consumer writes them while the hours pass: the BRIN indexes on `hour` and
/// `day` then rule out the blocks of other times, as they do in an archive. (Left to the planner,
/// the hourly rows came out a site at a time: reading the last two hours of 10,000 sites scanned all
/// 1.44 M hourly rows, 173 ms against 7.7 ms written hour by hour.)
fn synthetic_rollups_of(sites: usize, table: &str, time: &str, times: &str, per_row: f64) -> String {
    let bucket = |k: usize| {
        format!(
            "CASE WHEN abs({k} - m) <= 15 THEN nullif(round({per_row} * 0.97 * (0.8 + 0.4 * random())
                 * exp(-power({k} - m, 2) / 72.0) / 15.04)::int, 0) END AS b{k}"
        )
    };
    let cols = (0..BUCKETS).map(|k| format!("b{k}")).collect::<Vec<_>>().join(", ");
    let successes = (0..BUCKETS).map(|k| format!("coalesce(b{k}, 0)")).collect::<Vec<_>>().join(" + ");
    format!(
        "INSERT INTO {table} ({time}, url, probe, last_checked_at, tls_expires_at, response_ms_sum, response_ms_min,
                              response_ms_max, probes, successes, failures_timeout, covered_us, down_us, {cols})
         SELECT t, url, 'eu-west-1', t + interval '59 minutes', CASE WHEN https THEN timestamptz '2027-01-15Z' END,
                ok * power(1.1, m - 0.5), power(1.1, m - 16), power(1.1, m + 15), ok + failed, ok, failed,
                (ok + failed)::bigint * 60000000, failed::bigint * 60000000, {cols}
         FROM (SELECT *, {successes} AS ok
               FROM (SELECT t, s % 10 < 3 AS https, CASE WHEN s % 10 < 3 THEN 'https' ELSE 'http' END || '://site-' || s || '.example.com/' AS url,
                            round({per_row} * 0.03 * 2 * random())::int AS failed, m, {buckets}
                     FROM (SELECT s, t FROM generate_series(0, {last}) s, ({times}) tt(t) ORDER BY t, s) st,
                          LATERAL (SELECT 30 + s % 50 AS m) p) g) h",
        buckets = (0..BUCKETS).map(bucket).collect::<Vec<_>>().join(", "),
        last = sites - 1
    )
}

/// The median wall time of `runs` calls, and the last call's result.
fn median_of<T>(runs: usize, mut call: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(call());
        times.push(started.elapsed().as_secs_f64());
    }
    (median(&times), last.expect("at least one run"))
}
