//! Records that are not reports are kept with their reason; the reports around them are archived.

use websentry_tests::{Run, Stack};

#[test]
fn undecodable_records_are_kept_with_their_reason_and_the_partition_keeps_flowing() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let good = |url: &str| {
        format!(
            r#"{{"v":1,"id":"{}","url":"{url}","code":200,"response_ms":3.0,"regexp_match":null,"checked_at":"2026-11-29T10:00:00Z","probe":"t","error":null}}"#,
            uuid::Uuid::now_v7()
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

    Run::new("websentry-consumer").envs(stack.kafka_env(&topic)).envs(stack.database_env(&db.name)).success();

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
    stack.produce_raw(&topic, 0, vec![(Some(b"http://legacy/".to_vec()), Some(legacy))]);
    let consumer = || {
        Run::new("websentry-consumer").envs(stack.kafka_env(&topic)).envs(stack.database_env(&db.name)).success();
    };

    consumer();
    db.client().batch_execute("DELETE FROM consumer_offsets").expect("forgetting the offsets");
    consumer();

    let origin = websentry_consumer::batch::Origin { topic: &topic, partition: 0 };
    let expected_id = websentry_consumer::batch::legacy_id(origin, 0);
    let ids: Vec<uuid::Uuid> = db.column("SELECT id FROM reports");
    assert_eq!(ids, [expected_id], "a re-read archives the same id once");
    let row = db
        .client()
        .query_one("SELECT extract(epoch FROM log.stamp)::float8, log.code, r.report_version FROM log JOIN reports r USING (id)", &[])
        .expect("the log view shows the legacy report");
    let (epoch, code, version): (f64, i32, i32) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((epoch, code, version), (0.0, 200, 0), "checked_at is the record timestamp");
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
    let consumer =
        || Run::new("websentry-consumer").envs(stack.kafka_env(&topic)).envs(stack.database_env(&db.name)).success();

    consumer();
    stack.produce_raw(&topic, 0, vec![record()]);
    consumer();

    let ids: Vec<uuid::Uuid> = db.column("SELECT id FROM reports ORDER BY kafka_offset");
    assert_eq!(ids, [report.id, other.id], "each id once, from its first record");
    assert_eq!(db.count("SELECT sum(next_offset)::bigint FROM consumer_offsets"), 4, "every record was read");
}
