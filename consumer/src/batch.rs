//! Records fetched from one partition, sorted into reports to archive and records to keep as
//! rejected, with the offset to resume from once they are committed.
//!
//! Records in the Python tool's format (`url`, `code`, `response_ms`, `regexp_match` and nothing
//! else) are archived too: they have no `id` and no `checked_at`, so the id is derived from the
//! record's Kafka coordinates (a re-read derives the same one) and the time is the record's
//! timestamp.

use rskafka::record::RecordAndOffset;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;
use websentry_shared::report::{DecodeError, Report, SCHEMA_VERSION};

use crate::{
    document,
    storable::{self, Normalised},
};

/// Values larger than this are rejected instead of archived: a report is a few hundred bytes.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;

/// Namespace of the UUIDv5 ids given to legacy records (see [`legacy_id`]). Fixed for
/// ever: changing it would archive a re-read legacy record a second time.
const LEGACY_NAMESPACE: Uuid = Uuid::from_u128(0x3f1c_58e2_9a4b_4c7e_8d21_6b0f_a5e3_c907);

/// The partition a batch was fetched from, and the consumer group that read it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The group the partition's offset is stored under.
    pub group: &'a str,
    pub topic: &'a str,
    /// The topic's id, when the broker gives one: two lives of one topic name give legacy records
    /// at the same offset different ids.
    pub topic_id: Option<Uuid>,
    pub partition: i32,
}

/// A report and the record it came from.
#[derive(Debug, Clone)]
pub struct Archivable {
    /// The report, made storable (see `storable`).
    pub report: Report,
    /// What the columns do not rebuild of the document (see `document`), as JSON that `jsonb`
    /// accepts; `None` when they rebuild all of it.
    pub extra: Option<String>,
    pub offset: i64,
    /// The record's key and value as received, kept in case the database refuses the report.
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// A record that is not a report we can read, and why.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
}

/// What one fetch from one partition turns into.
#[derive(Debug, Default)]
pub struct Batch {
    pub reports: Vec<Archivable>,
    pub rejected: Vec<Rejected>,
    /// The offset after the last record of the batch.
    pub next_offset: i64,
}

/// A fetched record, decoded: a report to archive, or a record to keep as rejected.
pub type Sorted = Result<Archivable, Rejected>;

/// The offset of a decoded record in its partition.
fn offset_of(record: &Sorted) -> i64 {
    match record {
        Ok(report) => report.offset,
        Err(rejected) => rejected.offset,
    }
}

/// Decodes fetched records of `origin`'s partition, in their order: the CPU-bound part of a batch
/// (JSON, normalising, the document's extra fields), which a one-off run does for the next fetch
/// while the current one is written.
pub fn sort(origin: Origin<'_>, records: Vec<RecordAndOffset>) -> Vec<Sorted> {
    let sorted = records.into_iter().map(|RecordAndOffset { record, offset }| {
        let stamp = record_time(&record.timestamp);
        match decode(record.value.as_deref(), || (legacy_id(origin, offset), stamp)) {
            Ok((report, extra)) => {
                let payload = record.value.unwrap_or_default();
                Ok(Archivable { report, extra, offset, key: record.key, payload })
            }
            Err(reason) => {
                Err(Rejected { offset, key: record.key, payload: record.value, reason: storable::reason_text(&reason) })
            }
        }
    });
    sorted.collect()
}

impl Batch {
    /// Decodes and sorts fetched records (see [`sort`]). `start` is the offset they were fetched
    /// from, the resume point of an empty batch.
    pub fn from_records(origin: Origin<'_>, start: i64, records: Vec<RecordAndOffset>) -> Self {
        Self::from_sorted(start, sort(origin, records))
    }

    /// A batch of records decoded already, fetched from `start`.
    pub fn from_sorted(start: i64, records: Vec<Sorted>) -> Self {
        let mut batch = Batch { next_offset: start, ..Batch::default() };
        for record in records {
            batch.next_offset = batch.next_offset.max(offset_of(&record) + 1);
            match record {
                Ok(report) => batch.reports.push(report),
                Err(rejected) => batch.rejected.push(rejected),
            }
        }
        batch
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty() && self.rejected.is_empty()
    }
}

