//! Rollups: per (url, probe) and hour, and per UTC day, what the reports of a batch add, written
//! in the batch's transaction. Only reports that were new are counted (a duplicate changes
//! nothing), so the rollups are exactly once like the raw rows.
//!
//! Time as well as probes: a report that states its cadence (`interval_s`) stands for its slot,
//! `[checked_at, checked_at + interval_s)`, split at hour boundaries; each piece adds to its hour's
//! measured time (`covered_us`, microseconds), and to its down time (`down_us`) when the probe
//! failed. A slot's tail may add to an hour with no report of its own (its row then has no probe).
//! Inconclusive failures (the round's canaries failed too) are counted, but measure no time. A
//! report without a cadence measures no time either: where no report of an hour states one, its
//! measured time is NULL (unknown), not zero. The sums are not capped here: readers cap each bucket
//! at its length (see `site_summary`), so overlapping slots (two producers under one name, a producer
//! faster than it says) never measure more than the whole bucket.
//!
//! The consumer aggregates a batch per site and hour itself, copies those rows into a temporary
//! table and merges them into `rollup_hourly`, and their sums per day into `rollup_daily`: one
//! merged row per site and hour rather than a statement per report.
//!
//! Latency histogram (successful probes only): [`BUCKETS`] log-spaced buckets, bucket 0 below
//! 1 ms, bucket k ≥ 1 covering [1.1^(k-1), 1.1^k) ms, the last one open above 1.1^126 ms (~165 s).
//! A percentile is given as its bucket's geometric midpoint, so for a value in [1 ms, 165 s) it is
//! within √1.1 − 1 = 4.88 % of the exact one (0.5 ms absolute below 1 ms).

use std::{collections::HashMap, sync::LazyLock};

use anyhow::Context;
use postgres::{binary_copy::BinaryCopyInWriter, types::ToSql, types::Type, Transaction};
use time::{OffsetDateTime, Time};
use websentry_shared::report::{ErrorKind, Report};

use crate::document::split_nanos;

/// Histogram buckets, `b0`…`b127` in the tables.
pub const BUCKETS: usize = 128;

/// Growth factor from one bucket to the next.
const FACTOR: f64 = 1.1;

/// Failure counters, one per error kind, in the order of [`kind_index`].
pub const FAILURES: [&str; 8] = [
    "failures_invalid_url",
    "failures_dns",
    "failures_connect",
    "failures_tls",
    "failures_timeout",
    "failures_http",
    "failures_body_limit",
    "failures_regex_limit",
];

fn kind_index(kind: ErrorKind) -> usize {
    // Exhaustive: a new error kind does not compile until it has its counter (and a migration).
    match kind {
        ErrorKind::InvalidUrl => 0,
        ErrorKind::Dns => 1,
        ErrorKind::Connect => 2,
        ErrorKind::Tls => 3,
        ErrorKind::Timeout => 4,
        ErrorKind::Http => 5,
        ErrorKind::BodyLimit => 6,
        ErrorKind::RegexLimit => 7,
    }
}

/// The histogram bucket of a response time (as `websentry_bucket` in SQL).
pub fn bucket(ms: f64) -> usize {
    // Below 1 ms, and what is not a number at all.
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    let above = (ms.ln() / FACTOR.ln()).floor();
    // `as` saturates; a huge value lands in the open last bucket.
    (1 + above as usize).min(BUCKETS - 1)
}

/// The response time a bucket stands for: its geometric midpoint (as `websentry_bucket_ms`).
pub fn bucket_ms(bucket: usize) -> f64 {
    if bucket == 0 {
        0.5
    } else {
        FACTOR.powf(bucket as f64 - 0.5)
    }
}

/// What the reports of one site and one hour add.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub url: String,
    pub probe: String,
    /// The start of the hour (UTC).
    pub hour: OffsetDateTime,
    /// The newest report of the hour; `None` for an hour only a slot's tail reaches.
    pub last_checked_at: Option<OffsetDateTime>,
    /// The earliest certificate expiry seen.
    pub tls_expires_at: Option<OffsetDateTime>,
    /// Sum, least and greatest response time of the successful probes.
    pub response_ms: Option<(f64, f64, f64)>,
    pub probes: i32,
    pub successes: i32,
    pub failures: [i32; FAILURES.len()],
    pub buckets: [i32; BUCKETS],
    /// Failed probes marked inconclusive (also counted in `failures`).
    pub inconclusive: i32,
    /// Microseconds of the hour measured and, of those, measured down; `None` while no report
    /// that states its cadence reached the hour.
    pub covered_us: Option<i64>,
    pub down_us: Option<i64>,
}

