//! The writer's look-up and its fallback. A report archived before (a producer's retry) is found by
//! the look-up, and the rest of the batch is one `COPY`. A report another writer archives between
//! the look-up and the `COPY` (a replica that took the partition over) makes the `COPY` fail; the
//! batch is then written through the temporary table, the report once, and only the new ones are
//! said new (the rollups count only those). Writers merging rollups of the same sites lock the
//! rows in key order, whatever order their batches hold them in, so that they wait on each other
//! and never deadlock.

use std::{thread, time::Duration};

use postgres::Transaction;

use websentry_consumer::{batch::Archivable, insert, rollup};
use websentry_tests::{eventually, sample_report, Stack};

fn archivable(url: &str, offset: i64) -> Archivable {
    let report = sample_report(url);
    let payload = report.to_json();
    Archivable { report, extra: None, offset, key: None, payload }
}

/// The reports written as the consumer writes a batch: in a savepoint of the transaction, which
/// the writer rolls back to when its `COPY` meets a report archived meanwhile.
fn write<'r>(tx: &mut Transaction<'_>, reports: &'r [Archivable]) -> anyhow::Result<Vec<&'r Archivable>> {
    let mut batch = tx.savepoint("batch")?;
    let new = insert::insert_reports(&mut batch, "batch", None, "t", 0, reports)?;
    batch.commit()?;
    Ok(new)
}

#[test]
fn a_report_archived_meanwhile_by_another_writer_is_written_once_and_not_said_new() {
    let database = Stack::get().create_database().migrated();
    let taken = archivable("https://taken.test/", 0);
    let others = [archivable("https://a.test/", 1), archivable("https://b.test/", 2)];
    let batch = [taken.clone(), others[0].clone(), others[1].clone()];

    // The other writer archives `taken` and holds its transaction open.
    let mut first = database.client();
    let mut holding = first.transaction().expect("transaction");
    let written = write(&mut holding, std::slice::from_ref(&taken)).expect("first writer");
    assert_eq!(written.len(), 1);

    // This writer does not see it yet, so its COPY waits on the other's unique key…
    let mut second = database.client();
    let writer = thread::spawn(move || {
        let mut tx = second.transaction().expect("transaction");
        let new: Vec<String> =
            write(&mut tx, &batch).expect("second writer").iter().map(|r| r.report.url.clone()).collect();
        tx.commit().expect("commit");
        new
    });
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
        database.name
    );
    eventually("the second writer's COPY waits for the first one's transaction", Duration::from_secs(30), || {
        database.count(&waiting) == 1
    });
    // …and fails when it commits: the fallback writes the other two, once each.
    holding.commit().expect("first commit");
    let new = writer.join().expect("second writer");
    assert_eq!(new, ["https://a.test/", "https://b.test/"], "only the reports this writer added are new");
    assert_eq!(database.count("SELECT count(*) FROM reports"), 3);
    assert_eq!(database.count("SELECT count(DISTINCT id) FROM reports"), 3);
}

#[test]
fn a_retry_of_an_archived_report_is_found_by_the_look_up_and_the_rest_copied_at_once() {
    let database = Stack::get().create_database().migrated();
    let mut client = database.client();
    let archived: Vec<Archivable> = (0..3).map(|i| archivable(&format!("https://{i}.test/"), i)).collect();
    let mut tx = client.transaction().expect("transaction");
    write(&mut tx, &archived).expect("first batch");
    tx.commit().expect("commit");

    let batch = [archived[1].clone(), archivable("https://new.test/", 3), archived[1].clone()];
    let mut tx = client.transaction().expect("transaction");
    let new: Vec<String> = write(&mut tx, &batch).expect("second batch").iter().map(|r| r.report.url.clone()).collect();
    let fallback: bool = tx
        .query_one("SELECT to_regclass('pg_temp.incoming_reports') IS NOT NULL", &[])
        .expect("looking for the fallback's table")
        .get(0);
    tx.commit().expect("commit");

    assert_eq!(new, ["https://new.test/"], "the retry is not new, and not written twice");
    assert!(!fallback, "the COPY did not fail: the look-up found the archived report");
    assert_eq!(database.count("SELECT count(*) FROM reports"), 4);
}

#[test]
fn writers_merging_the_same_sites_lock_their_rollup_rows_in_one_order_and_never_deadlock() {
    // Two hours a day of each site takes the merge that sums a batch's hours into days first; one
    // hour a day, the one that copies them.
    for hours in [1, 2] {
        let database = Stack::get().create_database().migrated();
        let at = |url: &str, hour: i64| {
            let mut report = sample_report(url);
            // Yesterday, from 10:00 UTC: whole hours of one day, none of them to come.
            let hour = u8::try_from(10 + hour).expect("an hour");
            report.checked_at = (report.checked_at - time::Duration::days(1)).replace_hour(hour).expect("an hour");
            report
        };
        let reports = |url: &str| -> Vec<_> { (0..hours).map(|h| at(url, h)).collect() };

        // The first writer merges site a and holds its transaction open.
        let mut first = database.client();
        let mut holding = first.transaction().expect("transaction");
        rollup::write(&mut holding, &rollup::aggregate(&reports("https://a.test/"))).expect("first writer, a");

        // The second merges b and a, its rows given b first: in key order it waits on a holding
        // nothing, where in the given order it would hold b while waiting on a.
        let mut second = database.client();
        let both: Vec<_> = reports("https://b.test/").into_iter().chain(reports("https://a.test/")).collect();
        let writer = thread::spawn(move || {
            let mut rows = rollup::aggregate(&both);
            rows.reverse();
            assert_eq!(rows[0].url, "https://b.test/", "the batch holds b first");
            let mut tx = second.transaction()?;
            rollup::write(&mut tx, &rows)?;
            tx.commit()?;
            anyhow::Ok(())
        });
        let waiting = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
            database.name
        );
        eventually("the second writer waits on the first one's rows", Duration::from_secs(30), || {
            database.count(&waiting) == 1
        });
        // The first now merges b: a deadlock (one of the two failing) if the second held it.
        rollup::write(&mut holding, &rollup::aggregate(&reports("https://b.test/"))).expect("first writer, b");
        holding.commit().expect("first commit");
        writer.join().expect("second writer").expect("the second writer commits too");

        for table in ["rollup_hourly", "rollup_daily"] {
            let counted: Vec<i64> =
                database.column(&format!("SELECT sum(probes)::bigint FROM {table} GROUP BY url ORDER BY url"));
            assert_eq!(counted, [2 * hours, 2 * hours], "{table}, {hours} hour(s) a day: both writers' probes");
        }
    }
}
