//! What PostgreSQL can store, decided when a record is decoded rather than found out when a batch
//! fails: a value the database would refuse must never reach it, or one record would stop its
//! partition for ever.
//!
//! - Text cannot hold NUL (`\u0000`), in a `text` column or in `jsonb`. In free text (`probe`,
//!   `regexp_match`, the error message, unknown fields…) it is replaced by U+FFFD; in `url`, the
//!   site's identity, it makes the record rejected.
//! - An index entry holds at most ~2.7 kB: a `url` or `probe` longer than [`MAX_URL_BYTES`] or
//!   [`MAX_PROBE_BYTES`] is shortened in its column, with a digest of the whole value so that two
//!   long URLs stay apart; the document keeps the whole value. A `name` or `group` longer than the
//!   producer writes (`MAX_LABEL_BYTES`) is shortened the same way, for the pages that show it.
//! - A time whose offset puts it past year 9999 in UTC (`9999-12-31T23:59:59-23:59`) makes the
//!   record rejected; other times are stored in UTC.
//! - A duration (`response_ms`, each of `timings_ms`) that is negative, not finite or longer than
//!   a day ([`MAX_DURATION_MS`]) makes the record rejected: it is no measurement. Kept as it came,
//!   a negative one would count below every real one in the rollups' latency histograms and sums,
//!   and two near `f64::MAX` for one site and hour would overflow the hourly sum: PostgreSQL
//!   refuses that, so the whole batch would fail, again and again.
//! - A stated cadence (`interval_s`) outside 1 s to a day, and a report marked `inconclusive`
//!   without an error, make the record rejected: the producer writes neither, and the coverage of
//!   the archive must not rest on them.
//! - Lone surrogates and numbers out of range are refused by the decoder itself (see
//!   `Report::decode_document`), and the document is written again from its parsed form, so what
//!   reaches `jsonb` is JSON that PostgreSQL reads.
//!
//! The writer still isolates a record that the database refuses for another reason (see `archive`).

use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;
use websentry_shared::report::{Report, INTERVAL_SECONDS, MAX_LABEL_BYTES};

/// Longest `url` kept whole in its indexed column.
pub const MAX_URL_BYTES: usize = 2000;
/// Longest `probe` name kept whole in its column (it is part of keys too).
pub const MAX_PROBE_BYTES: usize = 200;
/// Longest duration kept, in milliseconds: a day. No probe lasts that long (the producer's
/// timeout is at most an hour); with it, an hour's or a day's sum of `response_ms` stays far below
/// what `float8` holds, however many reports it adds.
pub const MAX_DURATION_MS: f64 = 86_400_000.0;
/// Longest rejection reason kept.
pub const MAX_REASON_CHARS: usize = 1000;

/// Namespace of the digests appended to shortened values. Fixed: a shortened URL must stay the
/// same across consumers and versions.
const DIGEST_NAMESPACE: Uuid = Uuid::from_u128(0x9d2e_41c6_0f7a_4b33_a1e8_5c47_d2b9_6e10);

/// What [`make_storable`] changed, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Normalised {
    /// NUL characters replaced, in the report and its document.
    pub nul_replaced: usize,
    /// Columns shortened (`url`, `probe`).
    pub shortened: usize,
}

