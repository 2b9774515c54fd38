//! Upkeep of the archive, at start and every hour: day partitions of the reports and of the hourly
//! rollups (schema version 18) created ahead (and for recent days whose rows wait in a default
//! partition), raw retention by dropping whole days, rollup retention: hourly rollups a UTC day at
//! a time by dropping the day's partition (at most [`HOURLY_DAYS_PER_TURN`] a turn, so that an
//! archive that kept its hours for a year is trimmed over a few turns, each day in a transaction
//! that also moves the hourly horizon the SQL interface reads), then both levels before the daily
//! retention.
//!
//! One replica at a time: the replica that gets the upkeep lock does it, the others skip their
//! turn. The work itself is done by functions of the schema owner (migrations 4 and 6), so that a
//! consumer that owns nothing can do it. Each change is a transaction of its own whose locks wait
//! at most [`LOCK_WAIT`], tried again at the next turn rather than stall archiving.
//!
//! The partition set stays bounded whatever the reports' clocks say: a turn creates at most
//! [`MAX_DAYS_PER_TURN`] partitions, one transaction per call of the partition function, and only
//! for days from [`LATE_DAYS`] before today to [`DAYS_AHEAD`] after it. Reports of days further
//! away wait in the default partition (counted, and warned about), where they cost a few rows, not
//! a partition that every query over the archive plans for.

use anyhow::Context;
use postgres::{error::SqlState, Client, IsolationLevel};
use time::{Date, Duration, OffsetDateTime, Time};

/// Days created ahead of today (UTC), so that midnight never finds its day missing.
pub const DAYS_AHEAD: i64 = 2;

/// Days before today (UTC) whose late reports get their day partition; reports of older days stay
/// in the default partition. Fixed in the partition function (migration 6).
pub const LATE_DAYS: i64 = 31;

/// Partitions created in one turn at most: today and the days ahead, then late days, newest first.
/// A backlog of late days is worked off over the next turns.
pub const MAX_DAYS_PER_TURN: usize = 8;

/// UTC days of hourly rollups expired in one turn at most, each in its own transaction: an archive
/// that kept a year of hours (before version 12) is trimmed over a day of turns, none of which
/// holds archiving up for long.
pub const HOURLY_DAYS_PER_TURN: usize = 16;

/// How long a partition change waits for its locks before giving up until the next turn.
const LOCK_WAIT: &str = "5s";

/// The fixed windows whose answers are kept ahead ([`keep_windows`]), ending now: those the status
/// page and the per-site metrics ask every site for, and the last year, which reports and
/// dashboards ask for and which costs seconds from the rollups (days of 86,400 s: the function
/// sums them in UTC). Any other window is read from the rollups.
pub const KEPT_WINDOWS: [&str; 5] = ["1 day", "7 days", "30 days", "90 days", "365 days"];

/// The calendar months before the current one whose answers are kept ([`keep_windows`], schema
/// version 16): a year ending at any of their ends. Written in `websentry_keep_windows`; a test
/// checks the two agree.
pub const KEPT_MONTHS: usize = 13;

/// How long after an hour is over a kept answer may sum it: reports of it still on their way then
/// would void the answer (they are written into an hour already summed).
const KEPT_WINDOW_MARGIN: &str = "5 minutes";

/// Key of the kept-windows lock ("websentu"): each batch holds it shared from noting its rollup
/// writes until it commits (migration 14, `websentry_note_rollup_writes`), the upkeep exclusively
/// until its snapshot is taken.
pub const KEPT_WINDOWS_LOCK: i64 = 0x7765_6273_656e_7475;

/// Key of the upkeep lock ("websentr" + 1): not the migration lock, which partition creation takes
/// inside.
const UPKEEP_LOCK: i64 = 0x7765_6273_656e_7473;

/// How long reports are kept; `None` keeps them for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw reports: today and the days before it, in all this many UTC days.
    pub raw_days: Option<u32>,
    /// Daily rollups (and hourly ones at most), in UTC days.
    pub rollup_days: Option<u32>,
    /// Hourly rollups, in UTC days, when shorter than `rollup_days`.
    pub hourly_days: Option<u32>,
}

