//! The consumer writes several fetches in one transaction and merges their rollups once: a one-off
//! run catching up, fetch after fetch up to `WEBSENTRY_BATCH_MAX` records; a daemon, what one poll
//! of its partitions brought. Seen here by the transactions the rows were written in, and through
//! a kill in the middle of such a transaction. A one-off run writes with two connections at once
//! (`WEBSENTRY_CONSUMER_WRITERS`), each with its share of the partitions and transactions of its
//! own.

use std::time::Duration;

use uuid::Uuid;
use websentry_shared::report::Report;
use websentry_tests::{eventually, sample_report, Relay, Stack, TestDatabase};

/// The smallest fetch the consumer makes (64 KiB, ~150 of these reports): several fetches fill
/// a transaction of `WEBSENTRY_BATCH_MAX` records below.
const FETCH_BYTES: &str = "1024";

/// Each transaction's rows, in the order the transactions started: `archived_at` defaults to
/// `now()`, the start of the transaction (the same in its savepoints, whose rows carry an `xmin`
/// of their own).
fn transactions(db: &TestDatabase) -> Vec<i64> {
    db.column("SELECT count(*) FROM reports GROUP BY archived_at ORDER BY archived_at")
}

fn assert_each_once(db: &TestDatabase, mut produced: Vec<Uuid>) {
    let mut archived: Vec<Uuid> = db.column("SELECT id FROM reports ORDER BY id");
    produced.sort();
    archived.sort();
    assert_eq!(archived.len(), produced.len(), "reports archived");
    assert_eq!(archived, produced, "exactly the produced ids, each once");
}

#[test]
fn a_one_off_run_writes_many_fetches_to_a_transaction_up_to_the_batch_max() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let produced = stack.produce_reports(&topic, 1, 2400, 200);

    let output = stack
        .consumer(&topic, &db)
        .env("WEBSENTRY_BATCH_BYTES", FETCH_BYTES)
        .env("WEBSENTRY_BATCH_MAX", "600")
        .env("WEBSENTRY_LOGLEVEL", "DEBUG")
        .success();

    assert_each_once(&db, produced);
    let sizes = transactions(&db);
    assert_eq!(sizes, [600, 600, 600, 600], "transactions of WEBSENTRY_BATCH_MAX records");
    let (batches, commits) =
        (output.stderr.matches("batch written").count(), output.stderr.matches("transaction committed").count());
    assert_eq!(commits, 4, "{}", output.stderr);
    assert!(
        batches >= 2 * commits,
        "{batches} fetches (or parts of one) in {commits} transactions:\n{}",
        output.stderr
    );
    db.assert_rollups_match_raw();
    let stored: i64 = db.column("SELECT next_offset FROM consumer_offsets")[0];
    assert_eq!(stored, 2400, "the offset past the last record");
}

/// Reports for the kill: the run commits 48 transactions of 100, and the test hangs the database
/// once it sees the first, so the kill lands inside the run even on a slow machine.
const REPORTS: usize = 4800;

/// Killed while a transaction of several fetches is open, a run keeps nothing of it; the next run
/// archives it all, each report once, with rollups that count each once.
#[test]
fn a_one_off_run_killed_inside_a_transaction_of_many_fetches_loses_and_repeats_nothing() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let produced = stack.produce_reports(&topic, 1, REPORTS, 200);
    let relay = Relay::start(stack.database_address());
    let consumer = || {
        stack
            .consumer(&topic, &db)
            .env("WEBSENTRY_DATABASE_PORT", relay.address().port().to_string())
            .env("WEBSENTRY_BATCH_BYTES", FETCH_BYTES)
            .env("WEBSENTRY_BATCH_MAX", "100")
    };

    let first = consumer().spawn();
    eventually("a first transaction committed", Duration::from_secs(60), || {
        db.try_count("SELECT count(*) FROM reports").is_some_and(|n| n > 0)
    });
    // The database stops answering: the run waits inside its next transaction.
    relay.hang();
    let before = db.count("SELECT count(*) FROM reports");
    first.kill_hard();
    let _ = first.finish(Duration::from_secs(10));
    assert!(before < REPORTS as i64, "killed before the end of the run ({before} reports archived)");
    assert_eq!(before % 100, 0, "whole transactions of 100 records: {before}");
    // Opening the relay closes the dead run's connection: its transaction is rolled back and its
    // partition lock let go.
    relay.open();
    eventually("the killed run's session ended", Duration::from_secs(30), || {
        db.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            == 0
    });
    let stored: Vec<i64> = db.column("SELECT next_offset FROM consumer_offsets");
    assert_eq!(stored, [before], "the offset stored with the rows");

    consumer().success();

    assert_each_once(&db, produced);
    db.assert_rollups_match_raw();
    let probes: i64 = db.column("SELECT sum(probes)::bigint FROM rollup_daily")[0];
    assert_eq!(probes, REPORTS as i64, "each report counted once in the daily rollups");
}

