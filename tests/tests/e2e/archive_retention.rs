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

    let retention = Retention { raw_days: Some(31), rollup_days: Some(400) };
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

    let retention = Retention { raw_days: None, rollup_days: Some(400) };
    let upkept = upkeep::run(&mut client, retention, today).expect("upkeep");

    assert_eq!(upkept.rollup_rows_expired, 4, "two hours and two days before today-399: {upkept:?}");
    let kept_hours: Vec<OffsetDateTime> = db.column("SELECT hour FROM rollup_hourly ORDER BY hour");
    assert_eq!(kept_hours, hours[2..], "hours from today-399 on are kept");
    let kept_days: Vec<Date> = db.column("SELECT day FROM rollup_daily ORDER BY day");
    assert_eq!(kept_days, [day(-399), day(0)], "days from today-399 on are kept");
    assert_eq!(upkept.dropped, Vec::<Date>::new(), "raw reports kept for ever drop no day");
}
