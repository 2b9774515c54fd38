//! The writer's look-up and its fallback. A report archived before (a producer's retry) is found by
//! the look-up, and the rest of the batch is one `COPY`. A report another writer archives between
//! the look-up and the `COPY` (a replica that took the partition over) makes the `COPY` fail; the
//! batch is then written through the temporary table, the report once, and only the new ones are
//! said new (the rollups count only those).

use std::{thread, time::Duration};

use postgres::Transaction;

use websentry_consumer::{batch::Archivable, insert};
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
