//! Retention in days: the raw reports of the days before the retention are dropped as whole day
//! partitions, with the rows of those days waiting in the default partition, and nothing else; the
//! rollups are expired by their own, longer retention. Upkeep is driven in-process with `today`
//! given, so that the wall clock's day does not matter.

use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;
use websentry_consumer::upkeep::{self, Retention};
use websentry_tests::{midnight, Stack};

/// A minimal report row at `checked_at`; returns its id.
fn insert_row(client: &mut postgres::Client, checked_at: OffsetDateTime) -> Uuid {
    let id = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO reports (checked_at, id, response_ms, kafka_offset, code, kafka_partition, report_version,
                                  url, probe, kafka_topic)
             VALUES ($1, $2, 5, 0, 200, 0, 1, 'http://kept.test/', 'p', 't')",
            &[&checked_at, &id],
        )
        .expect("inserting a report row");
    id
}

#[test]
fn retention_drops_exactly_the_days_before_it_and_old_rows_of_the_default_partition() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    client.query("SELECT websentry_create_partitions($1, $2, NULL)", &[&day(-40), &day(2)]).expect("creating days");
    let with_rows = [-40, -35, -31, -30, -1, 0, 2];
    for n in with_rows {
        insert_row(&mut client, midnight(day(n)) + Duration::hours(12));
    }
    let stray = insert_row(&mut client, midnight(day(-45)) + Duration::hours(12));
    assert_eq!(db.partition_holding(stray).as_deref(), Some("reports_default"), "a day without a partition");

    let retention = Retention { raw_days: Some(31), rollup_days: Some(400), hourly_days: None };
    let upkept = upkeep::run(&mut client, retention, today).expect("upkeep");

    assert!(!upkept.skipped && upkept.postponed.is_empty(), "{upkept:?}");
    assert_eq!(upkept.dropped, (-40..=-31).map(day).collect::<Vec<_>>(), "the days before today-30, each once");
    assert_eq!(upkept.created, Vec::<Date>::new(), "every day up to today+2 existed");
    let days: Vec<Date> = db.column("SELECT websentry_report_days()");
    assert_eq!(days, (-30..=2).map(day).collect::<Vec<_>>(), "today-30 ..= today+2 are kept");
    let per_day: Vec<(Date, i64)> = client
        .query("SELECT (checked_at AT TIME ZONE 'UTC')::date, count(*) FROM reports GROUP BY 1 ORDER BY 1", &[])
        .expect("rows per day")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(per_day, [(day(-30), 1), (day(-1), 1), (day(0), 1), (day(2), 1)], "the kept days keep their rows");
    assert_eq!(db.partition_holding(stray), None, "an old row of the default partition goes with its days");

    let again = upkeep::run(&mut client, retention, today).expect("upkeep again");
    assert_eq!((again.dropped, again.created, again.rollup_rows_expired), (vec![], vec![], 0), "nothing left to do");
}

#[test]
fn rollup_retention_expires_the_hours_and_days_before_its_first_day_only() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    let hours = [midnight(day(-500)), midnight(day(-399)) - Duration::hours(1), midnight(day(-399)), midnight(day(0))];
    for (n, hour) in hours.iter().enumerate() {
        let url = format!("http://rollup-{n}.test/");
        client
            .execute(
                "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes)
                 VALUES ($1, $2, 'p', $1, 1, 1)",
                &[hour, &url],
            )
            .expect("an hourly rollup");
        client
            .execute(
                "INSERT INTO rollup_daily (day, url, probe, last_checked_at, probes, successes)
                 VALUES ($1, $2, 'p', $3, 1, 1)",
                &[&hour.date(), &url, hour],
            )
            .expect("a daily rollup");
    }

    let retention = Retention { raw_days: None, rollup_days: Some(400), hourly_days: None };
    let upkept = upkeep::run(&mut client, retention, today).expect("upkeep");

    assert_eq!(upkept.rollup_rows_expired, 4, "two hours and two days before today-399: {upkept:?}");
    let kept_hours: Vec<OffsetDateTime> = db.column("SELECT hour FROM rollup_hourly ORDER BY hour");
    assert_eq!(kept_hours, hours[2..], "hours from today-399 on are kept");
    let kept_days: Vec<Date> = db.column("SELECT day FROM rollup_daily ORDER BY day");
    assert_eq!(kept_days, [day(-399), day(0)], "days from today-399 on are kept");
    assert_eq!(upkept.dropped, Vec::<Date>::new(), "raw reports kept for ever drop no day");
}