impl Default for Retention {
    /// The defaults of `WEBSENTRY_RETENTION_DAYS`, `WEBSENTRY_ROLLUP_RETENTION_DAYS` and
    /// `WEBSENTRY_ROLLUP_HOURLY_RETENTION_DAYS`.
    fn default() -> Self {
        Retention { raw_days: Some(31), rollup_days: Some(400), hourly_days: Some(8) }
    }
}

impl Retention {
    /// The first UTC day of raw reports kept on `today`.
    pub fn raw_first_day(&self, today: Date) -> Option<Date> {
        first_day(self.raw_days, today)
    }

    /// The time before which a report is past the raw retention at `now`.
    pub fn raw_kept_from(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.raw_first_day(now.date()).map(|day| day.with_time(Time::MIDNIGHT).assume_utc())
    }

    /// The first UTC day of rollups kept on `today`.
    pub fn rollup_first_day(&self, today: Date) -> Option<Date> {
        first_day(self.rollup_days, today)
    }

    /// The first UTC day of hourly rollups kept on `today`: never before the daily ones' (`None`,
    /// kept for ever, is the smallest `Option`).
    pub fn hourly_first_day(&self, today: Date) -> Option<Date> {
        first_day(self.hourly_days, today).max(self.rollup_first_day(today))
    }
}

fn first_day(days: Option<u32>, today: Date) -> Option<Date> {
    let days = days?;
    today.checked_sub(Duration::days(i64::from(days.max(1)) - 1)).or(Some(Date::MIN))
}

/// What one turn of upkeep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Upkept {
    /// Another replica was doing it.
    pub skipped: bool,
    pub created: Vec<Date>,
    /// Days whose partition of the hourly rollups was created (schema version 18).
    pub hourly_created: Vec<Date>,
    /// Days whose partition of the hourly rollups was dropped: their hours expired at an earlier
    /// turn (schema version 18).
    pub hourly_dropped: Vec<Date>,
    /// Dropping them waited too long for the batches and readers of `rollup_hourly`: tried again
    /// next turn.
    pub hourly_drop_postponed: bool,
    /// The turn created [`MAX_DAYS_PER_TURN`] partitions of reports or of hourly rollups, or a
    /// creation waited too long for its locks: there may be more to create next turn.
    pub creation_cut_short: bool,
    pub dropped: Vec<Date>,
    /// Days whose drop waited too long for its locks: tried again next turn.
    pub postponed: Vec<Date>,
    pub rollup_rows_expired: i64,
    /// UTC days whose hourly rollups were expired (the last of each call that deleted rows), oldest
    /// first.
    pub hours_expired: Vec<Date>,
    /// The turn expired [`HOURLY_DAYS_PER_TURN`] days of hourly rollups, or waited too long for a
    /// row's lock: more may be due next turn.
    pub expiry_cut_short: bool,
    /// Reports left in the default partition: far in the future, or their day failed.
    pub waiting: i64,
}

/// One turn of upkeep on `today` (UTC).
///
/// # Errors
/// The database failed, or the consumer's user may not run the upkeep functions (see
/// deploy/postgres/grants.sql).
pub fn run(client: &mut Client, retention: Retention, today: Date) -> anyhow::Result<Upkept> {
    let locked: bool =
        client.query_one("SELECT pg_try_advisory_lock($1)", &[&UPKEEP_LOCK]).context("taking the upkeep lock")?.get(0);
    if !locked {
        return Ok(Upkept { skipped: true, ..Upkept::default() });
    }
    let result = upkeep(client, retention, today);
    let unlocked =
        client.execute("SELECT pg_advisory_unlock($1)", &[&UPKEEP_LOCK]).context("releasing the upkeep lock");
    let upkept = result?;
    unlocked?;
    Ok(upkept)
}

