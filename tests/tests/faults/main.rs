//! Fault injection against the real services: consumers SIGKILLed at random moments, the broker
//! and PostgreSQL restarted while reports flow. Whatever happens, the archive must end up holding
//! exactly the reports produced, each once.
//!
//! These tests restart the shared services, so they run one at a time (a static lock) in a test
//! binary of their own, and every test brings the stack back up when it ends, even on failure.

use std::{
    collections::BTreeMap,
    process::Command,
    sync::{Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use rand::Rng;
use rskafka::{client::partition::UnknownTopicHandling, record::Record};
use websentry_tests::{eventually, eventually_ok, repo_root, sample_report, seeded_rng, Running, Stack, TestDatabase};

const REPORTS: usize = 20_000;
const PARTITIONS: i32 = 4;

/// Restarting services under a test that runs beside would break it.
static SERIAL: Mutex<()> = Mutex::new(());

/// One fault test's sole use of the stack: the other fault tests wait, and every service is
/// brought back up when it ends, also when it fails, before the next one starts.
struct Exclusive {
    _serial: MutexGuard<'static, ()>,
}

fn exclusive() -> Exclusive {
    Exclusive { _serial: SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner) }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/stack")).arg("up").status();
    }
}

fn restart(service: &str) {
    let status = Command::new(repo_root().join("scripts/stack"))
        .args(["restart", service])
        .status()
        .expect("running scripts/stack restart");
    assert!(status.success(), "scripts/stack restart {service} failed");
}

fn daemon(stack: &Stack, topic: &str, db: &TestDatabase) -> Running {
    stack.consumer_daemon(topic, db).env("WEBSENTRY_BATCH_MAX", "500").spawn()
}

/// The `i`-th report of a feed: most state a cadence of a minute, some none; some failed, some of
/// those inconclusive; so that measured and down time are counted through the faults too.
fn fed_report(i: usize) -> websentry_shared::report::Report {
    let mut report = sample_report(&format!("http://site-{}.test/", i % 101));
    report.interval_s = (!i.is_multiple_of(7)).then_some(60);
    if i.is_multiple_of(5) {
        let kind = websentry_shared::report::ErrorKind::Connect;
        report.error = Some(websentry_shared::report::ProbeError { kind, message: "refused".into() });
        report.inconclusive = i.is_multiple_of(10);
    }
    report
}

/// Writes [`REPORTS`] reports in small requests over a while, retrying a request that failed (a
/// retried request may be written twice: the ids make the archive keep one). Returns the ids.
fn feed(stack: &'static Stack, topic: String) -> JoinHandle<Vec<uuid::Uuid>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut ids = Vec::with_capacity(REPORTS);
        let mut batches: BTreeMap<usize, Vec<Record>> = BTreeMap::new();
        for i in 0..REPORTS {
            let report = fed_report(i);
            ids.push(report.id);
            let record = Record {
                key: Some(report.url.clone().into_bytes()),
                value: Some(report.to_json()),
                headers: BTreeMap::new(),
                timestamp: rskafka::chrono::DateTime::from_timestamp_millis(
                    time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
                )
                .unwrap_or_default(),
            };
            batches.entry(i / 250).or_default().push(record);
        }
        let deadline = Instant::now() + Duration::from_secs(240);
        for (n, records) in batches {
            let partition = (n as i32) % PARTITIONS;
            let sent = || {
                runtime.block_on(async {
                    let client = stack.kafka_settings(&topic).connect("websentry-faults").await.ok()?;
                    let partition =
                        client.partition_client(topic.as_str(), partition, UnknownTopicHandling::Retry).await.ok()?;
                    partition.produce(records.clone(), Default::default()).await.ok()
                })
            };
            let left = deadline.saturating_duration_since(Instant::now());
            eventually("all the reports written within 240 s", left, || sent().is_some());
            // The feeder's pace, so that reports flow over the faults: not a wait for anything.
            std::thread::sleep(Duration::from_millis(150));
        }
        ids
    })
}

/// Polls the archive until it holds `count` rows; panics after `timeout` with the rows it held.
fn wait_for_rows(db: &TestDatabase, count: i64, timeout: Duration) {
    eventually_ok(&format!("{count} rows archived"), timeout, || match db.try_count("SELECT count(*) FROM reports") {
        Some(rows) if rows == count => Ok(()),
        Some(rows) => Err(format!("{rows} rows")),
        None => Err("no answer from the database".to_owned()),
    });
}

fn assert_exactly(db: &TestDatabase, mut produced: Vec<uuid::Uuid>) {
    let mut archived: Vec<uuid::Uuid> = db.column("SELECT id FROM reports");
    archived.sort();
    produced.sort();
    assert_eq!(archived.len(), produced.len(), "row count");
    assert!(archived == produced, "the archive holds other ids than the produced ones");
}