/// Site summary of `url` over [from, to): (probes, measured seconds), the one-site path and the
/// all-sites path, which must agree.
fn summary(client: &mut postgres::Client, from: OffsetDateTime, to: OffsetDateTime) -> (i64, f64) {
    let one = client
        .query_one("SELECT probes, measured_s FROM site_summary($1, $2, 'http://hourly.test/')", &[&from, &to])
        .expect("site_summary of one site");
    let all = client
        .query_one("SELECT probes, measured_s FROM site_summary($1, $2)", &[&from, &to])
        .expect("site_summary of all sites");
    let (one, all): ((i64, f64), (i64, f64)) = ((one.get(0), one.get(1)), (all.get(0), all.get(1)));
    assert_eq!(one, all, "the one-site and all-sites answers over {from} .. {to}");
    one
}

/// The hourly horizon as the SQL interface shows it.
fn hourly_kept_from(db: &websentry_tests::TestDatabase) -> Option<OffsetDateTime> {
    db.column::<Option<OffsetDateTime>>("SELECT kept_from FROM rollup_horizons WHERE level = 'hour'").remove(0)
}

#[test]
fn hourly_rollups_expire_a_day_at_a_time_and_windows_before_them_are_taken_in_whole_days() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    let at = |n: i64, hour: i64| midnight(day(n)) + Duration::hours(hour);
    // One site, measured all of every hour of the 30 days before today: an hourly row of one probe
    // per hour, and the daily rows that sum them (as each batch writes both levels).
    hours_and_days(&mut client, midnight(day(-30)), midnight(day(0)));
    assert_eq!(hourly_kept_from(&db), None, "nothing expired yet");
    assert_eq!(summary(&mut client, at(-20, 13), at(-19, 0)), (11, 11.0 * 3600.0), "hours kept: from 13:00");

    // Eight days of hours kept (today and the 7 before): 23 days are due, 16 of them this turn.
    let retention = Retention { raw_days: None, rollup_days: Some(400), hourly_days: Some(8) };
    let first = upkeep::run(&mut client, retention, today).expect("upkeep");
    assert_eq!(first.hours_expired, (-30..=-15).map(day).collect::<Vec<_>>(), "a day at a time, oldest first");
    assert!(first.expiry_cut_short, "{first:?}");
    assert_eq!(first.rollup_rows_expired, 16 * 24);
    assert_eq!(hourly_kept_from(&db), Some(midnight(day(-14))), "the horizon moved with the rows");
    let oldest: Vec<OffsetDateTime> = db.column("SELECT min(hour) FROM rollup_hourly");
    assert_eq!(oldest, [midnight(day(-14))], "every hour from the horizon on is kept");
    // A window starting in a day whose hours are gone is taken from that day's midnight, read
    // from its daily row: 24 probes and a whole day measured, neither the 11 hours asked for nor
    // expired hours counted as unmeasured.
    assert_eq!(summary(&mut client, at(-20, 13), at(-19, 0)), (24, 86_400.0));
    assert_eq!(summary(&mut client, at(-10, 13), at(-9, 0)), (11, 11.0 * 3600.0), "hours still kept");

    let second = upkeep::run(&mut client, retention, today).expect("upkeep again");
    assert_eq!(second.hours_expired, (-14..=-8).map(day).collect::<Vec<_>>(), "the rest of the days due");
    assert!(!second.expiry_cut_short, "{second:?}");
    assert_eq!(hourly_kept_from(&db), Some(midnight(day(-7))));
    assert_eq!(summary(&mut client, at(-10, 13), at(-9, 0)), (24, 86_400.0), "now past the horizon");
    assert_eq!(summary(&mut client, at(-5, 13), at(-4, 3)), (14, 14.0 * 3600.0), "both edges in kept hours");
    // Both edges before the horizon: whole days at both ends (the end rounded up to midnight).
    assert_eq!(summary(&mut client, at(-12, 5), at(-11, 3)), (48, 2.0 * 86_400.0));
    // An edge before the horizon, the other in kept hours.
    assert_eq!(summary(&mut client, at(-9, 20), at(-6, 2)), (24 + 24 + 24 + 2, (3.0 * 24.0 + 2.0) * 3600.0));
    let days: Vec<i64> = db.column("SELECT count(*) FROM rollup_daily");
    assert_eq!(days, [30], "daily rows are kept by their own retention");

    // Hourly series start at the horizon: the hours before it are gone, not unmeasured.
    let buckets: Vec<(OffsetDateTime, f64)> = client
        .query(
            "SELECT bucket_start, coverage FROM site_timeline($1, $2, 'hour', 'http://hourly.test/')",
            &[&at(-9, 0), &at(-6, 0)],
        )
        .expect("site_timeline")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(buckets.len(), 24, "the hours of day -7 only: {buckets:?}");
    assert_eq!(buckets[0].0, midnight(day(-7)));
    assert!(buckets.iter().all(|(_, coverage)| *coverage == 1.0), "{buckets:?}");
    let latency: Vec<OffsetDateTime> = db.column(&format!(
        "SELECT bucket_start FROM site_latency('{}', '{}', 'hour', 'http://hourly.test/') ORDER BY 1 LIMIT 1",
        at(-9, 0),
        at(-6, 0)
    ));
    assert_eq!(latency, [midnight(day(-7))], "site_latency's hours start at the horizon too");
    let gone: Vec<i64> =
        db.column(&format!("SELECT count(*) FROM site_timeline('{}', '{}', 'hour')", at(-12, 0), at(-10, 0)));
    assert_eq!(gone, [0], "a series wholly before the horizon has no bucket");

    // A late report writes an hour before the horizon: it is not read (the window is still taken
    // in whole days there), and the next turn deletes it.
    client
        .execute(
            "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes) VALUES ($1, 'http://hourly.test/', 'p', $1, 5, 5)",
            &[&at(-12, 5)],
        )
        .expect("a late hour");
    assert_eq!(summary(&mut client, at(-12, 5), at(-12, 6)), (24, 86_400.0));
    let third = upkeep::run(&mut client, retention, today).expect("a third upkeep");
    assert_eq!((third.hours_expired, third.rollup_rows_expired), (vec![], 1), "only the late hour");
    assert_eq!(hourly_kept_from(&db), Some(midnight(day(-7))), "the horizon stays");
}

