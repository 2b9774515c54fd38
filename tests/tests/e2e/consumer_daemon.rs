//! The consumer as a daemon: its HTTP endpoint, SIGTERM, and replicas sharing a topic.

use std::time::Duration;

use websentry_tests::{consistently, eventually, http_get, metric, Relay, Running, Stack, TestDatabase};

const GROUP: &str = "replicas";

fn daemon(stack: &Stack, topic: &str, db: &TestDatabase, listen: &str) -> Running {
    stack.consumer_daemon(topic, db).env("WEBSENTRY_CONSUMER_GROUP", GROUP).env("WEBSENTRY_LISTEN", listen).spawn()
}

#[test]
fn the_http_endpoint_reports_health_readiness_and_what_was_archived() {
    let stack = Stack::get();
    let topic = stack.create_topic(2);
    let db = stack.create_database();
    let running = daemon(stack, &topic, &db, "127.0.0.1:0");
    let address = running.log_field("http endpoint listening", "address", Duration::from_secs(30));

    assert_eq!(http_get(&address, "/healthz").map(|r| r.0), Some(200));
    eventually("/readyz answers 200", Duration::from_secs(30), || {
        http_get(&address, "/readyz").map(|r| r.0) == Some(200)
    });
    stack.produce_reports(&topic, 2, 300, 300);
    stack.produce_raw(&topic, 1, vec![(None, Some(b"not json".to_vec()))]);
    eventually("300 archived and 1 rejected in /metrics", Duration::from_secs(30), || {
        let body = http_get(&address, "/metrics").map(|r| r.1).unwrap_or_default();
        metric(&body, "websentry_reports_archived_total") == Some(300.0)
            && metric(&body, "websentry_records_rejected_total") == Some(1.0)
    });
    let body = http_get(&address, "/metrics").expect("metrics").1;
    let committed = format!("websentry_partition_committed_offset{{topic=\"{topic}\",partition=\"1\"}}");
    assert_eq!(metric(&body, &committed), Some(151.0), "{body}");
    assert_eq!(
        metric(&body, &format!("websentry_partition_lag{{topic=\"{topic}\",partition=\"0\"}}")),
        Some(0.0),
        "{body}"
    );
    assert!(metric(&body, "websentry_batch_duration_seconds_count").is_some_and(|n| n >= 1.0), "{body}");
    assert_eq!(http_get(&address, "/nothing").map(|r| r.0), Some(404));
    // The fixed windows' answers, summed at the start on the daemon's own thread (schema version
    // 14): four windows for the next hour, four more after five minutes into this one.
    eventually("the kept window answers summed, in /metrics", Duration::from_secs(30), || {
        let body = http_get(&address, "/metrics").map(|r| r.1).unwrap_or_default();
        metric(&body, "websentry_archive_kept_windows_summed_total").is_some_and(|n| n >= 4.0)
    });
    let body = http_get(&address, "/metrics").expect("metrics").1;
    assert_eq!(metric(&body, "websentry_archive_kept_windows_failures_total"), Some(0.0), "{body}");
    assert!(db.count("SELECT count(*) FROM rollup_windows") >= 4, "the kept answers are in the archive");

    running.terminate();
    let output = running.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert_eq!(db.count("SELECT count(*) FROM reports"), 300);
}

#[test]
fn two_replicas_split_the_partitions_and_one_takes_over_when_the_other_dies() {
    let stack = Stack::get();
    let topic = stack.create_topic(4);
    let db = stack.create_database();
    let first = daemon(stack, &topic, &db, "");
    first.wait_for_log("archiving", Duration::from_secs(30));
    let second = daemon(stack, &topic, &db, "");

    eventually("each replica holds partitions", Duration::from_secs(30), || {
        first.stderr().contains("partition released to another replica")
            && second.stderr().contains("partition claimed")
    });
    let mut ids = stack.produce_reports(&topic, 4, 400, 400);
    eventually("400 reports archived", Duration::from_secs(30), || db.count("SELECT count(*) FROM reports") == 400);
    first.kill_hard();
    let _ = first.finish(Duration::from_secs(10));
    ids.extend(stack.produce_reports(&topic, 4, 400, 400));

    eventually("the survivor archives every partition", Duration::from_secs(30), || {
        db.count("SELECT count(*) FROM reports") == 800
    });
    let mut archived: Vec<uuid::Uuid> = db.column("SELECT id FROM reports ORDER BY id");
    ids.sort();
    archived.sort();
    assert_eq!(archived, ids, "exactly the produced ids, each once");
    second.terminate();
    let output = second.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
}

