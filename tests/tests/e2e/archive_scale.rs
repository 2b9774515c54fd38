//! The archive at scale (schema version 4) against the real PostgreSQL and Kafka: a version-3
//! archive converted with every row and document kept, retention that drops whole days and nothing
//! else, late and future reports that are never lost, and `site_summary` answering from the
//! rollups what an exact query over the raw rows answers.

use std::collections::{BTreeMap, BTreeSet};

use rand::{rngs::StdRng, Rng};
use rskafka::{
    chrono::DateTime,
    record::{Record, RecordAndOffset},
};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, macros::offset, Date, Duration, OffsetDateTime, Time};
use uuid::Uuid;
use websentry_consumer::{
    archive::{Archiver, Committed},
    batch::{legacy_id, Batch, Origin},
    schema,
    upkeep::{self, Retention},
};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{sample_report, seeded_rng, Run, Stack, TestDatabase};

/// Reports of any age are archived raw: nothing falls to the rollups only.
const KEEP_EVERYTHING: Retention = Retention { raw_days: None, rollup_days: None };

/// The migrations a version-3 consumer applied, as it shipped them.
/// (Their files are pinned: see `schema::migrations`.)
fn version_3() -> impl Iterator<Item = (&'static str, &'static str)> {
    schema::migrations::MIGRATIONS[..3].iter().map(|m| (m.name, m.sql))
}

fn migrated_database() -> TestDatabase {
    let db = Stack::get().create_database();
    schema::migrate(&mut db.client()).expect("migrating the test database");
    db
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

fn midnight(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_utc()
}

fn partition_of(day: Date) -> String {
    format!("reports_p{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day())
}

/// The partition that holds the report `id`, or `None` when no partition does.
fn located(db: &TestDatabase, id: Uuid) -> Option<String> {
    db.client()
        .query_opt("SELECT tableoid::regclass::text FROM reports WHERE id = $1", &[&id])
        .expect("locating a report")
        .map(|row| row.get(0))
}

// ---- Migration from version 3 --------------------------------------------------------------------

/// A database at schema version 3, as a version-3 consumer left it (see `schema::apply`).
fn version_3_database() -> TestDatabase {
    let db = Stack::get().create_database();
    let mut client = db.client();
    for (name, sql) in version_3() {
        client.batch_execute(sql).unwrap_or_else(|err| panic!("applying migration {name}: {err}"));
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS websentry_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .expect("creating the migrations table");
    for (version, (name, _)) in (1..).zip(version_3()) {
        client
            .execute("INSERT INTO websentry_migrations (version, name) VALUES ($1, $2)", &[&version, &name])
            .expect("recording a migration");
    }
    db
}

const INSERT_V3: &str = "
    INSERT INTO reports (id, url, code, response_ms, regexp_match, checked_at, probe, error_kind, error_message,
                         http_version, body_bytes, report, kafka_topic, kafka_partition, kafka_offset,
                         timing_dns_ms, timing_connect_ms, timing_tls_ms, timing_ttfb_ms, timing_transfer_ms,
                         final_url, redirects, tls_expires_at, report_version)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::jsonb, 'v3-topic', 0, $13,
            $14, $15, $16, $17, $18, $19, $20, $21, $22)";

/// Writes a row as the version-3 consumer did: the columns from the report (its url column as
/// given, shortened or not), the document as received.
fn insert_v3(client: &mut postgres::Client, report: &Report, url_column: &str, document: &str, offset: i64) {
    let t = &report.timings_ms;
    let (error_kind, error_message) = match &report.error {
        Some(error) => (Some(error.kind.as_str()), Some(error.message.as_str())),
        None => (None, None),
    };
    let body_bytes = report.body_bytes.map(|b| i64::try_from(b).expect("small"));
    client
        .execute(
            INSERT_V3,
            &[
                &report.id,
                &url_column,
                &i32::from(report.code),
                &report.response_ms,
                &report.regexp_match,
                &report.checked_at,
                &report.probe,
                &error_kind,
                &error_message,
                &report.http_version,
                &body_bytes,
                &document,
                &offset,
                &t.dns,
                &t.connect,
                &t.tls,
                &t.ttfb,
                &t.transfer,
                &report.final_url,
                &i32::try_from(report.redirects).expect("few"),
                &report.tls_expires_at,
                &i32::try_from(report.v).expect("small"),
            ],
        )
        .expect("inserting a version-3 row");
}

/// A report as a version-3 producer could have sent it: success, redirect, TLS or failure.
fn varied_report(rng: &mut StdRng, n: usize, checked_at: OffsetDateTime) -> Report {
    let https = n.is_multiple_of(3);
    let url = format!("{}://site-{}.test/{}", if https { "https" } else { "http" }, n % 17, "p".repeat(n % 4));
    let mut report = sample_report(&url);
    report.checked_at = checked_at;
    report.probe = ["eu-1", "us-2"][n % 2].into();
    report.response_ms = rng.random_range(0.3..5_000.0);
    report.timings_ms.ttfb = Some(rng.random_range(0.1..100.0));
    if https {
        report.timings_ms.tls = Some(2.75);
        report.tls_expires_at = Some(midnight(checked_at.date()) + Duration::days(40 + (n % 50) as i64));
    }
    match n % 10 {
        0 => {
            report.error = Some(ProbeError { kind: ErrorKind::Connect, message: "connection refused".into() });
            report.code = 0;
            report.http_version = None;
            report.final_url = None;
            report.body_bytes = None;
            report.tls_expires_at = None;
            report.timings_ms.ttfb = None;
            report.timings_ms.transfer = None;
        }
        1 => {
            report.final_url = Some(format!("{url}moved/"));
            report.redirects = 1;
            report.regexp_match = Some("ok".into());
        }
        2 => {
            report.error = Some(ProbeError { kind: ErrorKind::Http, message: "status 503".into() });
            report.code = 503;
        }
        _ => {}
    }
    report
}

/// Where a document differs from `old` at the keys of `old` (numbers compared as f64).
fn differences(path: &str, old: &Value, new: &Value, found: &mut Vec<String>) {
    match (old, new) {
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(rebuilt) => differences(&format!("{path}.{key}"), value, rebuilt, found),
                    None => found.push(format!("{path}.{key}: {value} is missing")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, found);
            }
        }
        (a, b) if a == b => {}
        (a, b) => found.push(format!("{path}: {a} became {b}")),
    }
}

