//! Records written by Kafka's own transactional producer (what Kafka Streams, Connect, MirrorMaker 2
//! and Flink write): the transaction markers are read and stepped over, committed records are
//! archived once, aborted ones never, and records of a transaction still open wait until it ends —
//! in one-off runs and in a daemon that stays connected meanwhile.

use std::time::Duration;

use uuid::Uuid;
use websentry_tests::{
    consistently, eventually, http_get, metric, sample_report, Stack, TestDatabase, TransactionalWriter,
};

/// Reports sent in a transaction to one partition: their ids, and the offsets of the first and the
/// last.
struct Sent {
    ids: Vec<Uuid>,
    first: i64,
    last: i64,
}

/// Sends `count` new reports to `partition` in the writer's current transaction.
fn send_reports(writer: &mut TransactionalWriter, partition: i32, count: usize) -> Sent {
    let mut sent = Sent { ids: Vec::with_capacity(count), first: -1, last: -1 };
    for i in 0..count {
        let report = sample_report(&format!("http://txn-{partition}-{i}.test/"));
        let value = String::from_utf8(report.to_json()).expect("a report is UTF-8 JSON");
        sent.last = writer.send(partition, &report.url, &value);
        if i == 0 {
            sent.first = sent.last;
        }
        sent.ids.push(report.id);
    }
    sent
}

/// Writes one report to `partition` outside any transaction (rskafka's plain producer); returns
/// its id.
fn produce_plain_report(stack: &Stack, topic: &str, partition: i32) -> Uuid {
    let report = sample_report(&format!("http://plain-{partition}.test/"));
    stack.produce_raw(topic, partition, vec![(Some(report.url.clone().into_bytes()), Some(report.to_json()))]);
    report.id
}

fn archived_ids(db: &TestDatabase) -> Vec<Uuid> {
    db.column("SELECT id FROM reports ORDER BY id")
}

fn sorted(groups: &[&[Uuid]]) -> Vec<Uuid> {
    let mut ids = groups.concat();
    ids.sort();
    ids
}

fn stored_offset(db: &TestDatabase, partition: i32) -> Option<i64> {
    db.try_count(&format!("SELECT next_offset FROM consumer_offsets WHERE partition = {partition}"))
}

#[test]
fn every_record_of_kafkas_producer_performance_in_transactions_is_read_once_and_the_offsets_pass_the_markers() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    // 2,000 records over about a second in transactions of 10 ms, each ended by a COMMIT marker.
    stack.produce_with_producer_performance(&topic, 2_000, &format!("perf-{topic}"), 10);

    let output = stack.consumer(&topic, &db).success();

    // Its values are counters, not reports: each record is kept as rejected, so that every one can
    // be counted, and no marker is among them.
    let mut payloads: Vec<i64> = db
        .column::<Vec<u8>>("SELECT payload FROM rejected_messages")
        .iter()
        .map(|payload| String::from_utf8_lossy(payload).parse().expect("a counter"))
        .collect();
    payloads.sort_unstable();
    assert_eq!(payloads, (0..2_000).collect::<Vec<i64>>(), "each record once, and nothing else");
    let end = stack.readable_end(&topic, 0);
    println!("ProducerPerformance wrote 2,000 records in {} transactions", end - 2_000);
    assert!(end > 2_000, "markers among the records: the log ends at {end}");
    assert_eq!(stored_offset(&db, 0), Some(end), "the stored offset is past the last COMMIT marker");
    assert!(!output.stderr.contains("nothing readable"), "{}", output.stderr);
}

