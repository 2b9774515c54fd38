//! The fixed windows' answers kept ahead by the upkeep (schema version 14): `site_summary` and
//! `site_summary_pooled` answer from them exactly what they answer from the rollups alone; a batch
//! that writes into hours already summed voids the kept answer (read from the rollups until the
//! upkeep sums it anew), one that writes into the running hour does not; a batch committing while
//! the upkeep starts is in the kept sums or voids them; sums too large for the table are not kept.
//! Calendar months are kept too (schema version 16): a window reads its whole months from them and
//! answers what the rollups answer; a late report into a month voids it until it is summed again.

use std::{collections::BTreeMap, time::Duration as StdDuration};

use postgres::Client;
use rand::Rng;
use rskafka::{
    chrono::DateTime,
    record::{Record, RecordAndOffset},
};
use time::{Duration, OffsetDateTime, Time};
use websentry_consumer::{
    archive::{Archiver, Committed},
    batch::{Batch, Origin},
    upkeep::{self, KeptWindow, KEPT_MONTHS, KEPT_WINDOWS},
};
use websentry_shared::report::{ErrorKind, ProbeError, Report};
use websentry_tests::{eventually, sample_report, seeded_rng, ReportWriter, Stack, TestDatabase, KEEP_EVERYTHING};

/// One row of an answer: url and probe (pooled: the number of locations), then every other
/// column as a float (NULL as NaN).
type Answer = Vec<(String, Option<String>, Vec<f64>)>;

const COLUMNS: &str = "url, probe, probes::float8, successes::float8, uptime, p50_ms, p95_ms, p99_ms,
    extract(epoch FROM last_checked_at)::float8, inconclusive::float8, coverage, measured_s, unknown_s, down_s,
    measured_uptime";

fn answer(client: &mut Client, function: &str, span: &str) -> Answer {
    answer_between(client, function, &format!("now() - interval '{span}'"), "now()")
}

/// The answer over [`from`, `to`), two SQL expressions.
/// `site_uptime` and `site_uptime_pooled` have no percentiles: NULL (NaN) in their place.
fn answer_between(client: &mut Client, function: &str, from: &str, to: &str) -> Answer {
    // Pooled, a row per url stands for all its locations: `locations` in place of the probe.
    let probe = if function.ends_with("_pooled") { "locations::text" } else { "probe" };
    let mut columns = COLUMNS.replacen("probe,", &format!("{probe},"), 1);
    if function.starts_with("site_uptime") {
        columns = columns.replacen("p50_ms, p95_ms, p99_ms", "NULL::float8, NULL::float8, NULL::float8", 1);
    }
    let sql = format!("SELECT {columns} FROM {function}({from}, {to}) ORDER BY 1, 2");
    client
        .query(&sql, &[])
        .unwrap_or_else(|err| panic!("{sql}: {err:?}"))
        .iter()
        .map(|row| {
            let values = (2..15).map(|i| row.get::<_, Option<f64>>(i).unwrap_or(f64::NAN)).collect();
            (row.get(0), row.get(1), values)
        })
        .collect()
}

/// `site_uptime` and `site_uptime_pooled` answer `site_summary`'s and `site_summary_pooled`'s
/// figures over [`from`, `to`), but the percentiles.
fn assert_uptime_is_summarys(client: &mut Client, from: &str, to: &str, what: &str) {
    for (uptime, summary) in [("site_uptime", "site_summary"), ("site_uptime_pooled", "site_summary_pooled")] {
        let mut expected = answer_between(client, summary, from, to);
        for (_, _, values) in &mut expected {
            values[3..6].fill(f64::NAN);
        }
        assert_same(&answer_between(client, uptime, from, to), &expected, &format!("{uptime}, {what}"));
    }
}

