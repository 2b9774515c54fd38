//! The report: one JSON document per probe, one Kafka record per report, keyed by the URL.
//!
//! The Python tool wrote `{"url", "code", "response_ms", "regexp_match"}`; those four keep their
//! meaning. Everything else is new in schema version 1. Readers ignore fields they do not know, and
//! refuse a newer `v` than they can read (the consumer keeps such a record as rejected, not dropped).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The schema version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// What one probe of one site found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Schema version ([`SCHEMA_VERSION`] when written by this build).
    pub v: u32,
    /// Unique per probe (UUIDv7): the end-to-end de-duplication key.
    pub id: Uuid,
    /// The site as configured.
    pub url: String,
    /// The final HTTP status, or 0 when no response came.
    pub code: u16,
    /// The whole probe in milliseconds, from the start of name resolution to the end of the body.
    pub response_ms: f64,
    /// Null without a pattern or without a match; else the first match's capture groups joined, or
    /// the whole match when the pattern has no groups.
    pub regexp_match: Option<String>,
    /// When the probe started (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// Which producer ran the probe.
    #[serde(default)]
    pub probe: String,
    /// Why the probe did not get a usable answer; null when it did.
    #[serde(default)]
    pub error: Option<ProbeError>,
    /// How long each phase of the final request took.
    #[serde(default)]
    pub timings_ms: Timings,
    /// The HTTP version of the final response (`HTTP/1.1`, `HTTP/2`), null without a response.
    #[serde(default)]
    pub http_version: Option<String>,
    /// The URL that gave the final response (differs from `url` after redirects).
    #[serde(default)]
    pub final_url: Option<String>,
    /// Redirects followed.
    #[serde(default)]
    pub redirects: u32,
    /// Bytes of body read (up to the body limit).
    #[serde(default)]
    pub body_bytes: Option<u64>,
    /// The `notAfter` of the final `https` server's leaf certificate.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub tls_expires_at: Option<OffsetDateTime>,
    /// The earliest `notAfter` of every certificate the final `https` server presented, leaf and
    /// intermediates (blackbox_exporter's `probe_ssl_earliest_cert_expiry`): an intermediate that
    /// expires first breaks the site as surely as the leaf. Absent for `http`, and from older builds.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub tls_chain_expires_at: Option<OffsetDateTime>,
    /// The period this site is probed on, in seconds ([`INTERVAL_SECONDS`]): the probe stands for
    /// that much time from `checked_at`. Absent when the producer does not know its schedule (a
    /// one-off run without a cadence, the Python tool, older builds): that time's coverage is
    /// unknown, never assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    /// True when the probe failed in a round whose canaries failed too: the producer could not
    /// tell the site from its own network, so the failure counts as unmeasured time, not down
    /// time. The error is kept. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
    /// The site's display name from the sites file (a status page shows it instead of the URL,
    /// which may carry a token in its query). Absent when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The site's group from the sites file (a status page shows or filters by it). Absent when
    /// none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The longest `name` or `group` in bytes that a producer writes (and an archive column keeps).
pub const MAX_LABEL_BYTES: usize = 200;

/// The periods a report may state: a second to a day.
pub const INTERVAL_SECONDS: std::ops::RangeInclusive<u32> = 1..=86_400;

/// Milliseconds per phase of the final request; null for a phase that did not happen (no DNS for an
/// IP address, no TLS for `http`, no transfer before headers…).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Name resolution.
    pub dns: Option<f64>,
    /// TCP connect.
    pub connect: Option<f64>,
    /// TLS handshake.
    pub tls: Option<f64>,
    /// From sending the request to the first byte of the response head.
    pub ttfb: Option<f64>,
    /// From the response head to the end of the body (or the body limit).
    pub transfer: Option<f64>,
}

/// A failed probe: a down site is data, not an error of the producer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The phase in which a probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidUrl,
    Dns,
    Connect,
    Tls,
    Timeout,
    Http,
    BodyLimit,
    RegexLimit,
}

impl ErrorKind {
    /// Every kind, in the order of the archive's `failures_*` columns.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::InvalidUrl,
        ErrorKind::Dns,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::Http,
        ErrorKind::BodyLimit,
        ErrorKind::RegexLimit,
    ];

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http => "http",
            ErrorKind::BodyLimit => "body_limit",
            ErrorKind::RegexLimit => "regex_limit",
        }
    }
}

/// Why a record could not be read as a report. The consumer stores this text beside the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty value")]
    Empty,
    #[error("not UTF-8: {0}")]
    NotUtf8(String),
    #[error("not a JSON report: {0}")]
    Shape(String),
    #[error("schema version {found} is newer than {SCHEMA_VERSION}, the newest this build reads")]
    NewerVersion { found: u64 },
}

