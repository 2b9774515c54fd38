//! A report's document stored once: the typed columns of `reports`, plus in `extra` only what they
//! do not rebuild. `report_document` (migration 4) rebuilds the document from a row; this module is
//! its mirror, and the two must agree (tested against the database in `tests/`).
//!
//! What the columns rebuild: every field of a report as this build writes it, times in UTC with up
//! to nine digits of fraction, and `final_url` stored only when it is not the site's own URL. What
//! goes to `extra`: fields this build does not know, a known field whose value the columns do not
//! give back (a shortened `url`'s whole value, a time written with another offset, a certificate
//! expiry below the microsecond, a number written as an integer where a float is kept…).

use serde_json::{Map, Value};
use time::OffsetDateTime;
use websentry_shared::report::Report;

/// `final_url` as stored: `None` when the rebuild gives it back from `url` (see
/// [`rebuilt_final_url`]).
pub fn stored_final_url(report: &Report) -> Option<&str> {
    let answered = report.http_version.is_some();
    match report.final_url.as_deref() {
        Some(url) if answered && url == report.url => None,
        other => other,
    }
}

/// What `report_document` gives for `final_url`: the stored value, else the site's URL when there
/// was a response.
fn rebuilt_final_url(report: &Report) -> Option<&str> {
    stored_final_url(report).or_else(|| report.http_version.is_some().then_some(report.url.as_str()))
}

/// A time split as stored: the microseconds `timestamptz` keeps, and the nanoseconds below them
/// (`None` for none).
pub fn split_nanos(time: OffsetDateTime) -> (OffsetDateTime, Option<i16>) {
    let below = time.nanosecond() % 1000;
    // Cannot fail: the nanosecond only goes down.
    let kept = time.replace_nanosecond(time.nanosecond() - below).unwrap_or(time);
    (kept, (below != 0).then_some(below as i16))
}

/// Whether the columns of `report` rebuild its own serialisation whole: a document that is exactly
/// `report.to_json()` then has no [`extra`], which decoding's fast path relies on (see
/// `batch::decode`). True for what this build's producer writes: times in UTC, no digits below
/// the microsecond where only microseconds are kept, a `final_url` given back as written. Anything
/// else is left to [`extra`].
pub fn rebuilds_own(report: &Report) -> bool {
    let kept_whole = |t: &OffsetDateTime| t.offset().is_utc() && t.nanosecond().is_multiple_of(1000);
    report.v != 0
        && report.checked_at.offset().is_utc()
        && report.tls_expires_at.as_ref().is_none_or(kept_whole)
        && report.tls_chain_expires_at.as_ref().is_none_or(kept_whole)
        && report.final_url.as_deref() == rebuilt_final_url(report)
}

/// The fields of `document` that the columns of `report` do not rebuild, as a JSON object; `None`
/// when they rebuild all of it (the usual case).
pub fn extra(report: &Report, document: &Value) -> Option<String> {
    let Value::Object(fields) = document else {
        // Decoding only gives objects; anything else is kept whole rather than lost.
        return Some(Value::Object(Map::from_iter([(String::new(), document.clone())])).to_string());
    };
    let rebuilt = rebuilt(report);
    let differing: Map<String, Value> = fields
        .iter()
        .filter(|(key, value)| !rebuilt.get(key.as_str()).is_some_and(|again| same(value, again)))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!differing.is_empty()).then(|| Value::Object(differing).to_string())
}

/// The document `report_document` rebuilds from the columns (without `extra`).
fn rebuilt(report: &Report) -> Map<String, Value> {
    let mut fields = match serde_json::to_value(report) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    if report.v == 0 {
        // A record of the Python tool: its four fields only.
        fields.retain(|key, _| matches!(key.as_str(), "url" | "code" | "response_ms" | "regexp_match"));
        return fields;
    }
    fields.insert("final_url".into(), rebuilt_final_url(report).map_or(Value::Null, Value::from));
    // `timestamptz` keeps microseconds; only `checked_at` has a column for the nanoseconds.
    let expiry = report.tls_expires_at.map(|t| split_nanos(t).0);
    let expiry = expiry.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    fields.insert("tls_expires_at".into(), expiry.map_or(Value::Null, Value::from));
    let chain = report.tls_chain_expires_at.map(|t| split_nanos(t).0);
    if let Some(chain) = chain.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()) {
        fields.insert("tls_chain_expires_at".into(), Value::from(chain));
    }
    fields
}

/// JSON equality as `jsonb` sees it: numbers by value (`1` is `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64().is_some_and(|x| y.as_f64() == Some(x)),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(key, value)| y.get(key).is_some_and(|other| same(value, other)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use websentry_shared::report::{ErrorKind, ProbeError};

    use crate::test_fixtures::report;

    fn document(report: &Report) -> Value {
        serde_json::from_slice(&report.to_json()).unwrap()
    }

    #[test]
    fn a_document_this_build_writes_needs_no_extra() {
        let mut failed = report();
        failed.error = Some(ProbeError { kind: ErrorKind::Connect, message: "refused".into() });
        failed.http_version = None;
        failed.final_url = None;
        failed.code = 0;
        let mut redirected = report();
        redirected.final_url = Some("https://example.com/elsewhere".into());
        redirected.tls_expires_at = Some(time::macros::datetime!(2027-01-01 00:00:00 UTC));
        for report in [report(), failed, redirected] {
            assert_eq!(extra(&report, &document(&report)), None, "{report:?}");
        }
    }

    #[test]
    fn what_the_columns_cannot_give_back_is_kept() {
        let report = report();
        let mut doc = document(&report);
        doc["future_field"] = Value::from(7);
        doc["url"] = Value::from("https://example.com/?whole=value");
        let kept: Value = serde_json::from_str(&extra(&report, &doc).unwrap()).unwrap();
        assert_eq!(kept, serde_json::json!({"future_field": 7, "url": "https://example.com/?whole=value"}));
    }

    #[test]
    fn a_null_final_url_with_a_response_is_kept_since_the_rebuild_would_give_the_url() {
        let mut report = report();
        report.final_url = None;
        assert_eq!(stored_final_url(&report), None);
        assert_eq!(extra(&report, &document(&report)).as_deref(), Some(r#"{"final_url":null}"#));
    }

    #[test]
    fn integers_and_floats_of_one_value_are_the_same() {
        let report = report();
        let mut doc = document(&report);
        doc["code"] = serde_json::json!(200.0);
        assert_eq!(extra(&report, &doc), None);
    }

    #[test]
    fn nanoseconds_are_split_below_the_microsecond() {
        let (kept, ns) = split_nanos(time::macros::datetime!(2026-11-29 10:00:00.123456789 UTC));
        assert_eq!((kept.nanosecond(), ns), (123_456_000, Some(789)));
        assert_eq!(split_nanos(kept), (kept, None));
    }
}