/// Equal, the sums of floating-point times allowed to differ in their last bits (summed in
/// another order).
fn assert_same(kept: &Answer, rollups: &Answer, what: &str) {
    assert_eq!(kept.len(), rollups.len(), "{what}: one row per site either way");
    assert!(!kept.is_empty(), "{what}: some rows");
    for ((url, probe, a), (url_b, probe_b, b)) in kept.iter().zip(rollups) {
        assert_eq!((url, probe), (url_b, probe_b), "{what}");
        for (column, (x, y)) in a.iter().zip(b).enumerate() {
            let same = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
            assert!(same, "{what}: {url} {probe:?}, column {}: kept {x}, from the rollups {y}", column + 2);
        }
    }
}

fn kept_now(client: &mut Client, span: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM websentry_kept_window(now() - interval '{span}', now())"), &[])
        .expect("websentry_kept_window")
        .get(0)
}

fn outcomes(windows: &[KeptWindow], hi: OffsetDateTime) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> =
        windows.iter().filter(|w| w.hi == hi).map(|w| (w.span.clone(), w.outcome.clone())).collect();
    found.sort();
    found
}

fn this_hour() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_time(Time::from_hms(now.hour(), 0, 0).expect("an hour"))
}

/// Starts away from the end of an hour: an answer asked in one hour and kept for the next would
/// not be the one compared. Waits for the clock (at most a minute), not for a condition of ours.
fn away_from_the_hour() {
    let next = this_hour() + Duration::hours(1);
    let left = next - OffsetDateTime::now_utc();
    if left < Duration::minutes(1) {
        std::thread::sleep(StdDuration::try_from(left + Duration::seconds(1)).expect("a positive wait"));
    }
}

/// Forty sites, half of them probed from two places, over the last three days up to a minute ago,
/// every five minutes with a stated cadence; some fail, some under-state their cadence (their slots
/// overlap and are capped).
fn archive_days(db: &TestDatabase) -> usize {
    let mut rng = seeded_rng("kept windows");
    let now = OffsetDateTime::now_utc() - Duration::minutes(1);
    let start = now - Duration::days(3);
    let mut writer = ReportWriter::new(db.client(), KEEP_EVERYTHING, 500);
    let mut written = 0;
    let mut at = start;
    while at < now {
        for site in 0..40 {
            for probe in ["eu", "us"].iter().take(if site % 2 == 0 { 2 } else { 1 }) {
                let mut report = sample_report(&format!("https://site-{site}.test/"));
                report.probe = (*probe).into();
                report.checked_at = at + Duration::milliseconds(rng.random_range(0..60_000));
                report.interval_s = Some(if site % 7 == 0 { 200 } else { 300 });
                report.response_ms = rng.random_range(5.0_f64.ln()..5_000_f64.ln()).exp();
                if rng.random_bool(0.05) {
                    report.error = Some(ProbeError { kind: ErrorKind::Connect, message: "refused".into() });
                    report.code = 0;
                }
                writer.write(&report);
                written += 1;
            }
        }
        at += Duration::minutes(5);
    }
    assert_eq!(writer.finish(), written as u64, "every report archived");
    written
}

fn late_report(url: &str, at: OffsetDateTime) -> Report {
    Report { checked_at: at, interval_s: Some(300), probe: "eu".into(), ..sample_report(url) }
}

/// Archives `report` as a batch of its own, read from partition `partition` of another topic than
/// the days' (each partition's offset is stored once here).
fn write(db: &TestDatabase, report: &Report, partition: i32) {
    let mut archiver = Archiver::new(db.client(), KEEP_EVERYTHING);
    let at = Origin { group: "kept", topic: "kept", topic_id: None, partition };
    let record = Record {
        key: None,
        value: Some(report.to_json()),
        headers: BTreeMap::new(),
        timestamp: DateTime::from_timestamp_millis(1_764_410_400_250).expect("a time"),
    };
    let batch = Batch::from_records(at, 0, vec![RecordAndOffset { record, offset: 0 }]);
    let committed = archiver.commit(at, -1, &batch).expect("committing a batch");
    assert!(matches!(committed, Committed::Done { archived: 1, .. }), "{committed:?}");
}