#[test]
fn reports_survive_consumer_kills_a_broker_restart_and_a_database_restart() {
    let _exclusive = exclusive();
    let stack = Stack::get();
    let topic = stack.create_topic(PARTITIONS);
    let db = stack.create_database();
    let feeder = feed(stack, topic.clone());
    let mut rng = seeded_rng("reports_survive_consumer_kills_a_broker_restart_and_a_database_restart");

    for round in 0..6 {
        let consumer = daemon(stack, &topic, &db);
        consumer.wait_for_log("archiving", Duration::from_secs(60));
        match round {
            2 => restart("kafka"),
            4 => restart("postgres"),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        consumer.kill_hard();
        let _ = consumer.finish(Duration::from_secs(10));
    }
    let produced = feeder.join().expect("the feeder");
    let last = daemon(stack, &topic, &db);
    wait_for_rows(&db, produced.len() as i64, Duration::from_secs(120));
    last.terminate();
    let output = last.finish(Duration::from_secs(30));

    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert_exactly(&db, produced);
    db.assert_rollups_match_raw();
    assert_time_was_measured(&db);
    let stored: i64 = db.count("SELECT sum(next_offset)::bigint FROM consumer_offsets");
    assert!(stored >= REPORTS as i64, "the offsets cover every record: {stored}");
}

#[test]
fn reports_survive_one_of_two_replicas_being_killed_mid_run() {
    let _exclusive = exclusive();
    let stack = Stack::get();
    let topic = stack.create_topic(PARTITIONS);
    let db = stack.create_database();
    let feeder = feed(stack, topic.clone());
    let first = daemon(stack, &topic, &db);
    let second = daemon(stack, &topic, &db);
    first.wait_for_log("archiving", Duration::from_secs(60));
    second.wait_for_log("archiving", Duration::from_secs(60));

    eventually("a quarter of the reports archived", Duration::from_secs(60), || {
        db.count("SELECT count(*) FROM reports") >= (REPORTS / 4) as i64
    });
    first.kill_hard();
    let _ = first.finish(Duration::from_secs(10));
    let produced = feeder.join().expect("the feeder");
    wait_for_rows(&db, produced.len() as i64, Duration::from_secs(120));
    second.terminate();
    let output = second.finish(Duration::from_secs(30));

    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert!(output.stderr.contains("partition claimed"), "{}", output.stderr);
    assert_exactly(&db, produced);
    db.assert_rollups_match_raw();
    assert_time_was_measured(&db);
}

/// The rollups hold measured and down time: what the exactness check above covers is not empty.
fn assert_time_was_measured(db: &TestDatabase) {
    let hours =
        db.count("SELECT count(*) FROM rollup_hourly WHERE covered_us > 0 AND down_us > 0 AND inconclusive > 0");
    assert!(hours > 0, "no hour measured time, down time and inconclusive probes");
}

fn stack_command(verb: &str, service: &str) {
    let status =
        Command::new(repo_root().join("scripts/stack")).args([verb, service]).status().expect("running scripts/stack");
    assert!(status.success(), "scripts/stack {verb} {service} failed");
}

fn kafka_gauge(address: &str) -> Option<f64> {
    let body = websentry_tests::http_get(address, "/metrics")?.1;
    websentry_tests::metric(&body, "websentry_connected{service=\"kafka\"}")
}

fn readyz(address: &str) -> Option<u16> {
    websentry_tests::http_get(address, "/readyz").map(|r| r.0)
}

#[test]
fn a_kafka_outage_is_logged_once_shown_by_readiness_and_the_gauge_and_sigterm_still_stops_the_daemon() {
    let _exclusive = exclusive();
    let stack = Stack::get();
    let topic = stack.create_topic(2);
    let db = stack.create_database();
    let running = stack.consumer_daemon(&topic, &db).env("WEBSENTRY_LISTEN", "127.0.0.1:0").spawn();
    let address = running.log_field("http endpoint listening", "address", Duration::from_secs(30));
    eventually("ready before the outage", Duration::from_secs(30), || readyz(&address) == Some(200));
    assert_eq!(kafka_gauge(&address), Some(1.0));

    stack_command("stop", "kafka");
    let stopped = Instant::now();
    eventually("/readyz 503 and the Kafka gauge 0 during the outage", Duration::from_secs(30), || {
        readyz(&address) == Some(503) && kafka_gauge(&address) == Some(0.0)
    });
    println!("outage seen by /readyz and the gauge after {:?}", stopped.elapsed());
    running.wait_for_log("service unavailable", Duration::from_secs(30));
    stack_command("start", "kafka");
    running.wait_for_log("connected again", Duration::from_secs(90));
    eventually("ready again after the outage", Duration::from_secs(30), || readyz(&address) == Some(200));
    let ids = stack.produce_reports(&topic, 2, 20, 20);
    eventually("reports after the outage are archived", Duration::from_secs(30), || {
        db.try_count("SELECT count(*) FROM reports") == Some(ids.len() as i64)
    });
    db.assert_rollups_match_raw();

    stack_command("stop", "kafka");
    eventually("the second outage is seen", Duration::from_secs(30), || readyz(&address) == Some(503));
    running.terminate();
    let terminated = Instant::now();
    let output = running.finish(Duration::from_secs(15));
    println!("stopped {:?} after SIGTERM with Kafka down", terminated.elapsed());

    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let lines = |fragment: &str| output.stderr.lines().filter(|l| l.contains(fragment)).count();
    assert_eq!(lines("service unavailable"), 2, "once per outage:\n{}", output.stderr);
    assert_eq!(lines("connected again"), 1, "{}", output.stderr);
    assert!(output.stderr.lines().count() < 60, "no flood of retry lines:\n{}", output.stderr);
}

#[test]
fn a_one_off_run_with_kafka_gone_mid_round_gives_up_within_its_kafka_timeout_and_says_so_once() {
    let _exclusive = exclusive();
    let stack = Stack::get();
    let topic = stack.create_topic(3);
    let site = websentry_tests::SiteServer::start();
    let mut sites: Vec<String> = (0..20).map(|n| site.url(&format!("/fast-{n}"))).collect();
    sites.push(websentry_tests::hostile::serve(websentry_tests::hostile::Behaviour::Silent));
    let running = stack
        .producer(&topic)
        .env("WEBSENTRY_SITES", sites.join(","))
        .env("WEBSENTRY_TIMEOUT", "8")
        .env("WEBSENTRY_KAFKA_TIMEOUT", "5")
        .spawn();
    running.wait_for_log("round started", Duration::from_secs(30));
    eventually("the fast reports are published", Duration::from_secs(30), || stack.read_topic(&topic).len() == 20);

    stack_command("stop", "kafka");
    let stopped = Instant::now();
    let output = running.finish(Duration::from_secs(120));
    let took = stopped.elapsed();
    println!("exited {:?} after Kafka stopped", took);

    assert_eq!(output.code, Some(1), "{}", output.stderr);
    assert!(
        took < Duration::from_secs(8 + 5 + 5),
        "the slow probe (8 s) and one Kafka timeout (5 s), not more: {took:?}"
    );
    let errors = output.error_lines();
    assert!(errors.len() == 1 && errors[0].contains("1 reports were not acknowledged"), "{}", output.stderr);
    assert_eq!(output.stderr.matches("Kafka does not acknowledge reports").count(), 1, "{}", output.stderr);
    assert!(output.stderr.lines().count() < 20, "no flood of retry lines:\n{}", output.stderr);
}

#[test]
fn a_daemon_keeps_its_reports_through_a_kafka_outage_and_publishes_them_when_it_is_back() {
    let _exclusive = exclusive();
    let stack = Stack::get();
    let topic = stack.create_topic(3);
    let site = websentry_tests::SiteServer::start();
    let sites: Vec<String> = (0..5).map(|n| site.url(&format!("/daemon-{n}"))).collect();
    let running = stack
        .producer(&topic)
        .env("WEBSENTRY_SITES", sites.join(","))
        .env("WEBSENTRY_INTERVAL", "2")
        .env("WEBSENTRY_KAFKA_TIMEOUT", "3")
        .spawn();
    running.wait_for_log("round done", Duration::from_secs(30));

    stack_command("stop", "kafka");
    running.wait_for_log("Kafka does not acknowledge reports", Duration::from_secs(30));
    let rounds_before = running.stderr().matches("round done").count();
    eventually("a round or two while Kafka is away", Duration::from_secs(30), || {
        running.stderr().matches("round done").count() >= rounds_before + 2
    });
    stack_command("start", "kafka");
    running.wait_for_log("Kafka acknowledges reports again", Duration::from_secs(90));
    running.terminate();
    let output = running.finish(Duration::from_secs(60));

    assert_eq!(output.code, Some(0), "exit 0: nothing left unacknowledged\n{}", output.stderr);
    assert_eq!(output.stderr.matches("Kafka does not acknowledge reports").count(), 1, "{}", output.stderr);
    assert_eq!(output.stderr.matches("Kafka acknowledges reports again").count(), 1, "{}", output.stderr);
    // Each round says how many probes it ran: all five at start, then those with a slot in it.
    let probes: usize = output
        .stderr
        .lines()
        .filter(|line| line.contains("round done"))
        .filter_map(|line| line.split_whitespace().find_map(|field| field.strip_prefix("probes=")))
        .map(|count| count.parse::<usize>().expect("a count of probes"))
        .sum();
    // A request whose answer was lost as the broker stopped may have been written twice: the
    // archive keeps one per id, so count ids.
    let ids: std::collections::BTreeSet<uuid::Uuid> = stack
        .read_topic(&topic)
        .iter()
        .map(|(_, value)| websentry_shared::report::Report::decode(value).expect("a report").id)
        .collect();
    assert!(probes >= 10, "a few rounds:\n{}", output.stderr);
    assert_eq!(ids.len(), probes, "every report of every round:\n{}", output.stderr);
}