type LogRow = (Uuid, OffsetDateTime, String, i32, f64, Option<String>);

fn log_rows(db: &TestDatabase) -> Vec<LogRow> {
    let rows = db.client().query("SELECT * FROM log ORDER BY id", &[]).expect("reading log");
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))).collect()
}

#[test]
fn migrating_a_version_3_archive_keeps_every_row_document_and_log_line() {
    let db = version_3_database();
    let mut client = db.client();
    let mut rng = seeded_rng("migrating_a_version_3_archive");
    let now = OffsetDateTime::now_utc();
    // Today so far and the two whole days before it.
    let span_ns = (now - midnight(now.date() - Duration::days(2))).whole_nanoseconds() as i64;
    let mut offset = 0;
    for n in 0..300 {
        // One row in each of the three days for sure, even just after midnight.
        let checked_at = match n {
            0..3 => now - Duration::days(n as i64),
            _ => now - Duration::nanoseconds(rng.random_range(0..span_ns)),
        };
        let report = varied_report(&mut rng, n, checked_at);
        insert_v3(&mut client, &report, &report.url, &String::from_utf8(report.to_json()).expect("UTF-8"), offset);
        offset += 1;
    }
    for n in 0..30 {
        // The Python tool's records: four fields, the id and the time from the Kafka record.
        let stamp = now - Duration::milliseconds(rng.random_range(0..span_ns / 1_000_000));
        let url = format!("http://legacy-{}.test/", n % 5);
        let document = format!(r#"{{"url":"{url}","code":200,"response_ms":{},"regexp_match":"ok"}}"#, 10 + n % 7);
        let mut report = sample_report(&url);
        report.v = 0;
        report.id = legacy_id(Origin { group: "g", topic: "v3-topic", topic_id: None, partition: 0 }, offset);
        report.checked_at = stamp;
        report.probe = String::new();
        report.response_ms = f64::from(10 + n % 7);
        report.regexp_match = Some("ok".into());
        report.timings_ms = Default::default();
        (report.http_version, report.final_url, report.body_bytes) = (None, None, None);
        insert_v3(&mut client, &report, &url, &document, offset);
        offset += 1;
    }
    let mut unknown = sample_report("http://unknown-field.test/");
    unknown.checked_at = now - Duration::hours(1);
    let mut document: Value = serde_json::from_slice(&unknown.to_json()).expect("JSON");
    document["region"] = serde_json::json!({"name": "eu-west", "racks": [1, 2.5, null]});
    insert_v3(&mut client, &unknown, &unknown.url, &document.to_string(), offset);
    let long_url = format!("http://long.test/{}", "a".repeat(2500));
    let mut long = sample_report(&long_url);
    long.checked_at = now - Duration::hours(2);
    let shortened = format!("http://long.test/{}~0123abcd", "a".repeat(1900));
    insert_v3(&mut client, &long, &shortened, &String::from_utf8(long.to_json()).expect("UTF-8"), offset + 1);
    // A time written with another offset than UTC: the column cannot say so, `extra` must.
    let mut elsewhere = sample_report("http://offset.test/");
    elsewhere.checked_at = now - Duration::hours(3);
    let mut document: Value = serde_json::from_slice(&elsewhere.to_json()).expect("JSON");
    document["checked_at"] = elsewhere.checked_at.to_offset(offset!(+2)).format(&Rfc3339).expect("RFC 3339").into();
    insert_v3(&mut client, &elsewhere, &elsewhere.url, &document.to_string(), offset + 2);

    let rows_before = db.count("SELECT count(*) FROM reports");
    let log_before = log_rows(&db);
    let documents_before: Vec<(Uuid, String)> = client
        .query("SELECT id, report::text FROM reports ORDER BY id", &[])
        .expect("reading the documents")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let applied = schema::migrate(&mut client).expect("migrating from version 3");

    assert_eq!(applied, 2, "migrations 4 and 5 were missing");
    assert_eq!(rows_before, 333);
    assert_eq!(db.count("SELECT count(*) FROM reports"), rows_before, "every row is kept");
    // The rebuild is checked where it needs more than the columns, not only where it is easy.
    let extra = db.count("SELECT count(*) FROM reports WHERE extra IS NOT NULL");
    assert!(extra >= 3, "the unknown field, the shortened url and the offset time are in extra: {extra} rows");
    let nanos = db.count("SELECT count(*) FROM reports WHERE checked_at_ns IS NOT NULL");
    assert!(nanos > 0, "times with nanoseconds below the microsecond are among the rows");
    assert!(log_before == log_rows(&db), "the log view shows the same rows, column for column");
    let documents_after: BTreeMap<Uuid, String> = client
        .query("SELECT id, report_document(r)::text FROM reports r", &[])
        .expect("rebuilding the documents")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut found = Vec::new();
    for (id, old) in &documents_before {
        let old: Value = serde_json::from_str(old).expect("old document");
        match documents_after.get(id) {
            Some(new) => differences(&id.to_string(), &old, &serde_json::from_str(new).expect("JSON"), &mut found),
            None => found.push(format!("{id}: no document")),
        }
    }
    assert!(found.is_empty(), "{} differences from the version-3 documents:\n{}", found.len(), found.join("\n"));
    let whole: Option<String> = client
        .query_one("SELECT report_document(r)->>'url' FROM reports r WHERE url = $1", &[&shortened])
        .expect("long")
        .get(0);
    assert_eq!(whole.as_deref(), Some(long_url.as_str()), "the shortened url's document keeps it whole");
    db.assert_rollups_match_raw();
    assert_eq!(db.count("SELECT sum(probes)::bigint FROM rollup_daily"), rows_before, "every row is in the rollups");
    let days: Vec<Date> = db.column("SELECT DISTINCT (checked_at AT TIME ZONE 'UTC')::date FROM reports ORDER BY 1");
    let partitions: Vec<Date> = db.column("SELECT websentry_report_days()");
    assert_eq!(days.len(), 3, "the rows span three UTC days");
    assert_eq!(partitions, days, "one day partition per day present");
    assert_eq!(db.count("SELECT count(*) FROM reports_default"), 0, "every row is in its day");
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relname = 'reports_v3'"), 0, "reports_v3 is dropped");
}

// ---- Retention -----------------------------------------------------------------------------------

/// A minimal report row at `checked_at`; returns its id.
fn insert_row(client: &mut postgres::Client, checked_at: OffsetDateTime) -> Uuid {
    let id = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO reports (checked_at, id, response_ms, kafka_offset, code, kafka_partition, report_version,
                                  url, probe, kafka_topic)
             VALUES ($1, $2, 5, 0, 200, 0, 1, 'http://kept.test/', 'p', 't')",
            &[&checked_at, &id],
        )
        .expect("inserting a report row");
    id
}