/// Hourly and daily rows of http://hourly.test/ for every hour from `from` to `to` (excluded), one
/// probe each, measured all of each hour, the daily rows summing them.
fn hours_and_days(client: &mut postgres::Client, from: OffsetDateTime, to: OffsetDateTime) {
    client
        .batch_execute(&format!(
            "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes, covered_us, down_us, b40)
             SELECT h, 'http://hourly.test/', 'p', h, 1, 1, 3600000000, 0, 1
             FROM generate_series(timestamptz '{from}', timestamptz '{to}' - interval '1 hour', interval '1 hour') h;
             INSERT INTO rollup_daily (day, url, probe, last_checked_at, probes, successes, covered_us, down_us, b40)
             SELECT (hour AT TIME ZONE 'UTC')::date, url, probe, max(last_checked_at), sum(probes), sum(successes),
                    sum(covered_us), sum(down_us), sum(b40)
             FROM rollup_hourly GROUP BY 1, 2, 3;"
        ))
        .expect("hours and days of rollups");
}

#[test]
fn a_batch_holding_an_hour_of_a_day_due_postpones_that_day_to_the_next_turn_and_fails_nothing() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    hours_and_days(&mut client, midnight(day(-10)), midnight(day(0)));
    // A batch's transaction holding a row of day -9, as its upsert of a late report would.
    let mut batch = db.client();
    let mut held = batch.transaction().expect("a batch's transaction");
    let locked = held
        .execute("SELECT 1 FROM rollup_hourly WHERE hour = $1 FOR UPDATE", &[&(midnight(day(-9)) + Duration::hours(5))])
        .expect("locking an hour");
    assert_eq!(locked, 1);

    // Days -10, -9 and -8 are due (8 days kept): -10 goes, -9 waits out the lock and the turn ends.
    let retention = Retention { raw_days: None, rollup_days: Some(400), hourly_days: Some(8) };
    let first = upkeep::run(&mut client, retention, today).expect("an upkeep that meets a lock does not fail");
    assert_eq!(first.hours_expired, [day(-10)], "{first:?}");
    assert!(first.expiry_cut_short, "the rest is left to the next turn: {first:?}");
    assert_eq!(first.rollup_rows_expired, 24);
    assert_eq!(hourly_kept_from(&db), Some(midnight(day(-9))), "the horizon stops at the day it could not expire");
    let left: Vec<i64> = db.column(&format!(
        "SELECT count(*) FROM rollup_hourly WHERE hour >= '{}' AND hour < '{}'",
        midnight(day(-9)),
        midnight(day(-8))
    ));
    assert_eq!(left, [24], "the held day is whole: its deletion was rolled back");
    // Its hours are still read as hours: nothing is answered from a half-deleted day.
    assert_eq!(summary(&mut client, midnight(day(-9)) + Duration::hours(13), midnight(day(-8))), (11, 11.0 * 3600.0));

    held.rollback().expect("the batch ends");
    let second = upkeep::run(&mut client, retention, today).expect("the next turn");
    assert_eq!(second.hours_expired, [day(-9), day(-8)], "{second:?}");
    assert!(!second.expiry_cut_short, "{second:?}");
    assert_eq!(hourly_kept_from(&db), Some(midnight(day(-7))));
}