fn upkeep(client: &mut Client, retention: Retention, today: Date) -> anyhow::Result<Upkept> {
    let mut upkept = Upkept::default();
    let last = today.checked_add(Duration::days(DAYS_AHEAD)).unwrap_or(today);
    let raw_first = retention.raw_first_day(today);
    // Each call creates the days from today to `last` that are missing and at most one late day,
    // in a transaction of its own: locks are held for a few days' work at most (one day's after
    // the first call), and a restart of the database loses at most that. The reports' days, then
    // the hourly rollups' (schema version 18), each up to MAX_DAYS_PER_TURN.
    upkept.creation_cut_short |=
        create_days(client, "websentry_create_partitions", today, last, raw_first, &mut upkept.created)
            .context("creating day partitions")?;
    // Hours kept longer than LATE_DAYS are not given a partition a day (hundreds of partitions,
    // each planned and locked by the readers of long windows): they go to the default partition
    // and expire by DELETE, as before schema version 18.
    let hourly_first = retention.hourly_first_day(today);
    let within_late_days = |first: Date| today.checked_sub(Duration::days(LATE_DAYS)).is_some_and(|from| first >= from);
    if hourly_first.is_some_and(within_late_days) {
        upkept.creation_cut_short |= create_days(
            client,
            "websentry_create_hourly_partitions",
            today,
            last,
            hourly_first,
            &mut upkept.hourly_created,
        )
        .context("creating the hourly rollups' day partitions")?;
    }
    if let Some(first) = raw_first {
        let days: Vec<Date> = client
            .query("SELECT websentry_report_days()", &[])
            .context("listing day partitions")?
            .iter()
            .map(|row| row.get(0))
            .collect();
        // The day before the first kept one is always passed: it also clears late rows of dropped
        // days from the default partition.
        let mut due: Vec<Date> = days.into_iter().filter(|&day| day < first).collect();
        if let Some(before) = first.previous_day() {
            if !due.contains(&before) {
                due.push(before);
            }
        }
        for day in due {
            match in_transaction(client, |tx| tx.query_one("SELECT websentry_drop_day($1)", &[&day])) {
                Ok(row) if row.get::<_, bool>(0) => upkept.dropped.push(day),
                Ok(_) => {}
                Err(err) if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => upkept.postponed.push(day),
                Err(err) => return Err(anyhow::Error::new(err).context(format!("dropping the reports of {day}"))),
            }
        }
    }
    // The partitions of days whose hours expired at an earlier turn, before this turn moves the
    // horizon again: never in the transaction that moves it (see migration 18).
    match in_transaction(client, |tx| tx.query("SELECT websentry_drop_expired_hours()", &[])) {
        Ok(rows) => upkept.hourly_dropped.extend(rows.iter().map(|row| row.get::<_, Date>(0))),
        Err(err) if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => upkept.hourly_drop_postponed = true,
        Err(err) => return Err(anyhow::Error::new(err).context("dropping expired hourly partitions")),
    }
    // The parent's statistics, once the drop's lock is gone (seconds of sampling: migration 18).
    if !upkept.hourly_dropped.is_empty() {
        match in_transaction(client, |tx| tx.execute("SELECT websentry_analyze_hourly()", &[])) {
            Ok(_) => {}
            // Another ANALYZE or a partition being created holds a partition: the next drop's.
            Err(err) if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {}
            Err(err) => return Err(anyhow::Error::new(err).context("analyzing the hourly rollups")),
        }
    }
    if let Some(first) = hourly_first {
        for call in 0.. {
            if call == HOURLY_DAYS_PER_TURN {
                upkept.expiry_cut_short = true;
                break;
            }
            let expired =
                in_transaction(client, |tx| tx.query_opt("SELECT * FROM websentry_expire_hours($1)", &[&first]));
            let row = match expired {
                Ok(Some(row)) => row,
                Ok(None) => break,
                // A batch holds a row of the day in the default partition (a late report): the
                // next turn goes on.
                Err(err) if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
                    upkept.expiry_cut_short = true;
                    break;
                }
                Err(err) => return Err(anyhow::Error::new(err).context("expiring hourly rollups")),
            };
            let deleted: i64 = row.get(1);
            upkept.rollup_rows_expired += deleted;
            // No day: hours written late before the horizon were deleted, and nothing else is due.
            let Some(kept_from) = row.get::<_, Option<Date>>(0) else { break };
            if deleted > 0 {
                upkept.hours_expired.push(kept_from.previous_day().unwrap_or(kept_from));
            }
            if kept_from >= first {
                break;
            }
        }
    }
    if let Some(first) = retention.rollup_first_day(today) {
        upkept.rollup_rows_expired += in_transaction(client, |tx| {
            tx.query_one("SELECT websentry_expire_rollups($1)", &[&first]).map(|row| row.get::<_, i64>(0))
        })
        .context("expiring rollups")?;
    }
    upkept.waiting =
        client.query_one("SELECT websentry_default_rows()", &[]).context("counting the default partition")?.get(0);
    Ok(upkept)
}