/// The id of a legacy record: UUIDv5 of `topic/partition/offset`, then `/topic-id` when known.
pub fn legacy_id(origin: Origin<'_>, offset: i64) -> Uuid {
    let mut name = format!("{}/{}/{offset}", origin.topic, origin.partition);
    if let Some(id) = origin.topic_id {
        name.push_str(&format!("/{id}"));
    }
    Uuid::new_v5(&LEGACY_NAMESPACE, name.as_bytes())
}

fn record_time(timestamp: &rskafka::chrono::DateTime<rskafka::chrono::Utc>) -> OffsetDateTime {
    let nanos = timestamp.timestamp_nanos_opt().map_or(0, i128::from);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The Python tool's report: exactly its four fields; anything else makes it a wrong shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyReport {
    url: String,
    code: u16,
    response_ms: f64,
    regexp_match: Option<String>,
}

/// Reads a legacy record, or says why it is neither a report nor a legacy record. Only a JSON
/// object without `v` and without `id` is tried as legacy, so a broken current report keeps its own
/// reason.
fn decode_legacy(
    value: &[u8],
    identity: impl FnOnce() -> (Uuid, OffsetDateTime),
) -> Option<Result<(Report, Value), String>> {
    let document: Value = serde_json::from_slice(value).ok()?;
    let object = document.as_object()?;
    if object.contains_key("v") || object.contains_key("id") {
        return None;
    }
    let legacy = match LegacyReport::deserialize(&document) {
        Ok(legacy) => legacy,
        Err(err) => return Some(Err(format!("not a JSON report: no `v`, and not in the Python tool's format: {err}"))),
    };
    let (id, checked_at) = identity();
    let report = Report {
        v: 0,
        id,
        url: legacy.url,
        code: legacy.code,
        response_ms: legacy.response_ms,
        regexp_match: legacy.regexp_match,
        checked_at,
        probe: String::new(),
        error: None,
        timings_ms: Default::default(),
        http_version: None,
        final_url: None,
        redirects: 0,
        body_bytes: None,
        tls_expires_at: None,
        tls_chain_expires_at: None,
        interval_s: None,
        inconclusive: false,
        name: None,
        group: None,
    };
    Some(Ok((report, document)))
}

/// A record's value as a storable report and what its columns do not rebuild of the document, or
/// why it is not one.
fn decode(
    value: Option<&[u8]>,
    identity: impl FnOnce() -> (Uuid, OffsetDateTime),
) -> Result<(Report, Option<String>), String> {
    let Some(value) = value else { return Err("tombstone (null value)".into()) };
    if value.len() > MAX_REPORT_BYTES {
        return Err(format!("value of {} bytes is over the {MAX_REPORT_BYTES}-byte limit", value.len()));
    }
    if let Some(report) = decode_own(value) {
        return Ok((report, None));
    }
    decode_any(value, identity)
}

/// The usual record, decoded without building a JSON tree: exactly the bytes this build's producer
/// writes for a report that needs no normalising and whose columns rebuild it whole. The report
/// is parsed straight from the bytes and written back; when the same bytes come out, the document
/// is the report's own serialisation (no unknown or repeated field, no number or string written
/// another way), so [`document::extra`] would find nothing (see [`document::rebuilds_own`]).
/// `None` for anything else, which [`decode_any`] reads: it gives these bytes the same answer, at
/// about three times the cost (three JSON trees a record).
fn decode_own(value: &[u8]) -> Option<Report> {
    let mut report: Report = serde_json::from_slice(value).ok()?;
    if report.v > SCHEMA_VERSION || !document::rebuilds_own(&report) {
        return None;
    }
    let mut again = Vec::with_capacity(value.len());
    report.write_json(&mut again);
    if again != value {
        return None;
    }
    match storable::make_storable(&mut report, &mut Value::Null) {
        Ok(changes) if changes == Normalised::default() => Some(report),
        _ => None,
    }
}

