//! Records that are not reports are kept with their reason; the reports around them are archived.

use websentry_tests::Stack;

#[test]
fn undecodable_records_are_kept_with_their_reason_and_the_partition_keeps_flowing() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let good = |url: &str| {
        format!(
            r#"{{"v":1,"id":"{}","url":"{url}","code":200,"response_ms":3.0,"regexp_match":null,"checked_at":"{}","probe":"t","error":null}}"#,
            uuid::Uuid::now_v7(),
            checked_now()
        )
        .into_bytes()
    };
    let legacy = br#"{"url":"http://legacy/","code":503,"response_ms":41.5,"regexp_match":"x"}"#;
    let oversized = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(300 * 1024)).into_bytes();
    let newer = br#"{"v":99,"id":"01a226c2-20b7-74b1-802b-3965cebb9a74","url":"http://x/"}"#.to_vec();
    stack.produce_raw(
        &topic,
        0,
        vec![
            (Some(b"http://a/".to_vec()), Some(good("http://a/"))),
            (Some(b"k".to_vec()), Some(b"not json".to_vec())),
            (Some(b"k".to_vec()), Some(vec![0xff, 0xfe, 0x00])),
            (Some(b"k".to_vec()), None),
            (Some(b"k".to_vec()), Some(Vec::new())),
            (Some(b"k".to_vec()), Some(br#"{"v":1,"url":17}"#.to_vec())),
            (Some(b"k".to_vec()), Some(newer)),
            (Some(b"http://legacy/".to_vec()), Some(legacy.to_vec())),
            (Some(b"k".to_vec()), Some(oversized)),
            (Some(b"http://b/".to_vec()), Some(good("http://b/"))),
        ],
    );

    stack.consumer(&topic, &db).success();

    let urls: Vec<String> = db.column("SELECT url FROM reports ORDER BY kafka_offset");
    assert_eq!(urls, ["http://a/", "http://legacy/", "http://b/"]);
    let reasons: Vec<String> = db.column("SELECT reason FROM rejected_messages ORDER BY kafka_offset");
    let expected = [
        "not a JSON report",
        "not UTF-8",
        "tombstone",
        "empty value",
        "not a JSON report",
        "schema version 99 is newer",
        "over the 262144-byte limit",
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
    for (reason, fragment) in reasons.iter().zip(expected) {
        assert!(reason.contains(fragment), "expected {fragment:?} in {reason:?}");
    }
    let payload: Vec<Vec<u8>> = db.column("SELECT payload FROM rejected_messages WHERE kafka_offset = 2");
    assert_eq!(payload, [vec![0xff, 0xfe, 0x00]], "the payload is kept byte for byte");
}

#[test]
fn a_python_tool_record_is_archived_once_with_an_id_from_its_coordinates_and_its_record_time() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let legacy = br#"{"url":"http://legacy/","code":200,"response_ms":12,"regexp_match":null}"#.to_vec();
    let before = time::OffsetDateTime::now_utc();
    stack.produce_raw(&topic, 0, vec![(Some(b"http://legacy/".to_vec()), Some(legacy))]);
    let after = time::OffsetDateTime::now_utc();
    let consumer = || {
        stack.consumer(&topic, &db).success();
    };

    consumer();
    db.client().batch_execute("DELETE FROM consumer_offsets").expect("forgetting the offsets");
    consumer();

    let topic_ids: Vec<Option<uuid::Uuid>> = db.column("SELECT topic_id FROM consumer_offsets");
    assert!(topic_ids.len() == 1 && topic_ids[0].is_some(), "the topic id is stored: {topic_ids:?}");
    let origin =
        websentry_consumer::batch::Origin { group: "any", topic: &topic, topic_id: topic_ids[0], partition: 0 };
    let expected_id = websentry_consumer::batch::legacy_id(origin, 0);
    let ids: Vec<uuid::Uuid> = db.column("SELECT id FROM reports");
    assert_eq!(ids, [expected_id], "a re-read archives the same id once");
    let row = db
        .client()
        .query_one("SELECT log.stamp, log.code, r.report_version::int FROM log JOIN reports r USING (id)", &[])
        .expect("the log view shows the legacy report");
    let (stamp, code, version): (time::OffsetDateTime, i32, i32) = (row.get(0), row.get(1), row.get(2));
    // The record's timestamp is set by the producing client, in milliseconds.
    let millis = time::Duration::milliseconds(1);
    assert!(
        stamp >= before - millis && stamp <= after + millis,
        "checked_at {stamp} is the record timestamp, between {before} and {after}"
    );
    assert_eq!((code, version), (200, 0));
    assert_eq!(db.count("SELECT count(*) FROM rejected_messages"), 0);
}

#[test]
fn a_report_written_twice_to_kafka_is_archived_once_within_a_batch_and_across_runs() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let report = websentry_tests::sample_report("http://twice/");
    let record = || (Some(b"http://twice/".to_vec()), Some(report.to_json()));
    let other = websentry_tests::sample_report("http://other/");
    stack.produce_raw(&topic, 0, vec![record(), (None, Some(other.to_json())), record()]);
    let consumer = || stack.consumer(&topic, &db).success();

    consumer();
    stack.produce_raw(&topic, 0, vec![record()]);
    let second = consumer();

    let ids: Vec<uuid::Uuid> = db.column("SELECT id FROM reports ORDER BY kafka_offset");
    assert_eq!(ids, [report.id, other.id], "each id once, from its first record");
    let stored = db.count("SELECT sum(next_offset)::bigint FROM consumer_offsets");
    assert_eq!(stored, 4, "every record was read; the second run said:\n{}", second.stderr);
}