fn probes_of(answer: &Answer, url: &str, probe: &str) -> f64 {
    answer.iter().find(|(u, p, _)| u == url && p.as_deref() == Some(probe)).map(|(_, _, v)| v[0]).expect("a row")
}

#[test]
fn kept_answers_are_the_rollups_answers_and_a_write_into_summed_hours_voids_them() {
    let db = Stack::get().create_database().migrated();
    archive_days(&db);
    away_from_the_hour();
    let (mut reader, mut upkeeper) = (db.client(), db.client());
    // One transaction for the reader: now() stays put, and each statement sees what the upkeep
    // committed.
    reader.batch_execute("BEGIN").expect("begin");
    let rollups: Vec<(Answer, Answer)> = KEPT_WINDOWS
        .iter()
        .map(|span| {
            assert_eq!(kept_now(&mut reader, span), 0, "{span}: nothing kept yet");
            assert_uptime_is_summarys(&mut reader, &format!("now() - interval '{span}'"), "now()", span);
            (answer(&mut reader, "site_summary", span), answer(&mut reader, "site_summary_pooled", span))
        })
        .collect();

    let hi = this_hour() + Duration::hours(1);
    let windows = upkeep::keep_windows(&mut upkeeper).expect("summing the kept windows");
    let spans: Vec<String> =
        outcomes(&windows, hi).into_iter().filter(|(_, outcome)| outcome == "summed").map(|(span, _)| span).collect();
    assert_eq!(spans.len(), KEPT_WINDOWS.len(), "each window summed for this hour: {windows:?}");
    // A row per (site, location). Between 00:00 and 01:00 UTC the day's window asked now has
    // nothing to sum up to its cutoff (23:00): its start is yesterday's midnight, its only whole
    // day (yesterday) ends after the cutoff and is read as its daily row, and its edge hours
    // are after the cutoff.
    let day_is_empty = this_hour().hour() == 0;
    assert!(
        windows.iter().filter(|w| w.outcome == "summed" && w.hi == hi).all(|w| {
            let expected = if w.span == "1 day" && day_is_empty { 0 } else { 60 };
            w.sums == Some(expected)
        }),
        "{windows:?}"
    );

    for (span, (per_location, pooled)) in KEPT_WINDOWS.iter().zip(&rollups) {
        assert_eq!(kept_now(&mut reader, span), 1, "{span}: kept");
        assert_same(&answer(&mut reader, "site_summary", span), per_location, &format!("site_summary, {span}"));
        assert_same(&answer(&mut reader, "site_summary_pooled", span), pooled, &format!("pooled, {span}"));
        assert_uptime_is_summarys(
            &mut reader,
            &format!("now() - interval '{span}'"),
            "now()",
            &format!("kept, {span}"),
        );
    }

    // The answers come from the kept sums: a change there shows (and is undone).
    let tamper = |client: &mut Client, by: i32| {
        client
            .execute(
                "UPDATE rollup_window_sums SET probes = probes + $1 WHERE url = 'https://site-3.test/' AND probe = 'eu'",
                &[&by],
            )
            .expect("changing kept sums")
    };
    // (The week's: the day's sums are empty between 00:00 and 01:00 UTC, above.)
    tamper(&mut upkeeper, 1000);
    let changed = answer(&mut reader, "site_summary", "7 days");
    let changed_uptime = answer(&mut reader, "site_uptime", "7 days");
    tamper(&mut upkeeper, -1000);
    let site = "https://site-3.test/";
    assert_eq!(
        probes_of(&changed, site, "eu"),
        probes_of(&rollups[1].0, site, "eu") + 1000.0,
        "site_summary reads the kept sums"
    );
    assert_eq!(probes_of(&changed_uptime, site, "eu"), probes_of(&changed, site, "eu"), "site_uptime too");

    // A report of the running hour is added by the reader; the kept answers still count.
    write(&db, &late_report(site, OffsetDateTime::now_utc()), 0);
    for span in KEPT_WINDOWS {
        assert_eq!(kept_now(&mut reader, span), 1, "{span}: a write into the running hour voids nothing");
    }
    let now_answer = answer(&mut reader, "site_summary", "1 day");
    assert_eq!(probes_of(&now_answer, site, "eu"), probes_of(&rollups[0].0, site, "eu") + 1.0);

    // A late report, into an hour the kept answers summed: they are void, the answer has it.
    write(&db, &late_report(site, OffsetDateTime::now_utc() - Duration::hours(3)), 1);
    for span in KEPT_WINDOWS {
        assert_eq!(kept_now(&mut reader, span), 0, "{span}: a write into summed hours voids the kept answer");
    }
    let voided: Vec<Answer> = KEPT_WINDOWS.iter().map(|span| answer(&mut reader, "site_summary", span)).collect();
    assert_eq!(probes_of(&voided[0], site, "eu"), probes_of(&rollups[0].0, site, "eu") + 2.0);

    // The next turn sums them anew, with the late report.
    let windows = upkeep::keep_windows(&mut upkeeper).expect("summing again");
    assert!(
        outcomes(&windows, hi).iter().all(|(_, outcome)| outcome == "summed again"),
        "voided answers summed anew: {windows:?}"
    );
    for (span, rollups) in KEPT_WINDOWS.iter().zip(&voided) {
        assert_eq!(kept_now(&mut reader, span), 1, "{span}: kept again");
        assert_same(&answer(&mut reader, "site_summary", span), rollups, &format!("site_summary after, {span}"));
    }
    // A turn with nothing new leaves them as they are.
    let windows = upkeep::keep_windows(&mut upkeeper).expect("a turn with nothing to do");
    assert!(outcomes(&windows, hi).iter().all(|(_, outcome)| outcome == "kept"), "{windows:?}");
    reader.batch_execute("COMMIT").expect("commit");
}