#[test]
fn a_one_off_run_archives_committed_transactions_never_aborted_ones_and_leaves_open_ones_to_the_next_run() {
    let stack = Stack::get();
    let topic = stack.create_topic(2);
    let db = stack.create_database();
    let mut writer = stack.transactional_writer(&topic, &format!("one-off-{topic}"));
    // Committed: 5 reports in each partition.
    writer.begin();
    let committed = [send_reports(&mut writer, 0, 5).ids, send_reports(&mut writer, 1, 5).ids].concat();
    writer.commit();
    // Aborted: 4 in each partition, with a plain record written amid them in partition 0.
    writer.begin();
    let aborted_before = send_reports(&mut writer, 0, 2);
    let plain = produce_plain_report(stack, &topic, 0);
    let aborted_after = send_reports(&mut writer, 0, 2);
    let aborted_in_1 = send_reports(&mut writer, 1, 4);
    writer.abort();
    let aborted = [aborted_before.ids, aborted_after.ids, aborted_in_1.ids].concat();
    // Open: 3 in partition 0, then a plain record behind them.
    writer.begin();
    let open = send_reports(&mut writer, 0, 3);
    let behind_open = produce_plain_report(stack, &topic, 0);

    let output = stack.consumer(&topic, &db).success();

    let archived = archived_ids(&db);
    assert_eq!(archived, sorted(&[&committed, &[plain]]), "committed and plain records, nothing open");
    assert!(!archived.iter().any(|id| aborted.contains(id)), "no record of the aborted transaction");
    assert_eq!(db.count("SELECT count(*) FROM rejected_messages"), 0, "markers are not records to reject");
    assert_eq!(stored_offset(&db, 0), Some(open.first), "partition 0 stops at the open transaction");
    assert_eq!(stored_offset(&db, 1), Some(aborted_in_1.last + 2), "partition 1 is read past its ABORT marker");
    assert!(!output.stderr.contains("nothing readable"), "{}", output.stderr);
    db.assert_rollups_match_raw();

    writer.commit();
    stack.consumer(&topic, &db).success();

    assert_eq!(
        archived_ids(&db),
        sorted(&[&committed, &[plain], &open.ids, &[behind_open]]),
        "the transaction committed since and the plain record behind it join, once"
    );
    for partition in 0..2 {
        assert_eq!(
            stored_offset(&db, partition),
            Some(stack.readable_end(&topic, partition)),
            "partition {partition}: past its last marker"
        );
    }
    db.assert_rollups_match_raw();
}

#[test]
fn a_daemon_archives_transactions_as_they_commit_never_aborted_ones_and_stays_connected_meanwhile() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let daemon = stack.consumer_daemon(&topic, &db).env("WEBSENTRY_LISTEN", "127.0.0.1:0").spawn();
    let address = daemon.log_field("http endpoint listening", "address", Duration::from_secs(30));
    let metrics = || http_get(&address, "/metrics").map(|r| r.1).unwrap_or_default();
    let kafka_connected = || metric(&metrics(), "websentry_connected{service=\"kafka\"}") == Some(1.0);
    let ready = || http_get(&address, "/readyz").map(|r| r.0) == Some(200);
    eventually("/readyz answers 200", Duration::from_secs(30), ready);
    let mut writer = stack.transactional_writer(&topic, &format!("daemon-{topic}"));

    writer.begin();
    let committed = send_reports(&mut writer, 0, 10);
    writer.commit();
    eventually("the committed transaction archived", Duration::from_secs(30), || {
        archived_ids(&db) == sorted(&[&committed.ids])
    });
    writer.begin();
    let aborted = send_reports(&mut writer, 0, 3);
    let plain = produce_plain_report(stack, &topic, 0);
    let aborted_after = send_reports(&mut writer, 0, 2);
    writer.abort();
    eventually("the offset past the ABORT marker", Duration::from_secs(30), || {
        stored_offset(&db, 0) == Some(aborted_after.last + 2)
    });
    assert_eq!(archived_ids(&db), sorted(&[&committed.ids, &[plain]]), "the plain record amid the aborted ones only");
    assert!(!archived_ids(&db).iter().any(|id| aborted.ids.contains(id) || aborted_after.ids.contains(id)));

    writer.begin();
    let open = send_reports(&mut writer, 0, 4);
    let behind_open = produce_plain_report(stack, &topic, 0);
    consistently("nothing of the open transaction archived, Kafka connected, ready", Duration::from_secs(3), || {
        archived_ids(&db).len() == committed.ids.len() + 1 && kafka_connected() && ready()
    });
    assert_eq!(stored_offset(&db, 0), Some(open.first), "waiting at the open transaction");
    writer.commit();
    eventually("the transaction archived once it committed", Duration::from_secs(30), || {
        archived_ids(&db) == sorted(&[&committed.ids, &[plain], &open.ids, &[behind_open]])
    });
    let end = stack.readable_end(&topic, 0);
    eventually("the offset past the last COMMIT marker, no lag", Duration::from_secs(30), || {
        let body = metrics();
        stored_offset(&db, 0) == Some(end)
            && metric(&body, &format!("websentry_partition_committed_offset{{topic=\"{topic}\",partition=\"0\"}}"))
                == Some(end as f64)
            && metric(&body, &format!("websentry_partition_lag{{topic=\"{topic}\",partition=\"0\"}}")) == Some(0.0)
    });
    assert!(kafka_connected() && ready(), "{}", metrics());

    daemon.terminate();
    let output = daemon.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert!(!output.stderr.contains("service unavailable"), "Kafka was never lost:\n{}", output.stderr);
    db.assert_rollups_match_raw();
}