/// Makes a decoded report and its document storable, or says why the record cannot be.
///
/// # Errors
/// The rejection reason: the `url` holds a NUL character, a time has no UTC time before year
/// 10000, or a duration is negative or not finite.
pub fn make_storable(report: &mut Report, document: &mut Value) -> Result<Normalised, String> {
    if report.url.contains('\0') {
        return Err("url contains a NUL character".into());
    }
    check_durations(report)?;
    // RFC 3339 allows offsets that put a time past year 9999 in UTC, where the database driver's
    // conversion would panic: times are stored in UTC, so convert here and refuse what has none.
    report.checked_at = in_utc(report.checked_at).ok_or("checked_at has no UTC time before year 10000")?;
    if let Some(expires) = report.tls_expires_at {
        report.tls_expires_at = Some(in_utc(expires).ok_or("tls_expires_at has no UTC time before year 10000")?);
    }
    if let Some(expires) = report.tls_chain_expires_at {
        let utc = in_utc(expires).ok_or("tls_chain_expires_at has no UTC time before year 10000")?;
        report.tls_chain_expires_at = Some(utc);
    }
    if let Some(interval) = report.interval_s.filter(|s| !INTERVAL_SECONDS.contains(s)) {
        let (low, high) = (INTERVAL_SECONDS.start(), INTERVAL_SECONDS.end());
        return Err(format!("interval_s {interval} is not within {low} to {high} seconds"));
    }
    if report.inconclusive && report.error.is_none() {
        return Err("inconclusive is true but error is null: only a failed probe can be inconclusive".into());
    }
    let mut changes = Normalised::default();
    let texts = [
        Some(&mut report.probe),
        report.regexp_match.as_mut(),
        report.error.as_mut().map(|e| &mut e.message),
        report.http_version.as_mut(),
        report.final_url.as_mut(),
        report.name.as_mut(),
        report.group.as_mut(),
    ];
    for text in texts.into_iter().flatten() {
        changes.nul_replaced += replace_nul(text);
    }
    changes.nul_replaced += replace_nul_in_document(document);
    let labels = [report.name.as_mut(), report.group.as_mut()].into_iter().flatten().map(|l| (l, MAX_LABEL_BYTES));
    for (text, limit) in
        [(&mut report.url, MAX_URL_BYTES), (&mut report.probe, MAX_PROBE_BYTES)].into_iter().chain(labels)
    {
        if let Some(short) = shortened(text, limit) {
            *text = short;
            changes.shortened += 1;
        }
    }
    Ok(changes)
}

/// Refuses a duration that is not a measurement: negative (a clock stepped back during the probe, or
/// a writer's bug), not finite (JSON has no such number, but a report may come from elsewhere) or
/// longer than a day.
fn check_durations(report: &Report) -> Result<(), String> {
    let timings = report.timings_ms;
    let durations = [
        ("response_ms", Some(report.response_ms)),
        ("timings_ms.dns", timings.dns),
        ("timings_ms.connect", timings.connect),
        ("timings_ms.tls", timings.tls),
        ("timings_ms.ttfb", timings.ttfb),
        ("timings_ms.transfer", timings.transfer),
    ];
    for (name, value) in durations {
        match value {
            Some(ms) if !ms.is_finite() => return Err(format!("{name} is not a finite number of milliseconds")),
            // -0 is zero.
            Some(ms) if ms < 0.0 => return Err(format!("{name} is negative ({ms} ms): not a duration")),
            Some(ms) if ms > MAX_DURATION_MS => {
                return Err(format!("{name} is longer than a day ({ms:e} ms): not a probe's duration"))
            }
            _ => {}
        }
    }
    Ok(())
}

fn in_utc(time: OffsetDateTime) -> Option<OffsetDateTime> {
    time.checked_to_offset(UtcOffset::UTC)
}

/// A rejection reason that the database stores whatever it quotes: no NUL, bounded length.
pub fn reason_text(reason: &str) -> String {
    let mut text: String = reason.chars().take(MAX_REASON_CHARS).collect();
    if text.len() < reason.len() {
        text.push('…');
    }
    replace_nul(&mut text);
    text
}

/// Replaces NUL by U+FFFD; returns how many.
fn replace_nul(text: &mut String) -> usize {
    let count = text.matches('\0').count();
    if count > 0 {
        *text = text.replace('\0', "\u{FFFD}");
    }
    count
}