impl Rollup {
    fn new(report: &Report, hour: OffsetDateTime) -> Self {
        Rollup {
            url: report.url.clone(),
            probe: report.probe.clone(),
            hour,
            last_checked_at: None,
            tls_expires_at: None,
            response_ms: None,
            probes: 0,
            successes: 0,
            failures: [0; FAILURES.len()],
            buckets: [0; BUCKETS],
            inconclusive: 0,
            covered_us: None,
            down_us: None,
        }
    }

    /// Counts `report`, whose probe started in this hour.
    fn add(&mut self, report: &Report) {
        self.probes += 1;
        let checked_at = split_nanos(report.checked_at).0;
        self.last_checked_at = Some(self.last_checked_at.map_or(checked_at, |seen| seen.max(checked_at)));
        self.inconclusive += i32::from(report.inconclusive);
        if let Some(expiry) = report.tls_expires_at.map(|t| split_nanos(t).0) {
            self.tls_expires_at = Some(self.tls_expires_at.map_or(expiry, |seen| seen.min(expiry)));
        }
        match &report.error {
            Some(error) => self.failures[kind_index(error.kind)] += 1,
            None => {
                let ms = report.response_ms;
                self.successes += 1;
                self.buckets[bucket(ms)] += 1;
                self.response_ms = Some(match self.response_ms {
                    None => (ms, ms, ms),
                    Some((sum, min, max)) => (sum + ms, min.min(ms), max.max(ms)),
                });
            }
        }
    }

    /// Adds `us` microseconds of this hour measured by `report`.
    fn measure(&mut self, report: &Report, us: i64) {
        self.covered_us = Some(self.covered_us.unwrap_or(0) + us);
        let down = if report.error.is_some() { us } else { 0 };
        self.down_us = Some(self.down_us.unwrap_or(0) + down);
    }
}

/// The start of the UTC hour of `time`.
fn hour_of(time: OffsetDateTime) -> OffsetDateTime {
    // Cannot fail: whole hours are valid times.
    time.replace_time(Time::from_hms(time.hour(), 0, 0).unwrap_or(Time::MIDNIGHT))
}

/// The pieces of the slot a report stands for, per hour: (start of the hour, microseconds of the
/// slot in it). None for a report that states no cadence, or an inconclusive one.
pub fn slot_pieces(report: &Report) -> Vec<(OffsetDateTime, i64)> {
    let Some(interval) = report.interval_s.filter(|_| !report.inconclusive) else { return Vec::new() };
    let start = split_nanos(report.checked_at).0;
    let end = start + time::Duration::seconds(i64::from(interval));
    let mut pieces = Vec::new();
    let mut hour = hour_of(start);
    while hour < end {
        let next = hour + time::Duration::HOUR;
        let piece = end.min(next) - start.max(hour);
        pieces.push((hour, piece.whole_microseconds() as i64));
        hour = next;
    }
    pieces
}

/// The reports summed per (url, probe, hour), in the order of those keys.
pub fn aggregate<'r>(reports: impl IntoIterator<Item = &'r Report>) -> Vec<Rollup> {
    let mut tally = Tally::default();
    reports.into_iter().for_each(|report| tally.add(report));
    tally.into_rows()
}

/// Reports summed per (url, probe, hour) as they come: what one transaction adds to the rollups,
/// over one fetch or several (see `archive::Span`). Holds a row per key, not the reports.
#[derive(Debug, Default)]
pub struct Tally {
    index: HashMap<(String, String, OffsetDateTime), usize>,
    rows: Vec<Rollup>,
}

impl Tally {
    /// Counts `report` in its hour, and the time its slot measures in each hour it reaches.
    pub fn add(&mut self, report: &Report) {
        let own = self.row(report, hour_of(report.checked_at));
        self.rows[own].add(report);
        for (hour, us) in slot_pieces(report) {
            let piece = self.row(report, hour);
            self.rows[piece].measure(report, us);
        }
    }