#[test]
fn retention_drops_exactly_the_days_before_it_and_old_rows_of_the_default_partition() {
    let db = migrated_database();
    let mut client = db.client();
    let today = today();
    let day = |n: i64| today + Duration::days(n);
    client.query("SELECT websentry_create_partitions($1, $2, NULL)", &[&day(-40), &day(2)]).expect("creating days");
    let with_rows = [-40, -35, -31, -30, -1, 0, 2];
    for n in with_rows {
        insert_row(&mut client, midnight(day(n)) + Duration::hours(12));
    }
    let stray = insert_row(&mut client, midnight(day(-45)) + Duration::hours(12));
    assert_eq!(located(&db, stray).as_deref(), Some("reports_default"), "a day without a partition");

    let retention = Retention { raw_days: Some(31), rollup_days: Some(400) };
    let upkept = upkeep::run(&mut client, retention, today).expect("upkeep");

    assert!(!upkept.skipped && upkept.postponed.is_empty(), "{upkept:?}");
    assert_eq!(upkept.dropped, (-40..=-31).map(day).collect::<Vec<_>>(), "the days before today-30, each once");
    assert_eq!(upkept.created, Vec::<Date>::new(), "every day up to today+2 existed");
    let days: Vec<Date> = db.column("SELECT websentry_report_days()");
    assert_eq!(days, (-30..=2).map(day).collect::<Vec<_>>(), "today-30 ..= today+2 are kept");
    let per_day: Vec<(Date, i64)> = client
        .query("SELECT (checked_at AT TIME ZONE 'UTC')::date, count(*) FROM reports GROUP BY 1 ORDER BY 1", &[])
        .expect("rows per day")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(per_day, [(day(-30), 1), (day(-1), 1), (day(0), 1), (day(2), 1)], "the kept days keep their rows");
    assert_eq!(located(&db, stray), None, "an old row of the default partition goes with its days");

    let again = upkeep::run(&mut client, retention, today).expect("upkeep again");
    assert_eq!((again.dropped, again.created, again.rollup_rows_expired), (vec![], vec![], 0), "nothing left to do");
}