/// Told to stop (SIGTERM) while a transaction of many fetches is open, a one-off run stops after
/// the batch it is writing, commits what the transaction holds with its offset, and exits 0; the
/// next run archives the rest, each report once.
#[test]
fn a_one_off_run_told_to_stop_inside_a_transaction_commits_what_it_holds() {
    /// One transaction for the whole run unless stopped: ~48 fetches of 200 reports.
    const TOTAL: usize = 9600;
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let produced = stack.produce_reports(&topic, 1, TOTAL, 200);
    let consumer = || {
        stack
            .consumer(&topic, &db)
            .env("WEBSENTRY_BATCH_BYTES", FETCH_BYTES)
            .env("WEBSENTRY_BATCH_MAX", TOTAL.to_string())
            .env("WEBSENTRY_LOGLEVEL", "DEBUG")
    };

    let first = consumer().spawn();
    first.wait_for_log("batch written", Duration::from_secs(60));
    first.terminate();
    let output = first.finish(Duration::from_secs(30));
    assert_eq!(output.code, Some(0), "a clean stop:\n{}", output.stderr);
    let kept = db.count("SELECT count(*) FROM reports");
    assert!(kept > 0 && kept < TOTAL as i64, "stopped inside its transaction, which kept {kept} of {TOTAL}");
    assert_eq!(transactions(&db), [kept], "one transaction, committed");
    let stored: Vec<i64> = db.column("SELECT next_offset FROM consumer_offsets");
    assert_eq!(stored, [kept], "the offset stored with the rows");
    db.assert_rollups_match_raw();

    consumer().success();
    assert_each_once(&db, produced);
    db.assert_rollups_match_raw();
}

#[test]
fn a_daemon_writes_what_one_poll_of_its_partitions_brought_in_one_transaction() {
    let stack = Stack::get();
    let topic = stack.create_topic(4);
    let db = stack.create_database();
    let produced = stack.produce_reports(&topic, 4, 400, 400);

    let daemon = stack.consumer_daemon(&topic, &db).spawn();
    eventually("400 reports archived", Duration::from_secs(60), || {
        db.try_count("SELECT count(*) FROM reports") == Some(400)
    });
    daemon.terminate();
    assert_eq!(daemon.finish(Duration::from_secs(20)).code, Some(0));

    assert_each_once(&db, produced);
    let partitions: Vec<i64> =
        db.column("SELECT count(DISTINCT kafka_partition) FROM reports GROUP BY archived_at ORDER BY archived_at");
    assert!(partitions.iter().any(|&n| n > 1), "a transaction per partition: {partitions:?}");
    db.assert_rollups_match_raw();
}