    fn row(&mut self, report: &Report, hour: OffsetDateTime) -> usize {
        let key = (report.url.clone(), report.probe.clone(), hour);
        *self.index.entry(key).or_insert_with(|| {
            self.rows.push(Rollup::new(report, hour));
            self.rows.len() - 1
        })
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, ordered by (url, probe, hour): transactions that merge rows of the same sites lock
    /// them in one order, so they wait for each other instead of deadlocking.
    pub fn into_rows(self) -> Vec<Rollup> {
        let mut rows = self.rows;
        rows.sort_unstable_by(|a, b| (&a.url, &a.probe, a.hour).cmp(&(&b.url, &b.probe, b.hour)));
        rows
    }
}

/// The statements, built once from the column lists.
struct Statements {
    prepare: String,
    copy: String,
    types: Vec<Type>,
    merge: String,
    /// `merge` for a batch with no two rows of one site's day: the daily rows without summing
    /// them first (the grouping took ~7 ms of every 1,000 rows' ~45 ms merge).
    merge_one_hour_a_day: String,
}

static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| {
    let buckets: Vec<String> = (0..BUCKETS).map(|k| format!("b{k}")).collect();
    let mut typed = vec![
        ("hour", Type::TIMESTAMPTZ),
        ("url", Type::TEXT),
        ("probe", Type::TEXT),
        ("last_checked_at", Type::TIMESTAMPTZ),
        ("tls_expires_at", Type::TIMESTAMPTZ),
        ("response_ms_sum", Type::FLOAT8),
        ("response_ms_min", Type::FLOAT8),
        ("response_ms_max", Type::FLOAT8),
        ("probes", Type::INT4),
        ("successes", Type::INT4),
        ("inconclusive", Type::INT4),
        ("covered_us", Type::INT8),
        ("down_us", Type::INT8),
    ];
    typed.extend(FAILURES.iter().map(|name| (*name, Type::INT4)));
    typed.extend(buckets.iter().map(|name| (name.as_str(), Type::INT4)));
    let columns = typed.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
    let declared = typed.iter().map(|(name, ty)| format!("{name} {}", ty.name())).collect::<Vec<_>>().join(", ");
    let values = &columns[columns.find("url").unwrap_or(0)..];
    // Counters add up; least/greatest skip NULLs; a NULL bucket is zero.
    let mut merged = vec![
        "last_checked_at = greatest(r.last_checked_at, excluded.last_checked_at)".to_owned(),
        "tls_expires_at = least(r.tls_expires_at, excluded.tls_expires_at)".to_owned(),
        "response_ms_sum = CASE WHEN excluded.response_ms_sum IS NULL THEN r.response_ms_sum \
         ELSE coalesce(r.response_ms_sum, 0) + excluded.response_ms_sum END"
            .to_owned(),
        "response_ms_min = least(r.response_ms_min, excluded.response_ms_min)".to_owned(),
        "response_ms_max = greatest(r.response_ms_max, excluded.response_ms_max)".to_owned(),
        "probes = r.probes + excluded.probes".to_owned(),
        "successes = r.successes + excluded.successes".to_owned(),
        "inconclusive = r.inconclusive + excluded.inconclusive".to_owned(),
    ];
    merged.extend(FAILURES.iter().map(|name| format!("{name} = r.{name} + excluded.{name}")));
    // Measured time and buckets: NULL is none yet, so a sum stays NULL until something adds to it.
    let nullable_sums = ["covered_us", "down_us"].into_iter().chain(buckets.iter().map(String::as_str));
    merged.extend(nullable_sums.map(|b| {
        format!("{b} = CASE WHEN excluded.{b} IS NULL THEN r.{b} ELSE coalesce(r.{b}, 0) + excluded.{b} END")
    }));
    let merged = merged.join(", ");
    let mut daily = vec![
        "max(last_checked_at)".to_owned(),
        "min(tls_expires_at)".to_owned(),
        "sum(response_ms_sum)".to_owned(),
        "min(response_ms_min)".to_owned(),
        "max(response_ms_max)".to_owned(),
        "sum(probes)".to_owned(),
        "sum(successes)".to_owned(),
        "sum(inconclusive)".to_owned(),
        "sum(covered_us)".to_owned(),
        "sum(down_us)".to_owned(),
    ];
    daily.extend(FAILURES.iter().copied().chain(buckets.iter().map(String::as_str)).map(|name| format!("sum({name})")));
    let daily = daily.join(", ");
    // Rows are merged in key order, hours then days, so that transactions writing at once (a
    // one-off run's writers, replicas) lock the rollup rows they share in one order: they wait on
    // each other there and cannot deadlock.
    let hourly = format!(
        "INSERT INTO rollup_hourly AS r ({columns}) SELECT {columns} FROM incoming_rollups
         ORDER BY url, probe, hour
         ON CONFLICT (url, probe, hour) DO UPDATE SET {merged}"
    );
    Statements {
        prepare: format!(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_rollups ({declared}) ON COMMIT DELETE ROWS;
             DELETE FROM incoming_rollups"
        ),
        copy: format!("COPY incoming_rollups ({columns}) FROM STDIN (FORMAT binary)"),
        types: typed.iter().map(|(_, ty)| ty.clone()).collect(),
        merge: format!(
            "{hourly};
             INSERT INTO rollup_daily AS r (day, {values})
             SELECT (hour AT TIME ZONE 'UTC')::date, url, probe, {daily} FROM incoming_rollups
             GROUP BY (hour AT TIME ZONE 'UTC')::date, url, probe
             ORDER BY url, probe, 1
             ON CONFLICT (url, probe, day) DO UPDATE SET {merged}"
        ),
        merge_one_hour_a_day: format!(
            "{hourly};
             INSERT INTO rollup_daily AS r (day, {values})
             SELECT (hour AT TIME ZONE 'UTC')::date, {values} FROM incoming_rollups
             ORDER BY url, probe, hour
             ON CONFLICT (url, probe, day) DO UPDATE SET {merged}"
        ),
    }
});

