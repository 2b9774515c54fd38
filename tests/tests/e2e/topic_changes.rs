//! The topic is a live fact: partitions added while a daemon runs are read, a topic deleted and
//! created again is read from its beginning, and a bootstrap broker that hangs does not stop the
//! next one.

use std::time::Duration;

use websentry_tests::{eventually, hostile, http_get, sample_report, Stack, TestDatabase};

/// Writes `count` reports to one partition; returns their ids.
fn write(stack: &Stack, topic: &str, partition: i32, count: usize) -> Vec<uuid::Uuid> {
    let reports: Vec<_> = (0..count).map(|n| sample_report(&format!("http://p{partition}-{n}.test/"))).collect();
    let records = reports.iter().map(|r| (Some(r.url.clone().into_bytes()), Some(r.to_json()))).collect();
    stack.produce_raw(topic, partition, records);
    reports.iter().map(|r| r.id).collect()
}

fn archived_ids(db: &TestDatabase) -> Vec<uuid::Uuid> {
    let mut ids: Vec<uuid::Uuid> = db.column("SELECT id FROM reports");
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<uuid::Uuid>) -> Vec<uuid::Uuid> {
    ids.sort();
    ids
}

#[test]
fn a_daemon_reads_partitions_added_to_the_topic_and_shows_them_in_its_metrics() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let running = stack.consumer_daemon(&topic, &db).env("WEBSENTRY_LISTEN", "127.0.0.1:0").spawn();
    let address = running.log_field("http endpoint listening", "address", Duration::from_secs(30));
    running.wait_for_log("archiving", Duration::from_secs(30));

    stack.add_partitions(&topic, 3);
    let ids = write(stack, &topic, 2, 5);

    eventually("the reports of the new partition are archived", Duration::from_secs(30), || {
        db.try_count("SELECT count(*) FROM reports WHERE kafka_partition = 2") == Some(5)
    });
    let metrics = http_get(&address, "/metrics").expect("metrics").1;
    let committed = format!("websentry_partition_committed_offset{{topic=\"{topic}\",partition=\"2\"}} 5");
    assert!(metrics.contains(&committed), "{metrics}");
    let lag = format!("websentry_partition_lag{{topic=\"{topic}\",partition=\"1\"}} 0");
    assert!(metrics.contains(&lag), "partition 1, added and empty, is read too:\n{metrics}");
    running.terminate();
    let output = running.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert_eq!(output.stderr.matches("partitions added to the topic").count(), 1, "{}", output.stderr);
    assert_eq!(archived_ids(&db), sorted(ids));
}

#[test]
fn a_topic_deleted_and_created_again_is_read_from_its_beginning_by_a_one_off_run() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let mut ids = write(stack, &topic, 0, 5);
    stack.consumer(&topic, &db).success();

    stack.delete_topic(&topic);
    recreate(stack, &topic);
    // More records than the stored offset: read from the old offset, the first five would be skipped.
    ids.extend(write(stack, &topic, 0, 8));
    let output = stack.consumer(&topic, &db).success();

    assert_eq!(archived_ids(&db), sorted(ids), "every report of both lives of the topic");
    assert_eq!(output.stderr.matches("topic was created again").count(), 1, "{}", output.stderr);
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), 8);
}

#[test]
fn a_daemon_reads_a_topic_deleted_and_created_again_from_its_beginning() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let mut ids = write(stack, &topic, 0, 5);
    let running = stack.consumer_daemon(&topic, &db).spawn();
    eventually("the first life is archived", Duration::from_secs(30), || {
        db.try_count("SELECT count(*) FROM reports") == Some(5)
    });

    stack.delete_topic(&topic);
    recreate(stack, &topic);
    ids.extend(write(stack, &topic, 0, 8));

    eventually("the second life is archived", Duration::from_secs(90), || {
        db.try_count("SELECT count(*) FROM reports") == Some(13)
    });
    running.terminate();
    let output = running.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert_eq!(archived_ids(&db), sorted(ids));
    assert_eq!(output.stderr.matches("topic was created again").count(), 1, "{}", output.stderr);
}

/// Creates `topic` again once the broker has forgotten it.
fn recreate(stack: &Stack, topic: &str) {
    let settings = stack.kafka_settings(topic);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut metadata = websentry_consumer::metadata::MetadataClient::new(settings);
    eventually("the broker forgets the deleted topic", Duration::from_secs(30), || {
        matches!(runtime.block_on(metadata.topic(topic)), Ok(None))
    });
    stack.create_topic_named(topic, 1);
}

#[test]
fn a_bootstrap_broker_that_never_answers_does_not_stop_the_next_one() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let ids = write(stack, &topic, 0, 3);
    let hosts = format!("{},{}", hostile::silent_listener(), stack.var("WEBSENTRY_KAFKA_HOSTS"));

    let started = std::time::Instant::now();
    let output = stack.consumer(&topic, &db).env("WEBSENTRY_KAFKA_HOSTS", hosts).success();

    println!("archived through the second broker in {:?}", started.elapsed());
    assert_eq!(archived_ids(&db), sorted(ids), "{}", output.stderr);
}
