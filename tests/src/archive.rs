//! The archive as the tests look inside it: a migrated database, UTC days and the partitions of
//! `reports` named after them, the partition a report is kept in, and a retention that keeps
//! everything (for reports of any age written in-process); [`ReportWriter`]: reports archived
//! in-process as the consumer archives them, for the benchmarks' large archives.

use rskafka::{
    chrono::DateTime,
    record::{Record, RecordAndOffset},
};
use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;
use websentry_consumer::{
    archive::{Archiver, Committed},
    batch::{Batch, Origin},
    schema,
    upkeep::{self, Retention},
};
use websentry_shared::report::Report;

use crate::TestDatabase;

/// Reports of any age are archived raw: nothing falls to the rollups only.
pub const KEEP_EVERYTHING: Retention = Retention { raw_days: None, rollup_days: None, hourly_days: None };

/// The start of `day`, UTC.
pub fn midnight(day: Date) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_utc()
}

/// The name of the partition of `reports` that holds the reports of `day`.
pub fn day_partition(day: Date) -> String {
    format!("reports_p{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day())
}

impl TestDatabase {
    /// This database with the consumer's schema (as its start would migrate it).
    ///
    /// # Panics
    /// When the migration fails.
    #[must_use]
    pub fn migrated(self) -> Self {
        schema::migrate(&mut self.client()).expect("migrating the test database");
        self
    }

    /// The partition of `reports` that holds the report `id` (`reports_default` for a day without
    /// a partition of its own), or `None` when no partition does.
    pub fn partition_holding(&self, id: Uuid) -> Option<String> {
        self.client()
            .query_opt("SELECT tableoid::regclass::text FROM reports WHERE id = $1", &[&id])
            .expect("locating a report")
            .map(|row| row.get(0))
    }
}

/// Brings an empty database to schema version `version` as a consumer of that version left it:
/// its migrations, recorded with their checksums, and this build's SQL interface (an upgrade test
/// needs one that the interface did not change since `version`, as version 18 did not).
///
/// # Panics
/// When a migration or the interface fails.
pub fn migrate_to_version(client: &mut postgres::Client, version: usize) {
    let migrations = &schema::migrations::MIGRATIONS[..version];
    let mut tx = client.transaction().expect("a transaction");
    schema::migrations::create_table(&mut tx).expect("the migrations table");
    for migration in migrations {
        tx.batch_execute(migration.sql).unwrap_or_else(|err| panic!("migration {}: {err}", migration.version));
        tx.execute(
            "INSERT INTO websentry_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .expect("recording a migration");
    }
    // The checksum column comes with migration 5: recorded after, as the consumer does.
    for migration in migrations {
        tx.execute(
            "UPDATE websentry_migrations SET checksum = $2 WHERE version = $1",
            &[&migration.version, &schema::migrations::checksum(migration.sql)],
        )
        .expect("recording a migration's checksum");
    }
    schema::interface::apply(&mut tx).expect("the SQL interface");
    tx.commit().expect("the schema");
}

/// Runs the upkeep for `today` until it creates no more partitions (it makes a few per call), as
/// a consumer running for a while would have: today's and the raw retention's late days, and the
/// hourly rollups' (schema version 18).
///
/// # Panics
/// When the upkeep fails.
pub fn upkeep_until_done(client: &mut postgres::Client, retention: Retention, today: Date) {
    for _ in 0..40 {
        let upkept = upkeep::run(client, retention, today).expect("upkeep");
        if upkept.created.is_empty() && upkept.hourly_created.is_empty() {
            return;
        }
    }
}

/// Reports archived in-process through the consumer's own writer (`Archiver::commit`), in batches
/// of one Kafka partition's records, as a consumer fetches them: the raw rows and the rollups
/// exactly as the consumer writes them, without a broker.
pub struct ReportWriter {
    archiver: Archiver,
    batch: usize,
    records: Vec<RecordAndOffset>,
    /// The offset the next batch starts from (-1 before the first).
    from: i64,
    next_offset: i64,
    /// Reports archived raw, or past the raw retention and counted in the rollups only.
    archived: u64,
}

impl std::fmt::Debug for ReportWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportWriter")
            .field("batch", &self.batch)
            .field("pending", &self.records.len())
            .field("next_offset", &self.next_offset)
            .field("archived", &self.archived)
            .finish_non_exhaustive()
    }
}

impl ReportWriter {
    const AT: Origin<'static> = Origin { group: "bench", topic: "bench", topic_id: None, partition: 0 };

    #[must_use]
    pub fn new(client: postgres::Client, retention: Retention, batch: usize) -> Self {
        let archiver = Archiver::new(client, retention);
        Self { archiver, batch, records: Vec::with_capacity(batch), from: -1, next_offset: 0, archived: 0 }
    }

    /// Adds `report` to the batch; writes the batch once it is full.
    ///
    /// # Panics
    /// When the archive refuses a report or the write fails.
    pub fn write(&mut self, report: &Report) {
        self.records.push(RecordAndOffset {
            record: Record {
                key: Some(report.url.clone().into_bytes()),
                value: Some(report.to_json()),
                headers: Default::default(),
                timestamp: DateTime::from_timestamp_nanos(0),
            },
            offset: self.next_offset,
        });
        self.next_offset += 1;
        if self.records.len() == self.batch {
            self.commit();
        }
    }

    /// Writes what is left; returns how many reports were archived (raw, or in the rollups only
    /// when past the raw retention).
    ///
    /// # Panics
    /// As [`ReportWriter::write`].
    pub fn finish(mut self) -> u64 {
        self.commit();
        self.archived
    }

    fn commit(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let batch = Batch::from_records(Self::AT, self.from.max(0), std::mem::take(&mut self.records));
        match self.archiver.commit(Self::AT, self.from, &batch).expect("commit") {
            Committed::Done { archived, rejected, past_retention } => {
                assert_eq!(rejected, 0, "no report refused");
                self.archived += archived + past_retention;
            }
            Committed::Moved => panic!("nobody else writes this partition"),
        }
        self.from = batch.next_offset;
    }
}