/// Adds `rollups` to the hourly and daily rollups.
///
/// # Errors
/// The database failed; the caller's transaction is then unusable.
pub fn write(tx: &mut Transaction<'_>, rollups: &[Rollup]) -> anyhow::Result<()> {
    if rollups.is_empty() {
        return Ok(());
    }
    let statements = &*STATEMENTS;
    tx.batch_execute(&statements.prepare).context("preparing the rollup table")?;
    let sink = tx.copy_in(&statements.copy).context("copying rollups")?;
    let mut writer = BinaryCopyInWriter::new(sink, &statements.types);
    for rollup in rollups {
        let sums = rollup.response_ms.map(|(sum, _, _)| sum);
        let mins = rollup.response_ms.map(|(_, min, _)| min);
        let maxs = rollup.response_ms.map(|(_, _, max)| max);
        let buckets: Vec<Option<i32>> = rollup.buckets.iter().map(|&n| (n != 0).then_some(n)).collect();
        let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(statements.types.len());
        values.extend([
            &rollup.hour as &(dyn ToSql + Sync),
            &rollup.url,
            &rollup.probe,
            &rollup.last_checked_at,
            &rollup.tls_expires_at,
        ]);
        values.extend([&sums as &(dyn ToSql + Sync), &mins, &maxs, &rollup.probes, &rollup.successes]);
        values.extend([&rollup.inconclusive as &(dyn ToSql + Sync), &rollup.covered_us, &rollup.down_us]);
        values.extend(rollup.failures.iter().map(|n| n as &(dyn ToSql + Sync)));
        values.extend(buckets.iter().map(|n| n as &(dyn ToSql + Sync)));
        writer.write(&values).context("copying rollups")?;
    }
    writer.finish().context("copying rollups")?;
    let merge = match one_hour_a_day(rollups) {
        true => &statements.merge_one_hour_a_day,
        false => &statements.merge,
    };
    tx.batch_execute(merge).context("merging rollups")?;
    note(tx, rollups)
}

/// Whether no two of `rollups` fall on one site's UTC day (their times are in UTC, see `storable`):
/// then each is its day's sum as well.
fn one_hour_a_day(rollups: &[Rollup]) -> bool {
    let mut days = std::collections::HashSet::with_capacity(rollups.len());
    rollups.iter().all(|r| days.insert((r.url.as_str(), r.probe.as_str(), r.hour.date())))
}

