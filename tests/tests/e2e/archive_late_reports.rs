//! Reports through Kafka and the consumer binary that do not fit today's partition: late ones (for a
//! day without partition), future ones, ones past the retention, and repeats. Each is archived once
//! or counted in the rollups, and never lost. The reports' days are chosen so that the test means
//! the same whichever day the consumer's clock says, also when midnight passes during the test.

use std::collections::BTreeMap;

use rskafka::{
    chrono::DateTime,
    record::{Record, RecordAndOffset},
};
use time::{Duration, OffsetDateTime};
use websentry_consumer::{
    archive::{Archiver, Committed},
    batch::{Batch, Origin},
    upkeep::Retention,
};
use websentry_shared::report::Report;
use websentry_tests::{day_partition, sample_report, Stack, TestDatabase};

/// The age of the late report: its day has no partition whichever day the consumer's clock says
/// (upkeep creates today and the days ahead, and days whose reports wait in the default partition),
/// and is well within the default retention of 31 days.
const LATE: Duration = Duration::days(5);

fn report_at(url: &str, checked_at: OffsetDateTime) -> Report {
    let mut report = sample_report(url);
    report.checked_at = checked_at;
    report
}

fn record(report: &Report) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (Some(report.url.clone().into_bytes()), Some(report.to_json()))
}

/// Probes in the hourly and daily rollups of the report's url, hour and day.
fn rolled_up(db: &TestDatabase, report: &Report) -> (i64, i64) {
    let mut client = db.client();
    let hourly: i64 = client
        .query_one(
            "SELECT coalesce(sum(probes), 0)::bigint FROM rollup_hourly
             WHERE url = $1 AND hour = date_trunc('hour', $2::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            &[&report.url, &report.checked_at],
        )
        .expect("hourly probes")
        .get(0);
    let daily: i64 = client
        .query_one(
            "SELECT coalesce(sum(probes), 0)::bigint FROM rollup_daily WHERE url = $1 AND day = $2",
            &[&report.url, &report.checked_at.date()],
        )
        .expect("daily probes")
        .get(0);
    (hourly, daily)
}

#[test]
fn late_future_old_and_repeated_reports_are_archived_once_or_counted_and_never_lost() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let consumer = stack.consumer(&topic, &db);
    consumer.clone().arg("--migrate-only").success();
    let now = OffsetDateTime::now_utc();
    // Its day has no partition: it arrives late, after its day was (as if) never created.
    let late = report_at("http://late.test/", now - LATE);
    let future = report_at("http://future.test/", now + Duration::days(400));
    let twice = report_at("http://twice.test/", now);
    stack.produce_raw(&topic, 0, vec![record(&late), record(&future), record(&twice), record(&twice)]);

    consumer.success();

    assert_eq!(db.partition_holding(late.id).as_deref(), Some("reports_default"), "a day without partition");
    assert_eq!(db.partition_holding(future.id).as_deref(), Some("reports_default"), "400 days ahead");
    assert_eq!(db.count("SELECT count(*) FROM reports WHERE url = 'http://twice.test/'"), 1, "a repeat once");
    assert_eq!(rolled_up(&db, &twice), (1, 1), "a repeat is counted once in the rollups");
    assert_eq!(rolled_up(&db, &future), (1, 1), "a future report is counted in its hour and day");
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), 4, "the offset is past every record");
    db.assert_rollups_match_raw();

    // 60 days old: past the default retention of 31 days; sent twice in one batch.
    let old = report_at("http://old.test/", now - Duration::days(60));
    stack.produce_raw(&topic, 0, vec![record(&old), record(&old)]);
    let second = consumer.success();

    assert_eq!(
        db.partition_holding(late.id),
        Some(day_partition(late.checked_at.date())),
        "upkeep moved it into its day"
    );
    assert_eq!(db.partition_holding(future.id).as_deref(), Some("reports_default"), "still waiting for its day");
    assert_eq!(db.partition_holding(old.id), None, "past the retention: no raw row");
    assert_eq!(rolled_up(&db, &old), (1, 1), "past the retention: counted once in its hour and day");
    assert!(
        second.stderr.contains("reports older than the retention, counted in the rollups only"),
        "the run says so:\n{}",
        second.stderr
    );
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), 6, "the offset is past the old reports");
    assert!(
        second.stderr.contains("reports wait in the default partition") && second.stderr.contains("reports=1"),
        "the run says one report waits for its day:\n{}",
        second.stderr
    );
    assert_eq!(db.count("SELECT count(*) FROM reports"), 3);
}

/// A transaction of several batches (a one-off run catching up) that meets a report past the
/// retention twice, in two of its batches: no raw row either time, counted once.
#[test]
fn a_report_past_the_retention_repeated_in_a_later_batch_of_one_transaction_is_counted_once() {
    let db = Stack::get().create_database().migrated();
    let retention = Retention { raw_days: Some(31), rollup_days: Some(400), hourly_days: None };
    let mut archiver = Archiver::new(db.client(), retention);
    let old = report_at("http://old.test/", OffsetDateTime::now_utc() - Duration::days(60));
    let at = Origin { group: "g", topic: "t", topic_id: None, partition: 0 };
    let batch = |offset: i64| {
        let record = Record {
            key: None,
            value: Some(old.to_json()),
            headers: BTreeMap::new(),
            timestamp: DateTime::from_timestamp_millis(0).expect("a time"),
        };
        Batch::from_records(at, offset, vec![RecordAndOffset { record, offset }])
    };

    let mut span = archiver.begin().expect("a transaction");
    let first = span.add(at, -1, &batch(0)).expect("the first batch");
    let repeat = span.add(at, 1, &batch(1)).expect("the second batch");
    span.commit().expect("committing");

    assert_eq!(first, Committed::Done { archived: 0, rejected: 0, past_retention: 1 });
    assert_eq!(repeat, Committed::Done { archived: 0, rejected: 0, past_retention: 0 }, "a repeat");
    assert_eq!(db.partition_holding(old.id), None, "past the retention: no raw row, also the repeat");
    assert_eq!(rolled_up(&db, &old), (1, 1), "counted once in its hour and day");
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), 2);
}
