//! A report is archived as the document it came in: `report_document` rebuilds it key for key, and
//! `extra` holds only what the columns cannot give back. The consumer reads the bytes its producer
//! writes without building a JSON tree (`batch::decode_own`), anything else through the whole
//! document; both paths are checked here against the database's rebuild.

use time::{macros::offset, OffsetDateTime};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{sample_report, Stack};

/// How a case is expected to be stored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Extra {
    /// The columns rebuild the whole document.
    None,
    /// Something is kept in `extra`.
    Some,
}

fn cases() -> Vec<(&'static str, Vec<u8>, Extra)> {
    let report = |url: &str, change: fn(&mut Report)| {
        let mut report = sample_report(url);
        change(&mut report);
        report
    };
    let own = |name, report: Report| (name, report.to_json(), Extra::None);
    let mut cases = vec![
        own("plain", report("http://plain/", |_| {})),
        own(
            "failed",
            report("http://failed/", |r| {
                r.code = 0;
                (r.http_version, r.final_url, r.body_bytes) = (None, None, None);
                r.error = Some(ProbeError { kind: ErrorKind::Timeout, message: "no answer in 5 s \"é\" 😀".into() });
                (r.inconclusive, r.interval_s) = (true, Some(60));
            }),
        ),
        own(
            "everything",
            report("https://everything/", |r| {
                r.regexp_match = Some("match".into());
                (r.final_url, r.redirects) = (Some("https://everything/moved".into()), 3);
                r.tls_expires_at = Some(OffsetDateTime::from_unix_timestamp(1_900_000_000).expect("a time"));
                r.tls_chain_expires_at =
                    Some(OffsetDateTime::from_unix_timestamp_nanos(1_890_000_000_123_456_000).expect("a time"));
                (r.response_ms, r.timings_ms.tls) = (0.1 + 0.2, Some(1e-7));
                (r.name, r.group) = (Some("Everything".into()), Some("Public".into()));
            }),
        ),
    ];
    let differs = |name, report: Report| (name, report.to_json(), Extra::Some);
    cases.push(differs(
        "checked_at with an offset",
        report("http://offset/", |r| r.checked_at = r.checked_at.to_offset(offset!(+5:30))),
    ));
    cases.push(differs("final_url null after a response", report("http://null-final/", |r| r.final_url = None)));
    cases.push(differs(
        "certificate expiry below the microsecond",
        report("https://nanos/", |r| {
            r.tls_expires_at =
                Some(OffsetDateTime::from_unix_timestamp_nanos(1_900_000_000_000_000_001).expect("a time"));
        }),
    ));
    let unknown = String::from_utf8(sample_report("http://unknown/").to_json()).expect("JSON is UTF-8");
    cases.push(("an unknown field", unknown.replacen('{', r#"{"later":[1,{"a":null}],"#, 1).into_bytes(), Extra::Some));
    let reordered = String::from_utf8(sample_report("http://reordered/").to_json()).expect("JSON is UTF-8");
    let reordered = reordered.replacen(r#""v":1,"#, "", 1);
    let reordered = format!("{},\"v\":1}}", reordered.strip_suffix('}').expect("an object"));
    cases.push(("fields in another order", reordered.into_bytes(), Extra::None));
    cases
}

#[test]
fn every_archived_report_gives_back_the_document_it_came_in() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let cases = cases();
    let records = cases.iter().map(|(name, bytes, _)| (Some(name.as_bytes().to_vec()), Some(bytes.clone()))).collect();
    stack.produce_raw(&topic, 0, records);
    stack.consumer(&topic, &db).success();

    let rejected: Vec<String> = db.column("SELECT convert_from(key, 'UTF8') || ': ' || reason FROM rejected_messages");
    assert!(rejected.is_empty(), "{rejected:?}");
    let mut client = db.client();
    for (name, bytes, extra) in &cases {
        let document = std::str::from_utf8(bytes).expect("JSON is UTF-8");
        let id: serde_json::Value = serde_json::from_str(document).expect("JSON");
        let id: uuid::Uuid = id["id"].as_str().and_then(|id| id.parse().ok()).expect("an id");
        let row = client
            .query_one(
                "SELECT report_document(r) = $2::text::jsonb, report_document(r)::text, extra IS NOT NULL
                 FROM reports r WHERE id = $1",
                &[&id, &document],
            )
            .unwrap_or_else(|err| panic!("case {name}: {err}"));
        let (same, rebuilt, kept): (bool, String, bool) = (row.get(0), row.get(1), row.get(2));
        assert!(same, "case {name}: sent {document}\nrebuilt {rebuilt}");
        assert_eq!(kept, *extra == Extra::Some, "case {name}: extra kept");
    }
}