#[test]
fn an_hourly_retention_of_one_day_keeps_todays_hours_and_answers_yesterday_in_whole_days() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let this_hour = now.replace_minute(0).and_then(|t| t.replace_second(0)).and_then(|t| t.replace_nanosecond(0));
    let this_hour = this_hour.expect("the current hour");
    // Three whole days before today, and today's hours up to the current one (included).
    hours_and_days(&mut client, midnight(today - Duration::days(3)), this_hour + Duration::hours(1));
    let retention = Retention { raw_days: None, rollup_days: Some(400), hourly_days: Some(1) };
    let upkept = upkeep::run(&mut client, retention, today).expect("upkeep");
    let expired: Vec<Date> = (1..=3).rev().map(|n| today - Duration::days(n)).collect();
    assert_eq!(upkept.hours_expired, expired, "{upkept:?}");
    assert_eq!(hourly_kept_from(&db), Some(midnight(today)), "today's hours only");
    let hours_today = i64::from(this_hour.hour()) + 1;
    let kept: Vec<i64> = db.column("SELECT count(*) FROM rollup_hourly");
    assert_eq!(kept, [hours_today], "every hour of today is kept");
    // A day's worth of hours up to this one start yesterday, whose hours are gone: taken from
    // yesterday's midnight, in whole days there, and today's hours as hours. (Up to this hour's
    // start, so that both answers see the same closed hours whenever each runs.)
    let (probes, measured_s) = summary(&mut client, now - Duration::hours(24), this_hour);
    assert_eq!(probes, 24 + hours_today - 1, "yesterday whole and today's hours before this one");
    assert_eq!(measured_s, (24.0 + (hours_today - 1) as f64) * 3600.0, "all of it measured, none of it unknown");
}

/// The days that have a partition of the hourly rollups, oldest first.
fn hourly_days(db: &websentry_tests::TestDatabase) -> Vec<Date> {
    db.column("SELECT websentry_hourly_days()")
}