#[test]
fn expiring_rollups_deletes_the_kept_answers_that_summed_them_and_keeps_the_others() {
    let db = Stack::get().create_database().migrated();
    archive_days(&db);
    away_from_the_hour();
    let mut upkeeper = db.client();
    upkeep::keep_windows(&mut upkeeper).expect("summing the kept windows");
    let kept = db.count("SELECT count(*) FROM rollup_windows");
    assert!(kept >= KEPT_WINDOWS.len() as i64, "kept: {kept}");

    // Both levels before yesterday go: every window but the last day summed rows of them.
    let expired: i64 = upkeeper
        .query_one("SELECT websentry_expire_rollups((now() AT TIME ZONE 'UTC')::date - 1)", &[])
        .expect("expiring rollups")
        .get(0);
    assert!(expired > 0, "rows of the days before yesterday expired");
    assert_eq!(
        db.count(
            "SELECT count(*) FROM rollup_windows WHERE lo < ((now() AT TIME ZONE 'UTC')::date - 1)::timestamp AT TIME ZONE 'UTC'"
        ),
        0,
        "no kept answer holds an expired row"
    );
    let mut reader = db.client();
    reader.batch_execute("BEGIN").expect("begin");
    assert_eq!(kept_now(&mut reader, "1 day"), 1, "the last day summed nothing that expired: still kept");
    for span in KEPT_WINDOWS {
        let after = answer(&mut reader, "site_summary", span);
        db.client().execute("DELETE FROM rollup_windows", &[]).expect("dropping the kept answers");
        assert_same(&after, &answer(&mut reader, "site_summary", span), &format!("after expiry, {span}"));
        upkeep::keep_windows(&mut upkeeper).expect("summing again");
    }
    reader.batch_execute("COMMIT").expect("commit");
}