impl Report {
    /// The JSON bytes of this report, as published.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = Vec::new();
        self.write_json(&mut json);
        json
    }

    /// Appends the report as JSON to `out` (several reports into one buffer, without a vector each).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Plain structs of strings, numbers and options: serde_json cannot fail on them (non-finite
        // floats become null), and writing into a vector does no I/O.
        serde_json::to_writer(out, self).expect("a report always serialises");
    }

    /// Reads a report from a record's value.
    ///
    /// # Errors
    /// [`DecodeError`] saying what is wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Report, DecodeError> {
        Self::decode_document(bytes).map(|(report, _)| report)
    }

    /// Reads a report and the whole document it came from, unknown fields included. The whole
    /// document is parsed, not only the fields a report has: a value that is not JSON anywhere (a
    /// lone surrogate or a number out of range in an unknown field) is refused too.
    ///
    /// # Errors
    /// [`DecodeError`] saying what is wrong with the bytes.
    pub fn decode_document(bytes: &[u8]) -> Result<(Report, serde_json::Value), DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        let text = std::str::from_utf8(bytes).map_err(|err| DecodeError::NotUtf8(err.to_string()))?;
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|err| DecodeError::Shape(err.to_string()))?;
        // The version first, so that a newer document is refused for the right reason even when
        // its shape changed.
        match document.get("v") {
            Some(serde_json::Value::Number(n)) => match n.as_u64() {
                Some(v) if v > u64::from(SCHEMA_VERSION) => return Err(DecodeError::NewerVersion { found: v }),
                Some(_) => {}
                None => return Err(DecodeError::Shape(format!("field v: {n} is not a version number"))),
            },
            Some(other) => return Err(DecodeError::Shape(format!("field v: {other} is not a version number"))),
            None => return Err(DecodeError::Shape("missing field `v`".into())),
        }
        let report = Report::deserialize(&document).map_err(|err| DecodeError::Shape(err.to_string()))?;
        Ok((report, document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> Report {
        Report {
            v: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            url: "https://example.com/".into(),
            code: 200,
            response_ms: 12.5,
            regexp_match: Some("Example".into()),
            checked_at: datetime!(2026-11-29 10:00:00.25 UTC),
            probe: "host-1".into(),
            error: Some(ProbeError { kind: ErrorKind::BodyLimit, message: "body over 1 MiB".into() }),
            timings_ms: Timings {
                dns: None,
                connect: Some(1.25),
                tls: Some(3.5),
                ttfb: Some(7.0),
                transfer: Some(0.5),
            },
            http_version: Some("HTTP/1.1".into()),
            final_url: Some("https://example.com/en/".into()),
            redirects: 1,
            body_bytes: Some(1024),
            tls_expires_at: Some(datetime!(2027-01-31 23:59:59 UTC)),
            tls_chain_expires_at: None,
            interval_s: None,
            inconclusive: false,
            name: None,
            group: None,
        }
    }

    #[test]
    fn every_error_kind_is_listed_once_with_its_own_name() {
        // That ALL holds every kind is checked where each kind has its column (consumer::rollup).
        let names: std::collections::HashSet<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "{kind:?} in JSON");
        }
    }

    #[test]
    fn a_report_survives_a_json_round_trip() {
        let report = sample();
        assert_eq!(Report::decode(&report.to_json()).unwrap(), report);
    }

    #[test]
    fn the_json_keeps_the_python_fields_and_writes_times_in_rfc3339() {
        let json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        assert_eq!(json["url"], "https://example.com/");
        assert_eq!(json["code"], 200);
        assert_eq!(json["response_ms"], 12.5);
        assert_eq!(json["regexp_match"], "Example");
        assert_eq!(json["checked_at"], "2026-11-29T10:00:00.25Z");
        assert_eq!(json["error"]["kind"], "body_limit");
        assert_eq!(json["timings_ms"]["dns"], serde_json::Value::Null);
        assert_eq!(json["timings_ms"]["connect"], 1.25);
        assert_eq!(json["tls_expires_at"], "2027-01-31T23:59:59Z");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        json["added_in_a_later_minor"] = serde_json::json!({"x": 1});
        assert!(Report::decode(json.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn each_kind_of_bad_record_is_refused_with_its_reason() {
        let newer = {
            let mut json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
            json["v"] = 2.into();
            json.to_string()
        };
        type Case<'a> = (&'a str, &'a [u8], fn(&DecodeError) -> bool);
        let cases: [Case; 8] = [
            ("empty", b"", |e| matches!(e, DecodeError::Empty)),
            ("not utf-8", b"\xff\xfe{}", |e| matches!(e, DecodeError::NotUtf8(_))),
            ("not json", b"hello", |e| matches!(e, DecodeError::Shape(_))),
            ("no version", br#"{"url":"x"}"#, |e| matches!(e, DecodeError::Shape(_))),
            ("wrong shape", br#"{"v":1,"url":3}"#, |e| matches!(e, DecodeError::Shape(_))),
            ("newer version", newer.as_bytes(), |e| matches!(e, DecodeError::NewerVersion { found: 2 })),
            ("lone surrogate in an unknown field", br#"{"v":1,"x":"\ud800"}"#, |e| matches!(e, DecodeError::Shape(_))),
            ("number out of range in an unknown field", br#"{"v":1,"x":1e999999}"#, |e| {
                matches!(e, DecodeError::Shape(_))
            }),
        ];
        for (name, bytes, expected) in cases {
            let err = Report::decode(bytes).expect_err(name);
            assert!(expected(&err), "case {name}: got {err:?}");
        }
    }

    #[test]
    fn error_kinds_serialise_as_their_names() {
        for kind in [
            ErrorKind::InvalidUrl,
            ErrorKind::Dns,
            ErrorKind::Connect,
            ErrorKind::Tls,
            ErrorKind::Timeout,
            ErrorKind::Http,
            ErrorKind::BodyLimit,
            ErrorKind::RegexLimit,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "kind {kind:?}");
        }
    }
}