/// Rows of the hourly rollups per partition, as `(partition, rows)` in the order of their name.
fn hourly_rows_by_partition(db: &websentry_tests::TestDatabase) -> Vec<(String, i64)> {
    let mut client = db.client();
    client
        .query("SELECT tableoid::regclass::text, count(*) FROM rollup_hourly GROUP BY 1 ORDER BY 1", &[])
        .expect("rows by partition")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn hourly_partition(day: Date) -> String {
    format!("rollup_hourly_p{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day())
}

#[test]
fn hourly_rollups_live_in_day_partitions_that_their_retention_drops_whole() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    let at = |n: i64, hour: i64| midnight(day(n)) + Duration::hours(hour);
    assert_eq!(hourly_days(&db), [day(0), day(1), day(2)], "the migration creates today and the two days after");
    // Ten whole days before today, written before their partitions exist (a consumer that was
    // down): they wait in the default partition, and are still read.
    hours_and_days(&mut client, midnight(day(-10)), midnight(day(0)));
    assert_eq!(hourly_rows_by_partition(&db), [("rollup_hourly_default".to_owned(), 240)]);
    assert_eq!(summary(&mut client, at(-5, 13), at(-4, 3)), (14, 14.0 * 3600.0));

    // Eight days of hours kept: the seven days before today within them get their partition
    // (newest first, their rows moved out of the default partition), the three older ones expire
    // from the default partition.
    let retention = Retention { raw_days: None, rollup_days: Some(400), hourly_days: Some(8) };
    let first = upkeep::run(&mut client, retention, today).expect("upkeep");
    assert_eq!(first.hourly_created, (-7..=-1).rev().map(day).collect::<Vec<_>>(), "{first:?}");
    assert_eq!(first.hours_expired, [day(-10), day(-9), day(-8)], "{first:?}");
    assert_eq!(first.rollup_rows_expired, 3 * 24);
    assert_eq!(hourly_days(&db), (-7..=2).map(day).collect::<Vec<_>>());
    let by_partition = hourly_rows_by_partition(&db);
    assert_eq!(
        by_partition,
        (-7..=-1).map(|n| (hourly_partition(day(n)), 24)).collect::<Vec<_>>(),
        "none left in default"
    );
    assert_eq!(summary(&mut client, at(-5, 13), at(-4, 3)), (14, 14.0 * 3600.0), "the same answer from the partitions");

    // A day later, day -7's hours are past the retention: the horizon moves past them (their rows
    // counted) and the new day ahead is created; the partition stays until the next turn, so
    // that no reader that took the horizon before the move finds it gone.
    let next_day = upkeep::run(&mut client, retention, day(1)).expect("the next day's upkeep");
    assert_eq!(next_day.hours_expired, [day(-7)], "{next_day:?}");
    assert_eq!(next_day.rollup_rows_expired, 24);
    assert_eq!(next_day.hourly_created, [day(3)], "{next_day:?}");
    assert_eq!(next_day.hourly_dropped, Vec::<Date>::new(), "{next_day:?}");
    assert_eq!(hourly_kept_from(&db), Some(midnight(day(-6))));
    assert_eq!(summary(&mut client, at(-7, 13), at(-6, 0)), (24, 86_400.0), "day -7 now in whole days");
    assert_eq!(hourly_days(&db), (-7..=3).map(day).collect::<Vec<_>>());
    // The next turn drops it whole.
    let turn = upkeep::run(&mut client, retention, day(1)).expect("the next turn");
    assert_eq!((turn.hourly_dropped, turn.hours_expired, turn.rollup_rows_expired), (vec![day(-7)], vec![], 0));
    assert_eq!(hourly_days(&db), (-6..=3).map(day).collect::<Vec<_>>(), "day -7's partition is gone");
    let analyzed: Vec<i64> =
        db.column("SELECT count(*) FROM pg_stats WHERE tablename = 'rollup_hourly' AND inherited AND attname = 'url'");
    assert_eq!(analyzed, [1], "the parent's statistics taken after the drop");
    let gone: Vec<Option<String>> = db.column(&format!("SELECT to_regclass('{}')::text", hourly_partition(day(-7))));
    assert_eq!(gone, [None], "dropped, not emptied");
    assert_eq!(summary(&mut client, at(-7, 13), at(-6, 0)), (24, 86_400.0), "the same answer");

    // A late hour before the horizon and one far ahead (a wrong clock) have no partition: they
    // wait in the default partition, the late one until the next turn deletes it, the far one
    // until its day comes within reach.
    for hour in [at(-9, 5), at(400, 0)] {
        client
            .execute(
                "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes) VALUES ($1, 'http://hourly.test/', 'p', $1, 5, 5)",
                &[&hour],
            )
            .expect("an hour without a partition");
    }
    let waiting: Vec<i64> = db.column("SELECT count(*) FROM rollup_hourly_default");
    assert_eq!(waiting, [2]);
    let third = upkeep::run(&mut client, retention, day(1)).expect("a third upkeep");
    assert_eq!(
        (third.hours_expired, third.rollup_rows_expired, third.hourly_created),
        (vec![], 1, vec![]),
        "only the late hour"
    );
    let left: Vec<OffsetDateTime> = db.column("SELECT hour FROM rollup_hourly_default");
    assert_eq!(left, [at(400, 0)], "the far hour stays, read where asked for");
    assert_eq!(hourly_days(&db), (-6..=3).map(day).collect::<Vec<_>>(), "no partition for a day out of reach");
}

#[test]
fn a_batch_writing_the_hourly_rollups_postpones_the_drop_of_a_day_and_fails_nothing() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    hours_and_days(&mut client, midnight(day(-3)), midnight(day(0)));
    let retention = Retention { raw_days: None, rollup_days: Some(400), hourly_days: Some(8) };
    upkeep::run(&mut client, retention, today).expect("upkeep");
    assert_eq!(hourly_days(&db), (-3..=2).map(day).collect::<Vec<_>>());
    // A batch in the middle of its transaction, having written an hour of today: it holds
    // rollup_hourly, which dropping any of its partitions must lock whole.
    let mut batch = db.client();
    let mut held = batch.transaction().expect("a batch's transaction");
    held.execute(
        "INSERT INTO rollup_hourly (hour, url, probe, last_checked_at, probes, successes) VALUES ($1, 'http://other.test/', 'p', $1, 1, 1)",
        &[&midnight(day(0))],
    )
    .expect("a batch's hour");
    // Two days of hours kept: the horizon moves past days -3 and -2 all the same (their
    // partitions are only counted), then the next turn's drop of their partitions waits for the
    // batch, gives up and leaves them to the turn after.
    let shorter = Retention { hourly_days: Some(2), ..retention };
    let first = upkeep::run(&mut client, shorter, today).expect("upkeep");
    assert_eq!(first.hours_expired, [day(-3), day(-2)], "{first:?}");
    assert_eq!(first.rollup_rows_expired, 48);
    assert_eq!(hourly_kept_from(&db), Some(midnight(day(-1))));
    let second = upkeep::run(&mut client, shorter, today).expect("an upkeep that meets a lock does not fail");
    assert!(second.hourly_drop_postponed, "{second:?}");
    assert_eq!(second.hourly_dropped, Vec::<Date>::new(), "{second:?}");
    assert_eq!(
        hourly_days(&db),
        (-3..=2).map(day).collect::<Vec<_>>(),
        "nothing dropped while the batch holds the table"
    );
    held.commit().expect("the batch commits");
    let third = upkeep::run(&mut client, shorter, today).expect("the next turn");
    assert_eq!(third.hourly_dropped, [day(-3), day(-2)], "{third:?}");
    assert!(!third.hourly_drop_postponed, "{third:?}");
    assert_eq!(hourly_days(&db), (-1..=2).map(day).collect::<Vec<_>>());
    let rows: Vec<i64> = db.column("SELECT count(*) FROM rollup_hourly");
    assert_eq!(rows, [24 + 1], "day -1's hours and the batch's");
}