#[test]
fn rollup_retention_expires_the_hours_and_days_before_its_first_day_only() {
    let db = migrated_database();
    let mut client = db.client();
    let today = today();
    let day = |n: i64| today + Duration::days(n);
    let hours = [midnight(day(-500)), midnight(day(-399)) - Duration::hours(1), midnight(day(-399)), midnight(day(0))];
    for (n, hour) in hours.iter().enumerate() {
        let url = format!("http://rollup-{n}.test/");
        client
            .execute(
                "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes)
                 VALUES ($1, $2, 'p', $1, 1, 1)",
                &[hour, &url],
            )
            .expect("an hourly rollup");
        client
            .execute(
                "INSERT INTO rollup_daily (day, url, probe, last_checked_at, probes, successes)
                 VALUES ($1, $2, 'p', $3, 1, 1)",
                &[&hour.date(), &url, hour],
            )
            .expect("a daily rollup");
    }

    let retention = Retention { raw_days: None, rollup_days: Some(400) };
    let upkept = upkeep::run(&mut client, retention, today).expect("upkeep");

    assert_eq!(upkept.rollup_rows_expired, 4, "two hours and two days before today-399: {upkept:?}");
    let kept_hours: Vec<OffsetDateTime> = db.column("SELECT hour FROM rollup_hourly ORDER BY hour");
    assert_eq!(kept_hours, hours[2..], "hours from today-399 on are kept");
    let kept_days: Vec<Date> = db.column("SELECT day FROM rollup_daily ORDER BY day");
    assert_eq!(kept_days, [day(-399), day(0)], "days from today-399 on are kept");
    assert_eq!(upkept.dropped, Vec::<Date>::new(), "raw reports kept for ever drop no day");
}

// ---- Late, future, old and repeated reports through Kafka ------------------------------------------