/// Calls `function` (a partition function of migration 6 or 18) until it creates nothing or
/// [`MAX_DAYS_PER_TURN`] days, adding the days it created to `created`; true when it was cut short
/// (that many days, or a creation waited too long for its locks).
fn create_days(
    client: &mut Client,
    function: &str,
    today: Date,
    last: Date,
    keep_from: Option<Date>,
    created: &mut Vec<Date>,
) -> Result<bool, postgres::Error> {
    let sql = format!("SELECT {function}($1, $2, $3)");
    while created.len() < MAX_DAYS_PER_TURN {
        match in_transaction(client, |tx| tx.query(&sql, &[&today, &last, &keep_from])) {
            Ok(rows) if rows.is_empty() => return Ok(false),
            Ok(rows) => created.extend(rows.iter().map(|row| row.get::<_, Date>(0))),
            Err(err) if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(true),
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}

/// What a turn at the kept window answers did with one window.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptWindow {
    /// The window's length, as PostgreSQL prints an interval ("1 day", "7 days"; "1 mon" for a
    /// calendar month, kept since schema version 16).
    pub span: String,
    /// The end of the hours it is asked in (the window then ends before it); a month's end.
    pub hi: OffsetDateTime,
    /// `summed` (now kept), `summed again` (kept before, voided by a late write, now kept anew),
    /// `kept` (kept before and still exact), `not yet` (its hours are not over yet: summed a later
    /// turn), `too large` (a sum does not fit: read from the rollups).
    pub outcome: String,
    /// Rows summed, one per (url, probe), and how long it took.
    pub sums: Option<i64>,
    pub took_ms: Option<f64>,
}

/// One turn at the kept window answers (schema version 14): sums ahead, for each of
/// [`KEPT_WINDOWS`], the buckets that are over of the window asked this hour and next hour, so
/// that `site_summary` for them reads a row per site and the two or three still being written;
/// and the 13 calendar months before the current one, each once it is over (schema version 16), so
/// that any window reads its whole months as a row per site and month.
/// Skipped (an empty list) while another replica does the upkeep. Waits at most [`LOCK_WAIT`] for
/// batches that are committing; the batches wait only until its snapshot is taken.
///
/// # Errors
/// The database failed, batches held the kept-windows lock for longer than [`LOCK_WAIT`], or the
/// consumer's user may not run `websentry_keep_windows`.
pub fn keep_windows(client: &mut Client) -> anyhow::Result<Vec<KeptWindow>> {
    let locked: bool =
        client.query_one("SELECT pg_try_advisory_lock($1)", &[&UPKEEP_LOCK]).context("taking the upkeep lock")?.get(0);
    if !locked {
        return Ok(Vec::new());
    }
    let result = sum_windows(client);
    let unlocked =
        client.execute("SELECT pg_advisory_unlock($1)", &[&UPKEEP_LOCK]).context("releasing the upkeep lock");
    let kept = result?;
    unlocked?;
    Ok(kept)
}

fn sum_windows(client: &mut Client) -> anyhow::Result<Vec<KeptWindow>> {
    // Taken outside the transaction, so that its snapshot (the function call, its first
    // statement) is taken once every batch that noted writes has committed.
    client.batch_execute(&format!("SET lock_timeout = '{LOCK_WAIT}'")).context("setting the lock wait")?;
    let locked = client.execute("SELECT pg_advisory_lock($1)", &[&KEPT_WINDOWS_LOCK]);
    client.batch_execute("RESET lock_timeout").context("resetting the lock wait")?;
    match locked {
        Ok(_) => {}
        // Batches held it that long: a failed turn (counted), the next one tries again.
        Err(err) if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            anyhow::bail!("the kept-windows lock: batches held it for more than {LOCK_WAIT}, tried again next turn")
        }
        Err(err) => return Err(anyhow::Error::new(err).context("taking the kept-windows lock")),
    }
    let spans: Vec<String> = KEPT_WINDOWS.iter().map(|span| (*span).to_owned()).collect();
    let summed = (|| {
        let mut tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).start()?;
        let rows = tx.query(
            "SELECT span::text, hi, outcome, sums, took_ms FROM websentry_keep_windows($1::text[]::interval[], $2::text::interval)",
            &[&spans, &KEPT_WINDOW_MARGIN],
        )?;
        tx.commit()?;
        Ok::<_, postgres::Error>(rows)
    })();
    let rows = match summed {
        Ok(rows) => rows,
        Err(err) => {
            // The function releases the lock first thing; had it failed before that, the lock
            // would stay with this session and hold every batch up.
            let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&KEPT_WINDOWS_LOCK]);
            return Err(anyhow::Error::new(err).context("summing the kept windows"));
        }
    };
    Ok(rows
        .iter()
        .map(|row| KeptWindow {
            span: row.get(0),
            hi: row.get(1),
            outcome: row.get(2),
            sums: row.get(3),
            took_ms: row.get(4),
        })
        .collect())
}