#[test]
fn a_batch_committing_while_the_upkeep_starts_is_in_the_kept_sums() {
    let db = Stack::get().create_database().migrated();
    archive_days(&db);
    away_from_the_hour();
    // A batch's rollups of an hour three hours ago, noted, not committed yet.
    let mut batch = db.client();
    let hour = this_hour() - Duration::hours(3);
    batch.batch_execute("BEGIN").expect("begin");
    batch
        .execute(
            "UPDATE rollup_hourly SET probes = probes + 1000, successes = successes + 1000
             WHERE url = 'https://site-4.test/' AND probe = 'eu' AND hour = $1",
            &[&hour],
        )
        .expect("a batch's hourly rollup");
    batch
        .execute(
            "UPDATE rollup_daily SET probes = probes + 1000, successes = successes + 1000
             WHERE url = 'https://site-4.test/' AND probe = 'eu' AND day = ($1 AT TIME ZONE 'UTC')::date",
            &[&hour],
        )
        .expect("a batch's daily rollup");
    batch.execute("SELECT websentry_note_rollup_writes($1, $1)", &[&hour]).expect("noting");

    let mut upkeeper = db.client();
    let summing = std::thread::spawn(move || upkeep::keep_windows(&mut upkeeper).expect("summing"));
    let mut watcher = db.client();
    eventually("the upkeep waits for the batch", StdDuration::from_secs(10), || {
        watcher
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND mode = 'ExclusiveLock'",
                &[],
            )
            .expect("pg_locks")
            .get::<_, i64>(0)
            == 1
    });
    batch.batch_execute("COMMIT").expect("the batch commits");
    let windows = summing.join().expect("the upkeep thread");
    assert!(windows.iter().any(|w| w.outcome == "summed"), "{windows:?}");

    let mut reader = db.client();
    reader.batch_execute("BEGIN").expect("begin");
    for span in KEPT_WINDOWS {
        assert_eq!(kept_now(&mut reader, span), 1, "{span}: kept, the batch before its snapshot");
    }
    let kept: Vec<Answer> = KEPT_WINDOWS.iter().map(|span| answer(&mut reader, "site_summary", span)).collect();
    watcher.execute("DELETE FROM rollup_windows", &[]).expect("dropping the kept answers");
    for (span, kept) in KEPT_WINDOWS.iter().zip(&kept) {
        assert_eq!(kept_now(&mut reader, span), 0);
        assert_same(kept, &answer(&mut reader, "site_summary", span), &format!("with the batch, {span}"));
    }
    reader.batch_execute("COMMIT").expect("commit");
}

#[test]
fn a_batch_holding_its_note_past_the_lock_wait_fails_the_turn_and_leaves_no_lock_behind() {
    let db = Stack::get().create_database().migrated();
    let mut batch = db.client();
    batch.batch_execute("BEGIN").expect("begin");
    batch.execute("SELECT websentry_note_rollup_writes(now() - interval '3 hours', now())", &[]).expect("noting");

    let mut upkeeper = db.client();
    let err = upkeep::keep_windows(&mut upkeeper).expect_err("the batch holds the lock past the wait");
    let message = format!("{err:#}");
    assert!(message.contains("kept-windows lock") && message.contains("5s"), "{message}");
    batch.batch_execute("COMMIT").expect("the batch commits");

    // Nothing is left held: the next batch notes at once, and the next turn sums.
    let locks: i64 = upkeeper
        .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()", &[])
        .expect("pg_locks")
        .get(0);
    assert_eq!(locks, 0, "no advisory lock left with the upkeep's session");
    batch.batch_execute("BEGIN; SET LOCAL lock_timeout = '1s'").expect("begin");
    batch.execute("SELECT websentry_note_rollup_writes(now(), now())", &[]).expect("a later batch notes at once");
    batch.batch_execute("COMMIT").expect("commit");
    assert!(!upkeep::keep_windows(&mut upkeeper).expect("the next turn").is_empty());
}