/// A current report with `fields` spliced in (each `"name":value`, comma-separated).
fn report_json(url: &str, fields: &str) -> String {
    let comma = if fields.is_empty() { "" } else { "," };
    format!(
        r#"{{"v":1,"id":"{}","url":"{url}","code":200,"response_ms":3.0,"regexp_match":null,"checked_at":"{}","probe":"t"{comma}{fields}}}"#,
        uuid::Uuid::now_v7(),
        checked_now()
    )
}

/// Now, as a report's `checked_at`: a report of a fixed day would one day be past the raw
/// retention, and counted in the rollups only.
fn checked_now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).expect("RFC 3339")
}

/// How the archive must end up holding a record that PostgreSQL would refuse as it came.
enum Kept {
    /// Archived under this URL, and the query (with `$1` = that URL) returns true.
    Archived(&'static str, &'static str),
    /// Rejected, with a reason containing this.
    Rejected(&'static str),
}

/// The values found to stop a partition for ever, each with what the archive keeps of it.
fn untrusted_values() -> Vec<(&'static str, String, Kept)> {
    let long_url = format!("http://long.test/{}", "a".repeat(2800));
    vec![
        (
            "NUL in probe",
            report_json("http://nul-probe/", r#""probe":"p\u0000q""#).replace(r#","probe":"t""#, ""),
            Kept::Archived("http://nul-probe/", "SELECT probe = E'p\\uFFFDq' FROM reports WHERE url = $1"),
        ),
        (
            "NUL in regexp_match",
            report_json("http://nul-match/", "").replace(r#""regexp_match":null"#, r#""regexp_match":"a\u0000b""#),
            Kept::Archived("http://nul-match/", "SELECT regexp_match = E'a\\uFFFDb' FROM reports WHERE url = $1"),
        ),
        (
            "NUL in an unknown field",
            report_json("http://nul-extra/", r#""extra":"x\u0000""#),
            Kept::Archived("http://nul-extra/", "SELECT report_document(r)->>'extra' = E'x\\uFFFD' FROM reports r WHERE url = $1"),
        ),
        (
            "NUL in a Python tool record",
            r#"{"url":"http://nul-legacy/","code":200,"response_ms":5,"regexp_match":"v\u0000"}"#.to_owned(),
            Kept::Archived("http://nul-legacy/", "SELECT regexp_match = E'v\\uFFFD' FROM reports WHERE url = $1"),
        ),
        ("number jsonb cannot hold", report_json("http://huge/", r#""extra":1e999999"#), Kept::Rejected("number out of range")),
        ("lone surrogate", report_json("http://surrogate/", r#""extra":"\ud800""#), Kept::Rejected("not a JSON report")),
        (
            "negative response_ms",
            report_json("http://negative/", "").replace(r#""response_ms":3.0"#, r#""response_ms":-250.5"#),
            Kept::Rejected("response_ms is negative"),
        ),
        (
            "negative timing",
            report_json("http://negative-timing/", r#""timings_ms":{"dns":1.0,"connect":-2.0}"#),
            Kept::Rejected("timings_ms.connect is negative"),
        ),
        (
            "negative response_ms in a Python tool record",
            r#"{"url":"http://negative-legacy/","code":200,"response_ms":-1,"regexp_match":null}"#.to_owned(),
            Kept::Rejected("response_ms is negative"),
        ),
        (
            "response_ms out of range",
            report_json("http://infinite/", "").replace(r#""response_ms":3.0"#, r#""response_ms":1e999"#),
            Kept::Rejected("number out of range"),
        ),
        // Archived, these two would overflow the site's hourly sum of response_ms: the database
        // would refuse the batch, and every try of it after.
        (
            "response_ms near the float limit",
            report_json("http://float-limit/", "").replace(r#""response_ms":3.0"#, r#""response_ms":1.7976931348623157e308"#),
            Kept::Rejected("response_ms is longer than a day"),
        ),
        (
            "response_ms near the float limit again, for the same site and probe",
            report_json("http://float-limit/", "").replace(r#""response_ms":3.0"#, r#""response_ms":1e308"#),
            Kept::Rejected("response_ms is longer than a day"),
        ),
        (
            "response_ms over a day in a Python tool record",
            r#"{"url":"http://day-long-legacy/","code":200,"response_ms":86400001,"regexp_match":null}"#.to_owned(),
            Kept::Rejected("response_ms is longer than a day"),
        ),
        (
            "URL over the index limit",
            report_json(&long_url, ""),
            Kept::Archived(
                "http://long.test/",
                "SELECT length(url) <= 2000 AND report_document(r)->>'url' = $1 || repeat('a', 2800) FROM reports r WHERE url LIKE $1 || '%'",
            ),
        ),
    ]
}

/// Writes each untrusted value between two valid reports with Kafka's own Java client, archives
/// with a one-off run or a daemon, and checks every record is archived or rejected, the offset past
/// them all.
fn untrusted_values_are_archived_or_rejected_and_the_partition_keeps_flowing(daemon: bool) {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let cases = untrusted_values();
    let mut values = vec![("valid-0".to_owned(), report_json("http://valid-0/", ""))];
    for (n, (name, value, _)) in cases.iter().enumerate() {
        values.push(((*name).to_owned(), value.clone()));
        values.push((format!("valid-{}", n + 1), report_json(&format!("http://valid-{}/", n + 1), "")));
    }
    let records: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    stack.produce_with_console_producer(&topic, &records);
    let total = i64::try_from(records.len()).expect("a few records");

    if daemon {
        let running = stack.consumer_daemon(&topic, &db).spawn();
        websentry_tests::eventually("every record read", std::time::Duration::from_secs(60), || {
            db.try_count("SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets") == Some(total)
        });
        running.terminate();
        let output = running.finish(std::time::Duration::from_secs(30));
        assert_eq!(output.code, Some(0), "{}", output.stderr);
    } else {
        stack.consumer(&topic, &db).success();
    }

    let valid = db.count("SELECT count(*) FROM reports WHERE url LIKE 'http://valid-%'");
    assert_eq!(valid, i64::try_from(cases.len()).expect("few") + 1, "every valid report around them is archived");
    let mut client = db.client();
    for (name, _, kept) in &cases {
        match kept {
            Kept::Archived(url, check) => {
                let row = client.query_opt(*check, &[url]).unwrap_or_else(|err| panic!("case {name}: {err}"));
                assert_eq!(row.map(|r| r.get::<_, bool>(0)), Some(true), "case {name}: archived as expected");
            }
            Kept::Rejected(fragment) => {
                let reasons: Vec<String> = client
                    .query("SELECT reason FROM rejected_messages WHERE key = $1", &[&name.as_bytes()])
                    .expect("rejected")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                assert!(
                    reasons.len() == 1 && reasons[0].contains(fragment),
                    "case {name}: expected one reason with {fragment:?}, got {reasons:?}"
                );
            }
        }
    }
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), total, "the offset is past every record");
}

#[test]
fn untrusted_values_never_stop_a_one_off_run() {
    untrusted_values_are_archived_or_rejected_and_the_partition_keeps_flowing(false);
}

#[test]
fn untrusted_values_never_stop_a_daemon() {
    untrusted_values_are_archived_or_rejected_and_the_partition_keeps_flowing(true);
}

#[test]
fn reports_the_database_refuses_are_kept_with_its_message_and_the_rest_of_the_batch_is_archived() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let consumer = stack.consumer(&topic, &db);
    consumer.clone().arg("--migrate-only").success();
    // A rule of the operator's that the consumer knows nothing of: the database alone refuses.
    db.client()
        .batch_execute("ALTER TABLE reports ADD CONSTRAINT no_teapots CHECK (code <> 418)")
        .expect("adding a constraint");
    let codes = [200, 418, 200, 200, 200, 418, 200, 418];
    let records: Vec<_> = codes
        .iter()
        .enumerate()
        .map(|(n, code)| {
            let value =
                report_json(&format!("http://site-{n}/"), "").replace(r#""code":200"#, &format!(r#""code":{code}"#));
            (Some(format!("site-{n}").into_bytes()), Some(value.into_bytes()))
        })
        .collect();
    stack.produce_raw(&topic, 0, records);

    consumer.success();

    let archived: Vec<String> = db.column("SELECT url FROM reports ORDER BY kafka_offset");
    assert_eq!(archived, ["http://site-0/", "http://site-2/", "http://site-3/", "http://site-4/", "http://site-6/"]);
    let rejected: Vec<(i64, String)> = db
        .client()
        .query("SELECT kafka_offset, reason FROM rejected_messages ORDER BY kafka_offset", &[])
        .expect("rejected")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rejected.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 5, 7], "{rejected:?}");
    for (_, reason) in &rejected {
        assert!(reason.contains("refused by the database") && reason.contains("no_teapots"), "{reason}");
    }
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), 8);
}