/// Runs `work` in a transaction whose locks wait at most [`LOCK_WAIT`].
fn in_transaction<T>(
    client: &mut Client,
    work: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
) -> Result<T, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_WAIT}'"))?;
    let done = work(&mut tx)?;
    tx.commit()?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn the_months_kept_are_those_the_sql_sums() {
        let months = format!("date_trunc('month', clock) - interval '{KEPT_MONTHS} months'");
        assert!(crate::schema::interface::SQL.contains(&months), "websentry_keep_windows keeps {KEPT_MONTHS} months");
    }

    #[test]
    fn the_kept_windows_lock_is_the_one_the_sql_takes_and_releases() {
        // The batches take it in migration 14's function, websentry_keep_windows releases it: a
        // key that differs from this one would leave the upkeep's lock held and every batch waiting.
        let key = KEPT_WINDOWS_LOCK.to_string();
        let migration = include_str!("sql/migrations/0014_kept_windows.sql");
        assert!(migration.contains(&format!("pg_advisory_xact_lock_shared({key})")), "migration 14 takes {key}");
        assert!(
            crate::schema::interface::SQL.contains(&format!("pg_advisory_unlock({key})")),
            "the interface releases {key}"
        );
    }

    #[test]
    fn retention_counts_today_as_the_last_of_its_days() {
        let retention = Retention { raw_days: Some(31), rollup_days: Some(400), hourly_days: Some(8) };
        assert_eq!(retention.raw_first_day(date!(2026 - 11 - 29)), Some(date!(2026 - 10 - 30)));
        assert_eq!(retention.raw_kept_from(datetime!(2026-11-29 13:00 UTC)), Some(datetime!(2026-10-30 00:00 UTC)));
        assert_eq!(retention.rollup_first_day(date!(2026 - 11 - 29)), Some(date!(2025 - 10 - 26)));
        assert_eq!(retention.hourly_first_day(date!(2026 - 11 - 29)), Some(date!(2026 - 11 - 22)));
        let one = Retention { raw_days: Some(1), rollup_days: None, hourly_days: None };
        assert_eq!(one.raw_first_day(date!(2026 - 11 - 29)), Some(date!(2026 - 11 - 29)));
        assert_eq!(one.rollup_first_day(date!(2026 - 11 - 29)), None);
        assert_eq!(one.hourly_first_day(date!(2026 - 11 - 29)), None);
    }

    #[test]
    fn hourly_rollups_are_never_kept_longer_than_daily_ones() {
        let today = date!(2026 - 11 - 29);
        let shorter_daily = Retention { raw_days: None, rollup_days: Some(3), hourly_days: Some(8) };
        assert_eq!(shorter_daily.hourly_first_day(today), Some(date!(2026 - 11 - 27)), "capped by the daily retention");
        let hours_as_long = Retention { raw_days: None, rollup_days: Some(400), hourly_days: None };
        assert_eq!(hours_as_long.hourly_first_day(today), hours_as_long.rollup_first_day(today), "0: as daily ones");
        let daily_forever = Retention { raw_days: None, rollup_days: None, hourly_days: Some(8) };
        assert_eq!(daily_forever.hourly_first_day(today), Some(date!(2026 - 11 - 22)));
    }
}