#[test]
fn sums_too_large_for_the_table_are_not_kept_and_the_answer_is_read_from_the_rollups() {
    away_from_the_hour();
    let db = Stack::get().create_database().migrated();
    let mut client = db.client();
    // Three days of a site probed two billion times a day: its sum over them does not fit an integer.
    client
        .batch_execute(
            "INSERT INTO rollup_daily (day, url, probe, last_checked_at, probes, successes)
             SELECT d, 'https://busy.test/', 'eu', d + interval '23 hours', 2000000000, 2000000000
             FROM generate_series((now() AT TIME ZONE 'UTC')::date - 4, (now() AT TIME ZONE 'UTC')::date - 2, interval '1 day') d",
        )
        .expect("rollups");
    let windows = upkeep::keep_windows(&mut client).expect("summing");
    let hi = this_hour() + Duration::hours(1);
    let found = outcomes(&windows, hi);
    assert_eq!(found.iter().find(|(span, _)| span == "1 day").map(|(_, o)| o.as_str()), Some("summed"), "{found:?}");
    assert_eq!(
        found.iter().find(|(span, _)| span == "7 days").map(|(_, o)| o.as_str()),
        Some("too large"),
        "{found:?}"
    );
    assert_eq!(kept_now(&mut client, "7 days"), 0, "nothing kept");
    let answer = answer(&mut client, "site_summary", "7 days");
    assert_eq!(probes_of(&answer, "https://busy.test/", "eu"), 6e9, "read from the rollups, in bigint");
}

/// Ten sites probed every six hours for the last 110 days, from one place.
fn archive_months(db: &TestDatabase) {
    let now = OffsetDateTime::now_utc() - Duration::minutes(1);
    let mut writer = ReportWriter::new(db.client(), KEEP_EVERYTHING, 500);
    let mut written = 0;
    let mut at = now - Duration::days(110);
    while at < now {
        for site in 0..10 {
            let mut report = late_report(&format!("https://month-{site}.test/"), at + Duration::minutes(site));
            report.response_ms = 20.0 + 7.0 * site as f64 + 3.0 * f64::from(at.hour());
            report.interval_s = Some(6 * 3600);
            writer.write(&report);
            written += 1;
        }
        at += Duration::hours(6);
    }
    // A site probed once, half an hour before a month ended, every 6 hours: its slot runs on
    // into the next month, which holds measured time of it and no probe.
    let next_month = (now - Duration::days(40)).date().replace_day(1).expect("a first day").midnight().assume_utc();
    let mut spill = late_report("https://spill.test/", next_month - Duration::minutes(30));
    spill.interval_s = Some(6 * 3600);
    writer.write(&spill);
    // Sites that reported only in what the windows starting and ending inside a month leave out
    // of it (`inside_months`): their part of the month is nothing.
    let month_start = |days_ago: i64| (now - Duration::days(days_ago)).date().replace_day(1).expect("a first day");
    let early = month_start(80).midnight().assume_utc() + Duration::hours(20);
    let month_after_50 = (month_start(50) + Duration::days(32)).replace_day(1).expect("a first day");
    let late = month_after_50.midnight().assume_utc() - Duration::hours(30);
    for (url, at) in [("https://only-early.test/", early), ("https://only-late.test/", late)] {
        let mut report = late_report(url, at);
        report.interval_s = Some(3600);
        writer.write(&report);
    }
    // A site measured four times over (hourly slots every 15 minutes) in the hours of the day
    // the window starts in that are before it: its day is capped at 24 hours, its hours at one
    // each, so that day's sums less those hours would show time measured inside the window.
    let overlapping = month_start(80).midnight().assume_utc() + Duration::days(2);
    for quarter in 0..28 {
        let mut report = late_report("https://overlap.test/", overlapping + Duration::minutes(15 * quarter));
        report.interval_s = Some(3600);
        writer.write(&report);
    }
    // A site that reported early in the month of 50 days ago and again after the first window of
    // `inside_months` ends, but not on that window's last day: its last report inside the window
    // is the early one, which only a look at the month's days finds.
    let month_50 = month_start(50).midnight().assume_utc();
    for at in [month_50 + Duration::days(2), month_after_50.midnight().assume_utc() - Duration::days(1)] {
        let mut report = late_report("https://gap.test/", at);
        report.interval_s = Some(3600);
        writer.write(&report);
    }
    assert_eq!(writer.finish(), written + 3 + 28 + 2, "every report archived");
}