#[test]
fn hours_kept_longer_than_the_late_days_get_no_partition_a_day_and_expire_from_the_default_one() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    // 90 days of hours: a partition a day would be 90 of them, each planned and locked by the
    // readers of long windows. The upkeep creates none; the days the migration created stay.
    let retention = Retention { raw_days: None, rollup_days: Some(400), hourly_days: Some(90) };
    let later = upkeep::run(&mut client, retention, day(5)).expect("upkeep five days on");
    assert_eq!(later.hourly_created, Vec::<Date>::new(), "{later:?}");
    assert_eq!(hourly_days(&db), (0..=2).map(day).collect::<Vec<_>>());
    hours_and_days(&mut client, midnight(day(3)), midnight(day(6)));
    assert_eq!(
        hourly_rows_by_partition(&db),
        [("rollup_hourly_default".to_owned(), 72)],
        "days 3 to 5 in the default one"
    );
    // 90 days on, day 3's hours expire from the default partition.
    let expired = upkeep::run(&mut client, retention, day(93)).expect("upkeep 90 days on");
    assert_eq!(expired.hours_expired, [day(3)], "{expired:?}");
    assert_eq!(expired.rollup_rows_expired, 24);
    assert_eq!(hourly_rows_by_partition(&db), [("rollup_hourly_default".to_owned(), 48)]);
}
