//! A version-17 archive (the hourly rollups in one table) migrated to version 18 (a partition per
//! UTC day): every hourly row kept, in its day's partition from the hourly horizon to the days
//! ahead and in the default partition otherwise, with the same answers and the same horizon.

use time::{Duration, OffsetDateTime};
use websentry_tests::{midnight, migrate_to_version, Stack, TestDatabase};

/// A database at schema version 17 with its SQL interface, as a version-17 consumer left it.
fn version_17_database() -> TestDatabase {
    let db = Stack::get().create_database();
    migrate_to_version(&mut db.client(), 17);
    db
}

/// Every hourly row as text, in key order: what the migration must keep.
fn hourly_rows(db: &TestDatabase) -> Vec<String> {
    db.column("SELECT r::text FROM rollup_hourly r ORDER BY url, probe, hour")
}

/// The hourly rollups' columns that have a comment, with it.
fn column_comments(db: &TestDatabase) -> Vec<String> {
    db.column(
        "SELECT attname || ': ' || col_description(attrelid, attnum) FROM pg_attribute
         WHERE attrelid = 'rollup_hourly'::regclass AND attnum > 0 AND col_description(attrelid, attnum) IS NOT NULL
         ORDER BY attname",
    )
}

#[test]
fn hourly_rollups_of_version_17_move_into_day_partitions_with_every_row_and_answer() {
    let db = version_17_database();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    // Two sites, every hour from 12 days back to the end of tomorrow, and their daily rows; the
    // hours before day -7 expired by version 17's upkeep (the horizon), but for one written late
    // at day -20; one far ahead (a wrong clock).
    client
        .batch_execute(&format!(
            "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes, covered_us, down_us, b40, b41)
             SELECT h, u, 'p', h, 3, 2, 3600000000, 1200000000, 1, 1
             FROM generate_series(timestamptz '{from}', timestamptz '{to}', interval '1 hour') h,
                  unnest(ARRAY['http://a.test/', 'http://b.test/']) u;
             INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes)
             VALUES ('{late}', 'http://a.test/', 'p', '{late}', 1, 1), ('{far}', 'http://a.test/', 'p', '{far}', 1, 1);
             INSERT INTO rollup_daily (day, url, probe, last_checked_at, probes, successes, covered_us, down_us, b40, b41)
             SELECT (hour AT TIME ZONE 'UTC')::date, url, probe, max(last_checked_at), sum(probes), sum(successes),
                    sum(covered_us), sum(down_us), sum(b40), sum(b41)
             FROM rollup_hourly GROUP BY 1, 2, 3;
             INSERT INTO rollup_retention (level, kept_from) VALUES ('hour', '{horizon}');",
            from = midnight(day(-7)),
            to = midnight(day(2)) - Duration::hours(1),
            late = midnight(day(-20)) + Duration::hours(3),
            far = midnight(day(90)),
            horizon = midnight(day(-7)),
        ))
        .expect("version 17's rollups");
    let rows = hourly_rows(&db);
    let comments = column_comments(&db);
    assert!(comments.len() >= 3, "covered_us, down_us and inconclusive have one: {comments:?}");
    let window = (midnight(day(-3)) + Duration::hours(7), midnight(day(-1)) + Duration::hours(9));
    let answer = |client: &mut postgres::Client| -> Vec<String> {
        client
            .query("SELECT s::text FROM site_summary($1, $2) s ORDER BY url", &[&window.0, &window.1])
            .expect("site_summary")
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    let before = answer(&mut client);
    assert_eq!(before.len(), 2, "{before:?}");

    let db = db.migrated();
    let mut client = db.client();
    assert_eq!(hourly_rows(&db), rows, "every hourly row, unchanged");
    assert_eq!(answer(&mut client), before, "the same answer");
    let placed: Vec<(String, i64)> = client
        .query("SELECT tableoid::regclass::text, count(*) FROM rollup_hourly GROUP BY 1 ORDER BY 1", &[])
        .expect("rows by partition")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let partition = |n: i64| {
        let d = day(n);
        format!("rollup_hourly_p{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
    };
    let mut expected = vec![("rollup_hourly_default".to_owned(), 2)];
    expected.extend((-7..=1).map(|n| (partition(n), 48)));
    assert_eq!(placed, expected, "a partition per day from the horizon, the late and the far hour in the default one");
    let days: Vec<time::Date> = db.column("SELECT websentry_hourly_days()");
    assert_eq!(days, (-7..=2).map(day).collect::<Vec<_>>(), "and the days ahead, empty");
    let horizon: Vec<OffsetDateTime> = db.column("SELECT kept_from FROM rollup_horizons WHERE level = 'hour'");
    assert_eq!(horizon, [midnight(day(-7))], "the horizon as it was");
    assert_eq!(column_comments(&db), comments, "the columns' comments come along");
    let old: Vec<Option<String>> = db.column("SELECT to_regclass('rollup_hourly_v17')::text");
    assert_eq!(old, [None], "the table as it was is gone");
}