#[test]
fn a_one_off_run_leaves_partitions_a_daemon_holds_to_it() {
    let stack = Stack::get();
    let topic = stack.create_topic(2);
    let db = stack.create_database();
    let running = daemon(stack, &topic, &db, "");
    running.wait_for_log("archiving", Duration::from_secs(30));

    let output = stack.consumer(&topic, &db).env("WEBSENTRY_CONSUMER_GROUP", GROUP).success();

    assert_eq!(output.stderr.matches("partition held by another replica").count(), 2, "{}", output.stderr);
    running.terminate();
    assert_eq!(running.finish(Duration::from_secs(20)).code, Some(0));
}

#[test]
fn a_daemon_without_its_database_is_alive_but_not_ready_and_still_stops_on_sigterm() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let running = stack
        .consumer_of(&topic, "websentry")
        .env("WEBSENTRY_DATABASE_PORT", "1")
        .env("WEBSENTRY_CONSUMER_ENABLE_DAEMON", "true")
        .env("WEBSENTRY_LISTEN", "127.0.0.1:0")
        .spawn();
    let address = running.log_field("http endpoint listening", "address", Duration::from_secs(30));
    running.wait_for_log("service unavailable", Duration::from_secs(30));

    assert_eq!(http_get(&address, "/healthz").map(|r| r.0), Some(200));
    // For a while, as the backoff retries meanwhile.
    consistently("/readyz answers 503", Duration::from_secs(3), || {
        http_get(&address, "/readyz").map(|r| r.0) == Some(503)
    });
    // Each retry is counted, for the alert WebsentryArchiveInterrupted; Kafka was not lost.
    let body = http_get(&address, "/metrics").expect("metrics").1;
    let lost =
        |service: &str| metric(&body, &format!("websentry_service_interruptions_total{{service=\"{service}\"}}"));
    assert!(lost("postgresql").is_some_and(|n| n >= 2.0), "{body}");
    assert_eq!(lost("kafka"), Some(0.0), "{body}");
    running.terminate();
    let output = running.finish(Duration::from_secs(20));

    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert_eq!(
        output.stderr.matches("service unavailable").count(),
        1,
        "logged once, not per retry:\n{}",
        output.stderr
    );
}

/// A database that holds the session's requests without answering (a hung server or proxy, which
/// no client deadline ends): the daemon stays connected and counts no interruption, so only
/// `websentry_session_stalled_seconds` (and, past its limit, `/healthz`) can say so. Once the
/// connection is closed, the daemon starts again and archives what waited, once.
#[test]
fn a_database_that_hangs_shows_as_a_stalled_session_and_what_waited_is_archived_once_after() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let relay = Relay::start(stack.database_address());
    let running = stack
        .consumer_daemon(&topic, &db)
        .env("WEBSENTRY_DATABASE_PORT", relay.address().port().to_string())
        .env("WEBSENTRY_LISTEN", "127.0.0.1:0")
        .spawn();
    let address = running.log_field("http endpoint listening", "address", Duration::from_secs(30));
    let scrape = || http_get(&address, "/metrics").map(|r| r.1).unwrap_or_default();
    stack.produce_reports(&topic, 1, 10, 10);
    eventually("10 reports archived", Duration::from_secs(30), || {
        db.try_count("SELECT count(*) FROM reports") == Some(10)
    });
    let body = scrape();
    assert!(metric(&body, "websentry_session_stalled_seconds").is_some_and(|s| s < 5.0), "{body}");

    relay.hang();
    stack.produce_reports(&topic, 1, 10, 10);
    eventually("the session stalled for 3 s", Duration::from_secs(30), || {
        metric(&scrape(), "websentry_session_stalled_seconds").is_some_and(|s| s >= 3.0)
    });
    let body = scrape();
    assert_eq!(metric(&body, "websentry_connected{service=\"postgresql\"}"), Some(1.0), "{body}");
    assert_eq!(metric(&body, "websentry_service_interruptions_total{service=\"postgresql\"}"), Some(0.0), "{body}");
    assert_eq!(http_get(&address, "/healthz").map(|r| r.0), Some(200), "alive until the stall limit (10 min)");

    relay.open();
    eventually("the 10 reports that waited archived", Duration::from_secs(60), || {
        db.count("SELECT count(*) FROM reports") == 20
    });
    let body = scrape();
    assert!(metric(&body, "websentry_session_stalled_seconds").is_some_and(|s| s < 5.0), "{body}");
    assert!(
        metric(&body, "websentry_service_interruptions_total{service=\"postgresql\"}").is_some_and(|n| n >= 1.0),
        "the hung session ended as lost: {body}"
    );
    consistently("no report archived twice", Duration::from_secs(2), || db.count("SELECT count(*) FROM reports") == 20);
    running.terminate();
    assert_eq!(running.finish(Duration::from_secs(20)).code, Some(0));
}