/// Producer retries of reports archived by an earlier run, earlier in the same fetch, in the same
/// transaction and in the one before are found by the look-up each batch makes in its
/// transaction: each report is archived once, and no `COPY` meets a duplicate (none falls back to
/// the temporary table).
#[test]
fn retries_of_earlier_runs_and_transactions_are_found_by_the_look_up_and_archived_once() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let earlier: Vec<Report> = (0..300).map(|i| sample_report(&format!("http://earlier-{}/", i % 7))).collect();
    let record = |report: &Report| (Some(report.url.as_bytes().to_vec()), Some(report.to_json()));
    stack.produce_raw(&topic, 0, earlier.iter().map(record).collect());
    stack.consumer(&topic, &db).success();

    // New reports, each 20th followed by a retry: of the earlier run's, or of one 50 or 400
    // records back (in the same fetch, the same transaction or the one before).
    let fresh: Vec<Report> = (0..1500).map(|i| sample_report(&format!("http://fresh-{}/", i % 7))).collect();
    let mut records = Vec::new();
    for (i, report) in fresh.iter().enumerate() {
        records.push(record(report));
        if i % 20 == 19 {
            let again = match i % 60 {
                19 => &earlier[i % earlier.len()],
                39 => &fresh[i.saturating_sub(50)],
                _ => &fresh[i.saturating_sub(400)],
            };
            records.push(record(again));
        }
    }
    let total = records.len() + earlier.len();
    // In requests of 100 records: Kafka's record batches, of which a fetch takes whole ones.
    for chunk in records.chunks(100) {
        stack.produce_raw(&topic, 0, chunk.to_vec());
    }
    let output = stack
        .consumer(&topic, &db)
        .env("WEBSENTRY_BATCH_BYTES", FETCH_BYTES)
        .env("WEBSENTRY_BATCH_MAX", "600")
        .env("WEBSENTRY_LOGLEVEL", "DEBUG")
        .success();
    let commits = output.stderr.matches("transaction committed").count();
    assert!(commits >= 3, "the retries span transactions: {commits} committed");

    assert_each_once(&db, earlier.iter().chain(&fresh).map(|r| r.id).collect());
    db.assert_rollups_match_raw();
    assert_eq!(db.count("SELECT next_offset FROM consumer_offsets"), total as i64);
    // A COPY that met a duplicate left the rows it wrote before as dead tuples. The run's
    // backends report them when they exit.
    eventually("the run's connections closed", Duration::from_secs(30), || {
        db.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            == 0
    });
    let dead =
        db.count("SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables WHERE relname LIKE 'reports_%'");
    assert_eq!(dead, 0, "no COPY met a duplicate and fell back to the temporary table");
}

/// The `archiving` lines of a run's log: one per writer.
fn archiving_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|line| line.contains("archiving") && line.contains("writers=")).collect()
}

#[test]
fn a_one_off_run_writes_its_partitions_with_two_connections_at_once() {
    let stack = Stack::get();
    let topic = stack.create_topic(4);
    let db = stack.create_database();
    let mut produced = stack.produce_reports(&topic, 4, 400, 400);
    let alone = stack.consumer(&topic, &db).env("WEBSENTRY_CONSUMER_WRITERS", "1").success();
    let lines = archiving_lines(&alone.stderr);
    assert!(
        lines.len() == 1 && lines[0].contains("held=4") && lines[0].contains("writers=1"),
        "one writer holds all four partitions:\n{}",
        alone.stderr
    );
    produced.extend(stack.produce_reports(&topic, 4, 400, 400));

    // Partition 0's offset row locked: the transaction that stores its offset waits, and with it
    // everything that transaction holds.
    let mut client = db.client();
    let mut holding = client.transaction().expect("transaction");
    holding.execute("SELECT 1 FROM consumer_offsets WHERE partition = 0 FOR UPDATE", &[]).expect("locking");
    let running = stack.consumer(&topic, &db).spawn();
    let offsets = |partitions: &str| -> Vec<i64> {
        db.column(&format!("SELECT next_offset FROM consumer_offsets WHERE partition IN ({partitions}) ORDER BY 1"))
    };
    // One writer would hold all four partitions in its transaction, which waits.
    eventually("partitions 1 and 3, the second writer's, archived meanwhile", Duration::from_secs(30), || {
        offsets("1, 3") == [200, 200]
    });
    assert_eq!(offsets("0, 2"), [100, 100], "the first writer's transaction waits");
    holding.commit().expect("releasing partition 0's offset");
    let output = running.finish(Duration::from_secs(30));

    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let lines = archiving_lines(&output.stderr);
    assert_eq!(lines.len(), 2, "{}", output.stderr);
    assert!(lines.iter().all(|line| line.contains("held=2") && line.contains("writers=2")), "{}", output.stderr);
    assert_eq!(offsets("0, 1, 2, 3"), [200, 200, 200, 200]);
    assert_each_once(&db, produced);
    db.assert_rollups_match_raw();
}