/// Windows that start inside the month of 80 days ago, near its start, and end inside that of 50
/// days ago (closed whatever today is), near its end, or now: read as those months' sums less
/// what they have outside the window.
fn inside_months() -> [(String, String); 2] {
    let month_of = |days: u32| {
        format!("(date_trunc('month', (now() - interval '{days} days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')")
    };
    let end_of = |days: u32| {
        format!("((date_trunc('month', (now() - interval '{days} days') AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC')")
    };
    [
        (
            format!("{} + interval '2 days 7 hours'", month_of(80)),
            format!("{} - interval '3 days 5 hours'", end_of(50)),
        ),
        (format!("{} + interval '1 day 2 hours'", month_of(80)), "now()".to_owned()),
    ]
}

#[test]
fn closed_months_are_kept_and_a_window_reads_its_whole_months_from_them() {
    let db = Stack::get().create_database().migrated();
    archive_months(&db);
    let (mut reader, mut upkeeper, mut other) = (db.client(), db.client(), db.client());
    reader.batch_execute("BEGIN").expect("begin");
    // A window of whole months and edge days and hours; the months of the window, one of them
    // (that of 50 days ago) inside it whatever today is; that month alone.
    let (from, to) = ("now() - interval '100 days 5 hours'", "now() - interval '1 day 3 hours'");
    let month = "date_trunc('month', (now() - interval '50 days') AT TIME ZONE 'UTC')";
    let (month_from, month_to) =
        (format!("({month}) AT TIME ZONE 'UTC'"), format!("({month} + interval '1 month') AT TIME ZONE 'UTC'"));
    let [inside, since] = inside_months();
    let windows = [(from.to_owned(), to.to_owned()), (month_from.clone(), month_to.clone()), inside, since];
    let rollups: Vec<(Answer, Answer)> = windows
        .iter()
        .map(|(a, b)| {
            (
                answer_between(&mut reader, "site_summary", a, b),
                answer_between(&mut reader, "site_summary_pooled", a, b),
            )
        })
        .collect();

    let turn = upkeep::keep_windows(&mut upkeeper).expect("summing the kept windows and months");
    let months: Vec<&KeptWindow> = turn.iter().filter(|w| w.span == "1 mon").collect();
    assert_eq!(months.len(), KEPT_MONTHS, "the months before this one: {months:?}");
    assert!(
        months.iter().filter(|w| w.sums.unwrap_or(0) > 0).count() >= 3,
        "the months with reports summed, a row per site: {months:?}"
    );
    let kept_months = |client: &mut Client| -> i64 {
        client
            .query_one(&format!("SELECT coalesce(array_length(ids, 1), 0)::int8 FROM websentry_kept_months(({from}), ({to})) UNION ALL SELECT 0 LIMIT 1"), &[])
            .expect("websentry_kept_months")
            .get(0)
    };
    assert!(kept_months(&mut reader) >= 2, "whole months inside the window are kept");
    for ((a, b), (per_location, pooled)) in windows.iter().zip(&rollups) {
        assert_same(
            &answer_between(&mut reader, "site_summary", a, b),
            per_location,
            &format!("site_summary [{a}, {b})"),
        );
        assert_same(&answer_between(&mut reader, "site_summary_pooled", a, b), pooled, &format!("pooled [{a}, {b})"));
        assert_uptime_is_summarys(&mut reader, a, b, &format!("months kept, [{a}, {b})"));
    }

    // The answer comes from the month's sums: a change there shows in both windows (and is undone).
    let site = "https://month-3.test/";
    // The site's sums in the month [from, to) changed by `by` probes.
    let tamper_month = |client: &mut Client, (from, to): (&str, &str), by: i32| {
        client
            .execute(
                &format!(
                    "UPDATE rollup_window_sums s SET probes = probes + $1 FROM rollup_windows k
                     WHERE s.window_id = k.id AND k.lo = {from} AND k.hi = {to} AND s.url = $2"
                ),
                &[&by, &site],
            )
            .expect("changing a month's sums")
    };
    let tamper = |client: &mut Client, by: i32| tamper_month(client, (&month_from, &month_to), by);
    // The windows that start inside the month of 80 days ago read its sums too (less what it
    // has before them): a change there shows in both.
    let early = (
        "date_trunc('month', (now() - interval '80 days') AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "(date_trunc('month', (now() - interval '80 days') AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'",
    );
    let tamper_early = |client: &mut Client, by: i32| tamper_month(client, early, by);
    assert_eq!(tamper_early(&mut other, 1000), 1, "one row of the month of 80 days ago for the site");
    for ((a, b), (rollups, _)) in windows.iter().zip(&rollups).skip(2) {
        assert_eq!(
            probes_of(&answer_between(&mut reader, "site_summary", a, b), site, "eu"),
            probes_of(rollups, site, "eu") + 1000.0,
            "[{a}, {b}) reads the sums of the month it starts in"
        );
    }
    tamper_early(&mut other, -1000);

    // The windows' answers read while the month's sums are changed.
    let mut tampered = |reader: &mut Client| -> Vec<Answer> {
        assert_eq!(tamper(&mut other, 1000), 1, "one row of the month for the site");
        let answers = windows.iter().map(|(a, b)| answer_between(reader, "site_summary", a, b)).collect();
        tamper(&mut other, -1000);
        answers
    };
    let changed = tampered(&mut reader);
    for (changed, (rollups, _)) in changed.iter().zip(&rollups) {
        assert_eq!(
            probes_of(changed, site, "eu"),
            probes_of(rollups, site, "eu") + 1000.0,
            "read from the month's sums"
        );
    }

    // A report of that month, late: the month no longer counts, the window reads its days again
    // (the report in, the sums not read), until the next turn sums the month anew.
    write(&db, &late_report(site, OffsetDateTime::now_utc() - Duration::days(50)), 0);
    assert_eq!(kept_months(&mut reader), 0, "a month voided: no run of months without a gap");
    let voided = tampered(&mut reader);
    for (voided, (rollups, _)) in voided.iter().zip(&rollups) {
        assert_eq!(
            probes_of(voided, site, "eu"),
            probes_of(rollups, site, "eu") + 1.0,
            "the late report, from the rollups"
        );
    }
    let turn = upkeep::keep_windows(&mut upkeeper).expect("summing again");
    let again: Vec<&KeptWindow> = turn.iter().filter(|w| w.span == "1 mon" && w.outcome == "summed again").collect();
    assert_eq!(again.len(), 1, "the voided month summed anew, the others kept: {turn:?}");
    assert!(kept_months(&mut reader) >= 2);
    for ((a, b), voided) in windows.iter().zip(&voided) {
        assert_same(
            &answer_between(&mut reader, "site_summary", a, b),
            voided,
            &format!("after the late report, [{a}, {b})"),
        );
    }
    // Every kept answer's snapshot is this turn's: the notes before it are gone.
    assert_eq!(db.count("SELECT count(*) FROM rollup_writes"), 0, "notes kept by no answer are deleted");
    reader.batch_execute("COMMIT").expect("commit");
}