/// Any record's value, through the whole document: see [`decode`].
fn decode_any(
    value: &[u8],
    identity: impl FnOnce() -> (Uuid, OffsetDateTime),
) -> Result<(Report, Option<String>), String> {
    let (mut report, mut document) = match Report::decode_document(value) {
        Ok(decoded) => decoded,
        Err(err @ DecodeError::Shape(_)) => match decode_legacy(value, identity) {
            Some(legacy) => legacy?,
            None => return Err(err.to_string()),
        },
        Err(err) => return Err(err.to_string()),
    };
    let changes = storable::make_storable(&mut report, &mut document)?;
    if changes != Normalised::default() {
        tracing::debug!(id = %report.id, nul_replaced = changes.nul_replaced, shortened = changes.shortened, "report normalised to be stored");
    }
    let extra = document::extra(&report, &document);
    Ok((report, extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rskafka::{chrono::DateTime, record::Record};
    use std::collections::BTreeMap;

    const ORIGIN: Origin<'static> = Origin { group: "g", topic: "t", topic_id: None, partition: 2 };

    fn record(offset: i64, value: Option<&[u8]>) -> RecordAndOffset {
        RecordAndOffset {
            record: Record {
                key: Some(b"k".to_vec()),
                value: value.map(<[u8]>::to_vec),
                headers: BTreeMap::new(),
                timestamp: DateTime::from_timestamp_nanos(0),
            },
            offset,
        }
    }

    #[test]
    fn good_and_bad_records_are_sorted_and_the_resume_offset_follows_the_last() {
        let good = br#"{"v":1,"id":"01a226c2-20b7-74b1-802b-3965cebb9a74","url":"http://a/","code":200,"response_ms":1.5,"regexp_match":null,"checked_at":"2026-11-29T10:00:00Z"}"#;
        let huge = vec![b' '; MAX_REPORT_BYTES + 1];
        let batch = Batch::from_records(
            ORIGIN,
            7,
            vec![record(7, Some(good)), record(8, None), record(9, Some(b"nope")), record(10, Some(&huge))],
        );
        assert_eq!(batch.reports.len(), 1);
        assert_eq!(batch.reports[0].offset, 7);
        let reasons: Vec<_> = batch.rejected.iter().map(|r| (r.offset, r.reason.as_str())).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].1.contains("tombstone"), "{reasons:?}");
        assert!(reasons[1].1.contains("not a JSON report"), "{reasons:?}");
        assert!(reasons[2].1.contains("over the"), "{reasons:?}");
        assert_eq!(batch.next_offset, 11);
    }

    #[test]
    fn an_empty_fetch_resumes_where_it_started() {
        let batch = Batch::from_records(ORIGIN, 42, vec![]);
        assert!(batch.is_empty());
        assert_eq!(batch.next_offset, 42);
    }

    #[test]
    fn a_python_tool_record_is_archived_with_an_id_from_its_coordinates_and_its_record_time() {
        let legacy = br#"{"url":"http://a/","code":200,"response_ms":12,"regexp_match":null}"#;
        let mut fetched = record(5, Some(legacy));
        fetched.record.timestamp = DateTime::from_timestamp_millis(1_764_410_400_250).unwrap();
        let batch = Batch::from_records(ORIGIN, 5, vec![fetched.clone()]);
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        let report = &batch.reports[0].report;
        assert_eq!((report.v, report.url.as_str(), report.code, report.response_ms), (0, "http://a/", 200, 12.0));
        assert_eq!(report.checked_at.unix_timestamp_nanos(), 1_764_410_400_250_000_000);
        let again = Batch::from_records(ORIGIN, 5, vec![fetched]);
        assert_eq!(again.reports[0].report.id, report.id, "a re-read gives the same id");
        let elsewhere = Batch::from_records(Origin { partition: 3, ..ORIGIN }, 5, vec![record(5, Some(legacy))]);
        assert_ne!(elsewhere.reports[0].report.id, report.id);
        let recreated = Origin { topic_id: Some(Uuid::from_u128(7)), ..ORIGIN };
        let again_in_a_new_topic = Batch::from_records(recreated, 5, vec![record(5, Some(legacy))]);
        assert_ne!(again_in_a_new_topic.reports[0].report.id, report.id, "a topic created again gives new ids");
    }

    #[test]
    fn records_without_v_that_are_not_python_tool_reports_are_rejected() {
        for (name, value) in [
            ("missing code", &br#"{"url":"http://a/"}"#[..]),
            ("extra field", br#"{"url":"http://a/","code":200,"response_ms":1,"regexp_match":null,"x":1}"#),
            ("current report without v", br#"{"id":"01a226c2-20b7-74b1-802b-3965cebb9a74","url":"http://a/"}"#),
            ("array", b"[1,2]"),
        ] {
            let batch = Batch::from_records(ORIGIN, 0, vec![record(0, Some(value))]);
            assert_eq!(batch.rejected.len(), 1, "case {name}");
            assert!(
                batch.rejected[0].reason.contains("not a JSON report"),
                "case {name}: {}",
                batch.rejected[0].reason
            );
        }
    }

    /// Reads `bytes` both ways: the fast path, when it takes them, answers as the general one.
    fn both_ways(name: &str, bytes: &[u8]) -> Option<Report> {
        let identity = || (Uuid::from_u128(1), OffsetDateTime::UNIX_EPOCH);
        let own = decode_own(bytes);
        if let Some(own) = &own {
            let general = decode_any(bytes, identity).unwrap_or_else(|err| panic!("case {name}: {err}"));
            assert_eq!(general, (own.clone(), None), "case {name}: the fast path answers as the general one");
            assert_eq!(own.checked_at.offset(), general.0.checked_at.offset(), "case {name}");
        }
        own
    }

    #[test]
    fn the_producers_own_bytes_are_read_without_a_tree_and_as_the_general_path_reads_them() {
        use time::macros::datetime;
        use websentry_shared::report::{ErrorKind, ProbeError};
        let plain = crate::test_fixtures::report();
        let mut failed = crate::test_fixtures::report();
        failed.code = 0;
        failed.http_version = None;
        failed.final_url = None;
        failed.body_bytes = None;
        failed.error = Some(ProbeError { kind: ErrorKind::Connect, message: "refused \"quoted\" é \u{1F600}".into() });
        failed.inconclusive = true;
        failed.interval_s = Some(60);
        let mut full = crate::test_fixtures::report();
        full.regexp_match = Some("ok".into());
        full.final_url = Some("https://example.com/elsewhere".into());
        full.redirects = 2;
        full.tls_expires_at = Some(datetime!(2027-01-01 00:00:00.123456 UTC));
        full.tls_chain_expires_at = Some(datetime!(2026-12-31 00:00:00 UTC));
        full.timings_ms.connect = Some(1.25);
        full.timings_ms.tls = Some(0.1 + 0.2);
        full.response_ms = 1e-7;
        full.name = Some("Shop".into());
        full.group = Some("Public".into());
        for (name, report) in [("plain", &plain), ("failed", &failed), ("full", &full)] {
            let own = both_ways(name, &report.to_json()).unwrap_or_else(|| panic!("case {name}: not read fast"));
            assert_eq!(&own, report, "case {name}");
        }

        // What the fast path leaves to the general one: each differs from `plain` in one way.
        let json = String::from_utf8(plain.to_json()).unwrap();
        let mut cases: Vec<(&str, String)> = vec![
            ("unknown field", json.replacen("{", "{\"later\":1,", 1)),
            ("field repeated", json.replacen("{", "{\"code\":500,", 1)),
            (
                "another field order",
                format!("{},\"v\":1}}", json.replacen("\"v\":1,", "", 1).strip_suffix('}').unwrap()),
            ),
            ("whitespace", json.replacen(",", ", ", 1)),
            ("escaped character", json.replacen("\"p\"", "\"\\u0070\"", 1)),
            ("integer for a float", json.replacen("12.5", "12", 1)),
            ("newer version", json.replacen("\"v\":1", "\"v\":2", 1)),
            ("version 0", json.replacen("\"v\":1", "\"v\":0", 1)),
        ];
        let mut changed = |name: &'static str, change: fn(&mut Report)| {
            let mut report = plain.clone();
            change(&mut report);
            cases.push((name, String::from_utf8(report.to_json()).unwrap()));
        };
        changed("checked_at with an offset", |r| r.checked_at = r.checked_at.to_offset(time::macros::offset!(+2)));
        changed("final_url null after a response", |r| r.final_url = None);
        changed("certificate expiry below the microsecond", |r| {
            r.tls_expires_at = Some(datetime!(2027-01-01 00:00:00.123456789 UTC));
        });
        changed("chain expiry below the microsecond", |r| {
            r.tls_chain_expires_at = Some(datetime!(2027-01-01 00:00:00.000000001 UTC));
        });
        changed("NUL in the probe", |r| r.probe = "a\0b".into());
        changed("NUL in the url", |r| r.url = "https://a.test/\0".into());
        changed("url over the limit", |r| r.url = format!("https://a.test/{}", "x".repeat(10_000)));
        changed("negative duration", |r| r.response_ms = -1.0);
        changed("interval out of range", |r| r.interval_s = Some(0));
        for (name, bytes) in &cases {
            assert!(
                both_ways(name, bytes.as_bytes()).is_none(),
                "case {name}: read fast, but the general path is needed"
            );
        }
    }
}
