//! The archive as the tests look inside it: a migrated database, UTC days and the partitions of
//! `reports` named after them, the partition a report is kept in, and a retention that keeps
//! everything (for reports of any age written in-process).

use time::{Date, OffsetDateTime, Time};
use uuid::Uuid;
use websentry_consumer::{schema, upkeep::Retention};

use crate::TestDatabase;

/// Reports of any age are archived raw: nothing falls to the rollups only.
pub const KEEP_EVERYTHING: Retention = Retention { raw_days: None, rollup_days: None };

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
