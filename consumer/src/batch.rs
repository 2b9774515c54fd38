//! Records fetched from one partition, sorted into reports to archive and records to keep as
//! rejected, with the offset to resume from once they are committed.

use rskafka::record::RecordAndOffset;
use websentry_shared::report::{DecodeError, Report};

/// Values larger than this are rejected instead of archived: a report is a few hundred bytes.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;

/// A report and the record it came from.
#[derive(Debug, Clone)]
pub struct Archivable {
    pub report: Report,
    /// The value as received, unknown fields included.
    pub json: String,
    pub offset: i64,
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

impl Batch {
    /// Sorts fetched records. `start` is the offset they were fetched from, the resume point of an
    /// empty batch.
    pub fn from_records(start: i64, records: Vec<RecordAndOffset>) -> Self {
        let mut batch = Batch { next_offset: start, ..Batch::default() };
        for RecordAndOffset { record, offset } in records {
            batch.next_offset = batch.next_offset.max(offset + 1);
            match decode(record.value.as_deref()) {
                Ok(report) => {
                    let json = String::from_utf8(record.value.unwrap_or_default()).expect("decode checked UTF-8");
                    batch.reports.push(Archivable { report, json, offset });
                }
                Err(reason) => batch.rejected.push(Rejected { offset, key: record.key, payload: record.value, reason }),
            }
        }
        batch
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty() && self.rejected.is_empty()
    }
}

fn decode(value: Option<&[u8]>) -> Result<Report, String> {
    let Some(value) = value else { return Err("tombstone (null value)".into()) };
    if value.len() > MAX_REPORT_BYTES {
        return Err(format!("value of {} bytes is over the {MAX_REPORT_BYTES}-byte limit", value.len()));
    }
    let report = Report::decode(value).map_err(|err: DecodeError| err.to_string())?;
    // PostgreSQL text cannot hold NUL; such a report could never be archived.
    if value.contains(&0) || report.url.contains('\0') {
        return Err("contains a NUL character".into());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rskafka::{chrono::DateTime, record::Record};
    use std::collections::BTreeMap;

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
        let batch = Batch::from_records(42, vec![]);
        assert!(batch.is_empty());
        assert_eq!(batch.next_offset, 42);
    }
}