/// Notes the hours `rollups` wrote for the kept window answers (migration 14): from here until
/// the transaction ends, the upkeep waits before it takes a snapshot to sum windows in, and a write
/// into hours it may have summed already voids what it summed.
fn note(tx: &mut Transaction<'_>, rollups: &[Rollup]) -> anyhow::Result<()> {
    let hours = rollups.iter().map(|rollup| rollup.hour);
    let (Some(earliest), Some(latest)) = (hours.clone().min(), hours.max()) else { return Ok(()) };
    tx.execute("SELECT websentry_note_rollup_writes($1, $2)", &[&earliest, &latest])
        .context("noting the rollup hours written")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use websentry_shared::report::ProbeError;

    #[test]
    fn each_error_kind_is_counted_in_the_column_named_after_it() {
        for kind in ErrorKind::ALL {
            assert_eq!(FAILURES[kind_index(kind)], format!("failures_{}", kind.as_str()), "{kind:?}");
        }
        let mut indexes: Vec<usize> = ErrorKind::ALL.iter().map(|&k| kind_index(k)).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..FAILURES.len()).collect::<Vec<_>>(), "one column per kind");
    }

    #[test]
    fn buckets_are_log_spaced_and_bounded() {
        assert_eq!((bucket(0.2), bucket(-3.0), bucket(f64::NAN)), (0, 0, 0));
        assert_eq!((bucket(1.0), bucket(1.09), bucket(1.1000001)), (1, 1, 2));
        assert_eq!(bucket(1e12), BUCKETS - 1);
        // Every value in [1 ms, 1.1^126 ms) is within √1.1 − 1 of its bucket's midpoint.
        let bound = FACTOR.sqrt() - 1.0;
        let mut ms = 1.0;
        while ms < FACTOR.powi(126) {
            let estimate = bucket_ms(bucket(ms));
            assert!((estimate - ms).abs() / ms <= bound + 1e-12, "{ms} ms estimated {estimate}");
            ms *= 1.013;
        }
    }

    fn report(url: &str, at: OffsetDateTime, ms: f64, error: Option<ErrorKind>) -> Report {
        let error = error.map(|kind| ProbeError { kind, message: String::new() });
        Report { url: url.into(), checked_at: at, response_ms: ms, error, ..crate::test_fixtures::report() }
    }

    #[test]
    fn reports_are_summed_per_site_and_hour() {
        let reports = [
            report("a", datetime!(2026-11-29 10:05 UTC), 10.0, None),
            report("a", datetime!(2026-11-29 10:55 UTC), 30.0, None),
            report("a", datetime!(2026-11-29 10:56 UTC), 5000.0, Some(ErrorKind::Timeout)),
            report("a", datetime!(2026-11-29 11:00 UTC), 20.0, None),
            report("b", datetime!(2026-11-29 10:10 UTC), 20.0, Some(ErrorKind::Dns)),
        ];
        let rollups = aggregate(&reports);
        assert_eq!(rollups.len(), 3);
        let first = &rollups[0];
        assert_eq!((first.url.as_str(), first.hour), ("a", datetime!(2026-11-29 10:00 UTC)));
        assert_eq!((first.probes, first.successes, first.failures[4]), (3, 2, 1));
        assert_eq!(first.response_ms, Some((40.0, 10.0, 30.0)));
        assert_eq!(first.last_checked_at, Some(datetime!(2026-11-29 10:56 UTC)));
        assert_eq!((first.covered_us, first.down_us), (None, None), "no cadence stated: time unknown");
        assert_eq!(first.buckets.iter().sum::<i32>(), 2, "failures are not in the histogram");
        assert_eq!((rollups[2].successes, rollups[2].failures[1], rollups[2].response_ms), (0, 1, None));
    }

    #[test]
    fn rows_come_in_key_order_so_that_transactions_lock_them_in_one_order() {
        let reports = [
            report("b", datetime!(2026-11-29 10:05 UTC), 10.0, None),
            report("a", datetime!(2026-11-29 11:05 UTC), 10.0, None),
            Report { probe: "eu".into(), ..report("a", datetime!(2026-11-29 09:05 UTC), 10.0, None) },
            report("a", datetime!(2026-11-29 10:05 UTC), 10.0, None),
        ];
        let keys: Vec<(String, String, OffsetDateTime)> =
            aggregate(&reports).into_iter().map(|r| (r.url, r.probe, r.hour)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn a_batch_merges_its_rows_into_days_as_they_are_only_when_no_site_has_two_rows_a_day() {
        let at = |url: &str, t: OffsetDateTime| report(url, t, 10.0, None);
        let apart = [at("a", datetime!(2026-11-29 23:10 UTC)), at("a", datetime!(2026-11-30 00:10 UTC))];
        assert!(one_hour_a_day(&aggregate(&apart)), "one hour on each of two days");
        let sites = [at("a", datetime!(2026-11-29 10:05 UTC)), at("b", datetime!(2026-11-29 11:05 UTC))];
        assert!(one_hour_a_day(&aggregate(&sites)), "two sites, an hour each");
        let probes = [
            at("a", datetime!(2026-11-29 10:05 UTC)),
            Report { probe: "eu".into(), ..at("a", datetime!(2026-11-29 11:05 UTC)) },
        ];
        assert!(one_hour_a_day(&aggregate(&probes)), "two locations of one site");
        let hours = [at("a", datetime!(2026-11-29 10:05 UTC)), at("a", datetime!(2026-11-29 11:05 UTC))];
        assert!(!one_hour_a_day(&aggregate(&hours)), "two hours of one day");
        assert!(!one_hour_a_day(&aggregate(&[timed(datetime!(2026-11-29 10:58 UTC), 300, None)])), "a slot's tail");
    }

    fn timed(at: OffsetDateTime, interval_s: u32, error: Option<ErrorKind>) -> Report {
        Report { interval_s: Some(interval_s), ..report("a", at, 10.0, error) }
    }

    const MINUTE_US: i64 = 60_000_000;

    #[test]
    fn a_probe_measures_its_slot_split_at_the_hour_and_its_tail_makes_a_row_without_probes() {
        let rollups = aggregate(&[timed(datetime!(2026-11-29 10:58 UTC), 300, None)]);

        let summary: Vec<_> =
            rollups.iter().map(|r| (r.hour, r.probes, r.last_checked_at.is_some(), r.covered_us, r.down_us)).collect();
        assert_eq!(
            summary,
            [
                (datetime!(2026-11-29 10:00 UTC), 1, true, Some(2 * MINUTE_US), Some(0)),
                (datetime!(2026-11-29 11:00 UTC), 0, false, Some(3 * MINUTE_US), Some(0)),
            ]
        );
    }

    #[test]
    fn a_failed_probe_measures_down_time_and_an_inconclusive_one_measures_nothing() {
        let failed = timed(datetime!(2026-11-29 10:00 UTC), 60, Some(ErrorKind::Connect));
        let inconclusive =
            Report { inconclusive: true, ..timed(datetime!(2026-11-29 10:01 UTC), 60, Some(ErrorKind::Dns)) };
        let up = timed(datetime!(2026-11-29 10:02 UTC), 60, None);

        let rollups = aggregate(&[failed, inconclusive, up]);

        assert_eq!(rollups.len(), 1);
        let hour = &rollups[0];
        assert_eq!((hour.probes, hour.successes, hour.inconclusive), (3, 1, 1));
        assert_eq!((hour.covered_us, hour.down_us), (Some(2 * MINUTE_US), Some(MINUTE_US)));
        assert_eq!(hour.failures.iter().sum::<i32>(), 2, "an inconclusive failure is still a failed probe");
    }

    #[test]
    fn a_day_long_cadence_spreads_over_25_hours_at_most_and_slots_keep_microseconds() {
        let at = datetime!(2026-11-29 10:30:00.123456789 UTC);
        let pieces = slot_pieces(&timed(at, 86_400, None));

        assert_eq!(pieces.len(), 25);
        assert_eq!(pieces.iter().map(|(_, us)| us).sum::<i64>(), 86_400_000_000);
        assert_eq!(
            pieces[0],
            (datetime!(2026-11-29 10:00 UTC), 29 * MINUTE_US + 59_876_544),
            "from the stored microsecond"
        );
        assert!(slot_pieces(&report("a", at, 1.0, None)).is_empty(), "no cadence, no slot");
    }
}