fn replace_nul_in_document(value: &mut Value) -> usize {
    match value {
        Value::String(text) => replace_nul(text),
        Value::Array(items) => items.iter_mut().map(replace_nul_in_document).sum(),
        Value::Object(fields) => {
            let mut count: usize = fields.values_mut().map(replace_nul_in_document).sum();
            if fields.keys().any(|key| key.contains('\0')) {
                let entries = std::mem::take(fields);
                for (mut key, value) in entries {
                    count += replace_nul(&mut key);
                    fields.insert(key, value);
                }
            }
            count
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// `text` cut to fit `limit` bytes with a digest of the whole of it, or `None` when it fits.
fn shortened(text: &str, limit: usize) -> Option<String> {
    if text.len() <= limit {
        return None;
    }
    let digest = Uuid::new_v5(&DIGEST_NAMESPACE, text.as_bytes()).simple().to_string();
    let suffix = format!("…#{digest}");
    let mut cut = limit - suffix.len();
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(format!("{}{suffix}", &text[..cut]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use websentry_shared::report::Timings;

    fn decoded(json: &str) -> (Report, Value) {
        Report::decode_document(json.as_bytes()).expect("a report")
    }

    const BASE: &str = r#""v":1,"id":"01a226c2-20b7-74b1-802b-3965cebb9a74","code":200,"response_ms":1.5,"checked_at":"2026-11-29T10:00:00Z""#;

    #[test]
    fn nul_in_free_text_becomes_a_replacement_character_in_columns_and_document() {
        let json = format!(
            r#"{{{BASE},"url":"http://a/","probe":"p\u0000","regexp_match":"m\u0000","error":{{"kind":"http","message":"e\u0000"}},"extra":["\u0000"],"k\u0000":1}}"#
        );
        let (mut report, mut document) = decoded(&json);
        let changes = make_storable(&mut report, &mut document).expect("storable");
        assert_eq!(changes.nul_replaced, 8, "3 columns, and 5 places in the document");
        assert_eq!((report.probe.as_str(), report.regexp_match.as_deref()), ("p\u{FFFD}", Some("m\u{FFFD}")));
        assert_eq!(report.error.expect("error").message, "e\u{FFFD}");
        let text = document.to_string();
        assert!(!text.contains("\\u0000"), "{text}");
        assert_eq!(document["k\u{FFFD}"], 1);
    }

    #[test]
    fn a_cadence_outside_a_second_to_a_day_is_rejected_and_one_inside_kept() {
        // (case, interval_s, rejected)
        for (case, interval, rejected) in
            [("zero", "0", true), ("a day", "86400", false), ("over a day", "86401", true), ("a minute", "60", false)]
        {
            let (mut report, mut document) =
                decoded(&format!(r#"{{{BASE},"url":"http://a/","interval_s":{interval}}}"#));
            let outcome = make_storable(&mut report, &mut document);
            assert_eq!(outcome.is_err(), rejected, "{case}: {outcome:?}");
            if let Err(reason) = outcome {
                assert_eq!(reason, format!("interval_s {interval} is not within 1 to 86400 seconds"), "{case}");
            }
        }
        let negative = Report::decode_document(format!(r#"{{{BASE},"url":"http://a/","interval_s":-5}}"#).as_bytes());
        assert!(negative.is_err(), "not a cadence at all: refused by the decoder");
    }

    #[test]
    fn only_a_failed_probe_can_be_inconclusive() {
        let success = format!(r#"{{{BASE},"url":"http://a/","inconclusive":true}}"#);
        let failure =
            format!(r#"{{{BASE},"url":"http://a/","inconclusive":true,"error":{{"kind":"dns","message":"x"}}}}"#);

        let (mut report, mut document) = decoded(&success);
        let reason = make_storable(&mut report, &mut document).expect_err("a success marked inconclusive");
        let (mut failed, mut its_document) = decoded(&failure);

        assert!(reason.starts_with("inconclusive is true but error is null"), "{reason}");
        assert!(make_storable(&mut failed, &mut its_document).is_ok());
        assert!(failed.inconclusive);
    }

    #[test]
    fn a_url_with_nul_is_rejected() {
        let (mut report, mut document) = decoded(&format!(r#"{{{BASE},"url":"http://a/\u0000"}}"#));
        let reason = make_storable(&mut report, &mut document).expect_err("rejected");
        assert!(reason.contains("NUL"), "{reason}");
    }

    #[test]
    fn long_urls_are_shortened_apart_and_the_document_keeps_them_whole() {
        let long = |tail: &str| format!("http://a/{}{tail}", "é".repeat(2000));
        let (mut first, mut first_doc) = decoded(&format!(r#"{{{BASE},"url":"{}"}}"#, long("1")));
        let (mut second, mut second_doc) = decoded(&format!(r#"{{{BASE},"url":"{}"}}"#, long("2")));
        assert_eq!(make_storable(&mut first, &mut first_doc).expect("storable").shortened, 1);
        make_storable(&mut second, &mut second_doc).expect("storable");
        assert!(first.url.len() <= MAX_URL_BYTES, "{}", first.url.len());
        assert_ne!(first.url, second.url, "two long URLs stay apart");
        assert_eq!(first_doc["url"], long("1"));
        let again = shortened(&long("1"), MAX_URL_BYTES).expect("shortened");
        assert_eq!(again, first.url, "the same URL is always shortened the same way");
    }

    #[test]
    fn short_values_are_kept_as_they_are() {
        let (mut report, mut document) = decoded(&format!(r#"{{{BASE},"url":"http://a/","probe":"host-1"}}"#));
        let before = (report.clone(), document.clone());
        assert_eq!(make_storable(&mut report, &mut document), Ok(Normalised::default()));
        assert_eq!((report, document), before);
    }

    #[test]
    fn a_time_past_year_9999_in_utc_is_rejected_and_others_are_kept_in_utc() {
        let at =
            |time: &str| format!(r#"{{{}}}"#, BASE.replace("2026-11-29T10:00:00Z", time) + r#","url":"http://a/""#);
        let (mut report, mut document) = decoded(&at("9999-12-31T23:59:59-23:59"));
        assert!(make_storable(&mut report, &mut document).expect_err("rejected").contains("checked_at"));
        let (mut report, mut document) = decoded(&at("2026-11-29T10:00:00+02:00"));
        make_storable(&mut report, &mut document).expect("storable");
        assert_eq!((report.checked_at.offset(), report.checked_at.hour()), (UtcOffset::UTC, 8));
        let expiring =
            at("2026-11-29T10:00:00Z").replace(r#""url""#, r#""tls_expires_at":"9999-12-31T23:00:00-05:00","url""#);
        let (mut report, mut document) = decoded(&expiring);
        assert!(make_storable(&mut report, &mut document).expect_err("rejected").contains("tls_expires_at"));
    }

    #[test]
    fn a_negative_non_finite_or_day_long_duration_is_rejected_naming_it_and_zero_and_a_day_are_kept() {
        let (report, document) = decoded(&format!(r#"{{{BASE},"url":"http://a/"}}"#));
        type Case = (&'static str, fn(&mut Report), Option<&'static str>);
        let cases: [Case; 12] = [
            ("negative response", |r| r.response_ms = -1.5, Some("response_ms is negative")),
            ("infinite response", |r| r.response_ms = f64::INFINITY, Some("response_ms is not a finite")),
            ("NaN response", |r| r.response_ms = f64::NAN, Some("response_ms is not a finite")),
            ("negative dns", |r| r.timings_ms.dns = Some(-0.001), Some("timings_ms.dns is negative")),
            ("negative transfer", |r| r.timings_ms.transfer = Some(-3.0), Some("timings_ms.transfer is negative")),
            ("largest response", |r| r.response_ms = f64::MAX, Some("response_ms is longer than a day")),
            ("day and a bit", |r| r.response_ms = MAX_DURATION_MS + 0.001, Some("response_ms is longer than a day")),
            ("long ttfb", |r| r.timings_ms.ttfb = Some(1e300), Some("timings_ms.ttfb is longer than a day")),
            ("a day", |r| r.response_ms = MAX_DURATION_MS, None),
            ("zero", |r| r.response_ms = 0.0, None),
            ("minus zero", |r| r.response_ms = -0.0, None),
            ("no timings", |r| r.timings_ms = Timings::default(), None),
        ];
        for (name, change, refused) in cases {
            let mut changed = report.clone();
            change(&mut changed);
            let outcome = make_storable(&mut changed, &mut document.clone());
            match refused {
                Some(fragment) => {
                    let reason = outcome.expect_err(name);
                    assert!(reason.contains(fragment), "case {name}: {reason:?} lacks {fragment:?}");
                }
                None => assert!(outcome.is_ok(), "case {name}: {outcome:?}"),
            }
        }
    }

    #[test]
    fn reasons_are_bounded_and_never_hold_nul() {
        assert_eq!(reason_text("bad `\0`"), "bad `\u{FFFD}`");
        let long = reason_text(&"x".repeat(5000));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
    }
}
