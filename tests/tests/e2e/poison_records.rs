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
            (Some(b"http://b/".to_vec()), Some(good("http://b/"))),
        ],
    );

    Run::new("websentry-consumer").envs(stack.kafka_env(&topic)).envs(stack.database_env(&db.name)).success();

    let urls: Vec<String> = db.column("SELECT url FROM reports ORDER BY kafka_offset");
    assert_eq!(urls, ["http://a/", "http://b/"]);
    let reasons: Vec<String> = db.column("SELECT reason FROM rejected_messages ORDER BY kafka_offset");
    let expected = [
        "not a JSON report",
        "not UTF-8",
        "tombstone",
        "empty value",
        "not a JSON report",
        "schema version 99 is newer",
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
    for (reason, fragment) in reasons.iter().zip(expected) {
        assert!(reason.contains(fragment), "expected {fragment:?} in {reason:?}");
    }
    let payload: Vec<Vec<u8>> = db.column("SELECT payload FROM rejected_messages WHERE kafka_offset = 2");
    assert_eq!(payload, [vec![0xff, 0xfe, 0x00]], "the payload is kept byte for byte");
}
