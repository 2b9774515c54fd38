//! The consumer writes several fetches in one transaction and merges their rollups once: a one-off
//! run catching up, fetch after fetch up to `WEBSENTRY_BATCH_MAX` records; a daemon, what one poll
//! of its partitions brought. Seen here by the transactions the rows were written in, and through
//! a kill in the middle of such a transaction.

use std::time::Duration;

use uuid::Uuid;
use websentry_tests::{eventually, Relay, Stack, TestDatabase};

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
