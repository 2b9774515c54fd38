//! Reports dated far from today (a producer's wrong clock) never make the partition set explode: a
//! turn of upkeep creates at most `MAX_DAYS_PER_TURN` day partitions, one transaction per call, and
//! only for days from `LATE_DAYS` before today to `DAYS_AHEAD` after it; reports of other days wait
//! in the default partition, counted and never lost.

use std::time::{Duration as StdDuration, Instant};

use time::{macros::datetime, Date, Duration, OffsetDateTime};
use uuid::Uuid;
use websentry_consumer::upkeep::{self, DAYS_AHEAD, LATE_DAYS, MAX_DAYS_PER_TURN};
use websentry_tests::{midnight, sample_report, Stack, TestDatabase, KEEP_EVERYTHING};

/// A minimal report row at noon of `day`; returns its id.
fn insert_row(client: &mut postgres::Client, day: Date) -> Uuid {
    let id = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO reports (checked_at, id, response_ms, kafka_offset, code, kafka_partition, report_version,
                                  url, probe, kafka_topic)
             VALUES ($1, $2, 5, 0, 200, 0, 1, 'http://late.test/', 'p', 't')",
            &[&(midnight(day) + Duration::hours(12)), &id],
        )
        .expect("inserting a report row");
    id
}

#[test]
fn late_days_get_their_partitions_newest_first_a_few_per_turn_and_far_days_wait_in_the_default_partition() {
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    let today = OffsetDateTime::now_utc().date();
    let day = |n: i64| today + Duration::days(n);
    let within_reach: Vec<i64> = [-LATE_DAYS].into_iter().chain(-20..=-11).collect();
    let out_of_reach = [-400, -45, -LATE_DAYS - 1, DAYS_AHEAD + 1, 400];
    let mut ids = Vec::new();
    for &n in within_reach.iter().chain(&out_of_reach) {
        ids.push((n, insert_row(&mut client, day(n))));
    }
    let turn = |client: &mut postgres::Client| upkeep::run(client, KEEP_EVERYTHING, today).expect("upkeep");

    let first = turn(&mut client);
    let second = turn(&mut client);
    let third = turn(&mut client);

    assert_eq!(MAX_DAYS_PER_TURN, 8, "the cases below are written for 8");
    let days = |ns: &[i64]| ns.iter().map(|&n| day(n)).collect::<Vec<_>>();
    // A call returns its days in order: the first call today, the days ahead and the newest late
    // day; each further call one late day.
    assert_eq!(
        first.created,
        days(&[-11, 0, 1, 2, -12, -13, -14, -15]),
        "today and ahead, then late days newest first"
    );
    assert!(first.creation_cut_short, "{first:?}");
    assert_eq!(second.created, days(&[-16, -17, -18, -19, -20, -LATE_DAYS]), "the rest of the late days");
    assert!(!second.creation_cut_short, "{second:?}");
    assert_eq!(third.created, Vec::<Date>::new(), "nothing left within reach");
    for (n, id) in ids {
        let expected = match within_reach.contains(&n) {
            true => websentry_tests::day_partition(day(n)),
            false => "reports_default".to_owned(),
        };
        assert_eq!(db.partition_holding(id), Some(expected), "the report of day {n}");
    }
    assert_eq!(third.waiting, out_of_reach.len() as i64, "far days wait in the default partition, counted");
}

/// Median of `runs` timings of `sql`, in milliseconds.
fn timed(client: &mut postgres::Client, sql: &str, runs: usize) -> f64 {
    let mut took: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            client.query(sql, &[]).unwrap_or_else(|err| panic!("{sql}: {err:?}"));
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    took.sort_by(f64::total_cmp);
    took[runs / 2]
}

fn partitions(db: &TestDatabase) -> i64 {
    db.count("SELECT count(*) FROM websentry_report_days()")
}

#[test]
fn reports_of_3000_days_since_2000_make_no_partition_and_leave_the_queries_as_fast() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    // Raw reports and rollups kept for ever: no report is past a retention, each is archived raw.
    let consumer = stack
        .consumer(&topic, &db)
        .env("WEBSENTRY_RETENTION_DAYS", "0")
        .env("WEBSENTRY_ROLLUP_RETENTION_DAYS", "0")
        .env("WEBSENTRY_ROLLUP_HOURLY_RETENTION_DAYS", "0");
    let record =
        |report: websentry_shared::report::Report| (Some(report.url.clone().into_bytes()), Some(report.to_json()));
    let far: Vec<_> = (0..3000)
        .map(|n| {
            let mut report = sample_report(&format!("http://site-{}.test/", n % 10));
            report.checked_at = datetime!(2000-01-01 12:00 UTC) + Duration::days(n);
            record(report)
        })
        .collect();
    for chunk in far.chunks(500) {
        stack.produce_raw(&topic, 0, chunk.to_vec());
    }
    stack.produce_raw(
        &topic,
        0,
        (0..20).map(|n| record(sample_report(&format!("http://site-{}.test/", n % 10)))).collect(),
    );
    consumer.success();
    assert_eq!(db.count("SELECT count(*) FROM reports_default"), 3000, "the far days wait in the default partition");
    let queries = [
        ("latest_reports", "SELECT * FROM latest_reports"),
        ("one site's reports", "SELECT count(*) FROM reports WHERE url = 'http://site-3.test/'"),
    ];
    let mut client = db.client();
    let before: Vec<f64> = queries.iter().map(|(_, sql)| timed(&mut client, sql, 7)).collect();
    let partitions_before = partitions(&db);

    // The next start-up, whose upkeep used to create a partition for each of the 3,000 days.
    let started = Instant::now();
    let second = consumer.success();
    let run_took = started.elapsed();

    let created = partitions(&db) - partitions_before;
    let after: Vec<f64> = queries.iter().map(|(_, sql)| timed(&mut client, sql, 7)).collect();
    println!(
        "second start-up: {:.2} s, {created} partitions created ({} in all)",
        run_took.as_secs_f64(),
        partitions(&db)
    );
    for ((name, _), (before, after)) in queries.iter().zip(before.iter().zip(&after)) {
        println!("{name}: {before:.1} ms before, {after:.1} ms after (medians of 7)");
    }
    assert!(created <= MAX_DAYS_PER_TURN as i64, "{created} partitions created in one start-up:\n{}", second.stderr);
    assert!(run_took < StdDuration::from_secs(60), "the start-up's upkeep took {run_took:?}");
    assert_eq!(db.count("SELECT count(*) FROM reports"), 3020, "every report kept");
    assert_eq!(db.count("SELECT count(*) FROM reports_default"), 3000, "the far days still wait there");
    assert!(
        second.stderr.contains("reports wait in the default partition") && second.stderr.contains("reports=3000"),
        "the run warns of them:\n{}",
        second.stderr
    );
    db.assert_rollups_match_raw();
}
