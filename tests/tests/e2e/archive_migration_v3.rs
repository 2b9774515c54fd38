//! A version-3 archive (one table, schema version 3) migrated to the day-partitioned archive of
//! version 4 with every row, document and log line kept: the rebuilt documents are compared key by
//! key with the ones version 3 stored, rows land in a partition per day present, and the rollups
//! count every row.

use std::collections::BTreeMap;

use rand::{rngs::StdRng, Rng};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, macros::offset, Date, Duration, OffsetDateTime};
use uuid::Uuid;
use websentry_consumer::{
    batch::{legacy_id, Origin},
    schema,
};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{midnight, sample_report, seeded_rng, Stack, TestDatabase};

/// The migrations a version-3 consumer applied, as it shipped them.
/// (Their files are pinned by a unit test: see `schema::migrations`.)
fn version_3() -> impl Iterator<Item = (&'static str, &'static str)> {
    schema::migrations::MIGRATIONS[..3].iter().map(|m| (m.name, m.sql))
}

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

    assert_eq!(applied, schema::latest_version() as usize - 3, "every migration after version 3 was missing");
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