fn report_at(url: &str, checked_at: OffsetDateTime) -> Report {
    let mut report = sample_report(url);
    report.checked_at = checked_at;
    report
}

fn record(report: &Report) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (Some(report.url.clone().into_bytes()), Some(report.to_json()))
}

/// Probes in the hourly and daily rollups of the report's url, hour and day.
fn rolled_up(db: &TestDatabase, report: &Report) -> (i64, i64) {
    let mut client = db.client();
    let hourly: i64 = client
        .query_one(
            "SELECT coalesce(sum(probes), 0)::bigint FROM rollup_hourly
             WHERE url = $1 AND hour = date_trunc('hour', $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            &[&report.url, &report.checked_at],
        )
        .expect("hourly probes")
        .get(0);
    let daily: i64 = client
        .query_one(
            "SELECT coalesce(sum(probes), 0)::bigint FROM rollup_daily WHERE url = $1 AND day = $2",
            &[&report.url, &report.checked_at.date()],
        )
        .expect("daily probes")
        .get(0);
    (hourly, daily)
}

#[test]
fn late_future_old_and_repeated_reports_are_archived_once_or_counted_and_never_lost() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let consumer = Run::new("websentry-consumer").envs(stack.kafka_env(&topic)).envs(stack.database_env(&db.name));
    clear_of_midnight();
    consumer.clone().arg("--migrate-only").success();
    let now = OffsetDateTime::now_utc();
    let yesterday = now.date() - Duration::days(1);
    // Yesterday has no partition: its reports arrive late, after its day was (as if) never created.
    db.client().batch_execute(&format!("DROP TABLE IF EXISTS {}", partition_of(yesterday))).expect("dropping a day");
    let late = report_at("http://late.test/", now - Duration::days(1));
    let future = report_at("http://future.test/", now + Duration::days(400));
    let twice = report_at("http://twice.test/", now);
    stack.produce_raw(&topic, 0, vec![record(&late), record(&future), record(&twice), record(&twice)]);

    consumer.success();

    assert_eq!(located(&db, late.id).as_deref(), Some("reports_default"), "a day without partition");
    assert_eq!(located(&db, future.id).as_deref(), Some("reports_default"), "400 days ahead");
    assert_eq!(db.count("SELECT count(*) FROM reports WHERE url = 'http://twice.test/'"), 1, "a repeat once");
    assert_eq!(rolled_up(&db, &twice), (1, 1), "a repeat is counted once in the rollups");
    assert_eq!(rolled_up(&db, &future), (1, 1), "a future report is counted in its hour and day");
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), 4, "the offset is past every record");
    db.assert_rollups_match_raw();

    // 60 days old: past the default retention of 31 days; sent twice in one batch.
    let old = report_at("http://old.test/", now - Duration::days(60));
    stack.produce_raw(&topic, 0, vec![record(&old), record(&old)]);
    let second = consumer.success();

    assert_eq!(located(&db, late.id), Some(partition_of(yesterday)), "upkeep at start moved it into its day");
    assert_eq!(located(&db, future.id).as_deref(), Some("reports_default"), "still waiting for its day");
    assert_eq!(located(&db, old.id), None, "past the retention: no raw row");
    assert_eq!(rolled_up(&db, &old), (1, 1), "past the retention: counted once in its hour and day");
    assert!(
        second.stderr.contains("reports older than the retention, counted in the rollups only"),
        "the run says so:\n{}",
        second.stderr
    );
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), 6, "the offset is past the old reports");
    assert!(
        second.stderr.contains("reports wait in the default partition") && second.stderr.contains("reports=1"),
        "the run says one report waits for its day:\n{}",
        second.stderr
    );
    assert_eq!(db.count("SELECT count(*) FROM reports"), 3);
}

/// Returns when the UTC day has more than two minutes left, waiting for the next one if need be:
/// the consumer's upkeep works on its own clock's day, which must be the test's day from start to
/// end.
fn clear_of_midnight() {
    let now = OffsetDateTime::now_utc();
    let left = midnight(now.date() + Duration::days(1)) - now;
    if left < Duration::minutes(2) {
        std::thread::sleep((left + Duration::seconds(1)).unsigned_abs());
    }
}

// ---- site_summary --------------------------------------------------------------------------------

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
    let db = migrated_database();
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
