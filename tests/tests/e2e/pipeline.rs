//! Sites → producer → Kafka (mutual TLS) → consumer → PostgreSQL (TLS), with the real binaries.

use websentry_consumer::upkeep::KEPT_WINDOWS;
use websentry_tests::{unreachable_url, SiteServer, Stack, TestDatabase};

/// url, code, regexp_match, error_kind, kafka_topic
type Row = (String, i32, Option<String>, Option<String>, String);

const PATTERN: &str = r"version=(\d+)\.(\d+)";

struct Pipeline {
    stack: &'static Stack,
    topic: String,
    db: TestDatabase,
    sites: Vec<String>,
}

impl Pipeline {
    fn new(sites: Vec<String>) -> Self {
        let stack = Stack::get();
        Self { stack, topic: stack.create_topic(3), db: stack.create_database(), sites }
    }

    fn produce(&self) -> websentry_tests::RunOutput {
        self.stack
            .producer(&self.topic)
            .env("WEBSENTRY_SITES", self.sites.join(","))
            .env("WEBSENTRY_REGEXP", PATTERN)
            .env("WEBSENTRY_TIMEOUT", "5")
            .success()
    }

    fn consume(&self) -> websentry_tests::RunOutput {
        self.stack.consumer(&self.topic, &self.db).success()
    }
}

#[test]
fn a_round_of_probes_is_archived_with_codes_matches_and_errors() {
    let server = SiteServer::start();
    let (ok, missing, down) = (server.url("/ok"), server.url("/missing"), unreachable_url());
    let pipeline = Pipeline::new(vec![ok.clone(), missing.clone(), down.clone()]);

    pipeline.produce();
    pipeline.consume();

    let rows = pipeline
        .db
        .client()
        .query("SELECT url, code, regexp_match, error_kind, kafka_topic FROM reports ORDER BY url", &[]);
    let rows: Vec<Row> =
        rows.expect("reading reports").iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
    let mut expected = vec![
        (ok, 200, Some("42".to_owned()), None, pipeline.topic.clone()),
        (missing, 404, None, Some("http".to_owned()), pipeline.topic.clone()),
        (down, 0, None, Some("connect".to_owned()), pipeline.topic.clone()),
    ];
    expected.sort();
    assert_eq!(rows, expected);
    assert_eq!(pipeline.db.count("SELECT count(*) FROM log"), 3, "the Python tool's view shows every report");
    assert_eq!(pipeline.db.count("SELECT count(*) FROM rejected_messages"), 0);
    // A one-off run keeps the fixed windows' answers before its batches (schema version 14); the
    // last day is then read from its kept answer and the hours still being written, which hold
    // this round (or, past the hour since, from the rollups: the same answer).
    assert!(pipeline.db.count("SELECT count(*) FROM rollup_windows") >= KEPT_WINDOWS.len() as i64);
    assert_eq!(
        pipeline.db.count("SELECT sum(probes)::bigint FROM site_summary(now() - interval '1 day', now())"),
        3,
        "the round, in the last day's answer"
    );
}

#[test]
fn a_second_round_adds_rows_and_a_rerun_repeats_none() {
    let server = SiteServer::start();
    let pipeline = Pipeline::new(vec![server.url("/ok"), server.url("/missing")]);

    pipeline.produce();
    pipeline.consume();
    assert_eq!(pipeline.db.count("SELECT count(*) FROM reports"), 2);

    pipeline.produce();
    pipeline.consume();
    pipeline.consume();

    assert_eq!(pipeline.db.count("SELECT count(*) FROM reports"), 4);
    assert_eq!(pipeline.db.count("SELECT count(DISTINCT id) FROM reports"), 4);
    let stored: i64 = pipeline.db.count("SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets");
    assert_eq!(stored, 4, "the stored offsets cover exactly the 4 records of the topic");
}

#[test]
fn each_report_is_keyed_by_url_and_lands_in_the_java_clients_partition() {
    let server = SiteServer::start();
    let sites: Vec<String> = (0..12).map(|i| server.url(&format!("/page-{i}"))).collect();
    let pipeline = Pipeline::new(sites.clone());

    pipeline.produce();

    let records = pipeline.stack.read_topic(&pipeline.topic);
    assert_eq!(records.len(), sites.len());
    for (partition, value) in records {
        let report = websentry_shared::report::Report::decode(&value).expect("a report");
        let expected = websentry_producer::publish::partitioner::partition_for_key(report.url.as_bytes(), 3);
        assert_eq!(partition, expected, "{} landed in partition {partition}", report.url);
    }
}

#[test]
fn a_consumer_group_of_its_own_archives_everything_again() {
    let server = SiteServer::start();
    let pipeline = Pipeline::new(vec![server.url("/ok")]);
    pipeline.produce();
    pipeline.consume();

    let other_db = pipeline.stack.create_database();
    pipeline.stack.consumer(&pipeline.topic, &other_db).env("WEBSENTRY_CONSUMER_GROUP", "another-group").success();

    assert_eq!(other_db.count("SELECT count(*) FROM reports"), 1);
    let groups: Vec<String> = other_db.column("SELECT DISTINCT consumer_group FROM consumer_offsets");
    assert_eq!(groups, ["another-group"]);
}
