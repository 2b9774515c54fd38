//! The versioned migrations: each file applied once, in order, and recorded with its SHA-256. A
//! database whose recorded checksum differs from this build's file was migrated by a file that has
//! been edited since: the consumer refuses it rather than guess which schema it has.

use crate::schema::refused::refuse;
use anyhow::Context;
use postgres::{GenericClient, Transaction};
use sha2::{Digest, Sha256};

/// A migration of this build.
#[derive(Debug)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    /// Its file under `consumer/src/sql/migrations/`.
    pub file: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            file: $file,
            sql: include_str!(concat!("../sql/migrations/", $file)),
        }
    };
}

/// The migrations, in order; version = position + 1. Never edit one that has shipped: add another
/// (a test pins the checksum of each shipped file). A migration that drops an object of the SQL
/// interface (to change its shape) says `IF EXISTS`: a new database runs every migration before the
/// interface is first applied.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "initial", "0001_initial.sql"),
    migration!(2, "probe details", "0002_probe_details.sql"),
    migration!(3, "topic identity", "0003_topic_identity.sql"),
    migration!(4, "archive at scale", "0004_archive_at_scale.sql"),
    migration!(5, "checked interface", "0005_checked_interface.sql"),
    migration!(6, "bounded partitions", "0006_bounded_partitions.sql"),
    migration!(7, "measured time", "0007_measured_time.sql"),
    migration!(8, "site labels", "0008_site_labels.sql"),
    migration!(9, "chain expiry", "0009_chain_expiry.sql"),
    migration!(10, "site days index", "0010_site_days_index.sql"),
    migration!(11, "pooled locations", "0011_pooled_locations.sql"),
    migration!(12, "hourly retention", "0012_hourly_retention.sql"),
    migration!(13, "inlined window time", "0013_inlined_window_time.sql"),
    migration!(14, "kept windows", "0014_kept_windows.sql"),
    migration!(15, "one daily key", "0015_one_daily_key.sql"),
    migration!(16, "kept months", "0016_kept_months.sql"),
    migration!(17, "uptime without latency", "0017_uptime_without_latency.sql"),
    migration!(18, "hourly partitions", "0018_hourly_partitions.sql"),
];

/// The first version that records checksums (and the interface); the checksums of the versions
/// before it are recorded when it is applied.
pub const CHECKED_FROM: i32 = 5;

/// An arbitrary constant shared by every replica: the key of the migration lock. The upkeep's
/// partition function takes it too (migration 4), so that partitions are never created during a
/// migration; a test compares the two.
pub const MIGRATION_LOCK: i64 = 0x7765_6273_656e_7472; // "websentr"

/// The schema version this build needs.
pub fn latest_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// The SHA-256 of `sql`, in hex.
pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A migration as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i32,
    pub name: String,
    /// `None` before version [`CHECKED_FROM`] was applied.
    pub checksum: Option<String>,
}

/// The migrations recorded.
///
/// # Errors
/// The query failed.
pub fn read(client: &mut impl GenericClient) -> anyhow::Result<Vec<Applied>> {
    let checksums = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'websentry_migrations'::regclass
                                                      AND attname = 'checksum' AND NOT attisdropped)",
            &[],
        )
        .context("reading the migrations table")?
        .get::<_, bool>(0);
    let sql = match checksums {
        true => "SELECT version, name, checksum FROM websentry_migrations ORDER BY version",
        false => "SELECT version, name, NULL::text FROM websentry_migrations ORDER BY version",
    };
    let rows = client.query(sql, &[]).context("reading the applied migrations")?;
    Ok(rows.iter().map(|row| Applied { version: row.get(0), name: row.get(1), checksum: row.get(2) }).collect())
}

/// Refuses a schema migrated by a newer build, or by a migration file that differs from this
/// build's.
///
/// # Errors
/// One line naming the version and what is wrong.
pub fn check(applied: &[Applied]) -> anyhow::Result<()> {
    let version = applied.iter().map(|m| m.version).max().unwrap_or(0);
    if version > latest_version() {
        refuse!(
            "the database schema is at version {version}, newer than version {} that this build knows; run a newer consumer",
            latest_version()
        );
    }
    let checked = version >= CHECKED_FROM;
    for recorded in applied {
        let Some(ours) = MIGRATIONS.iter().find(|m| m.version == recorded.version) else { continue };
        match &recorded.checksum {
            Some(theirs) if *theirs != checksum(ours.sql) => refuse!(
                "migration {} ({}) was applied from a file with checksum {} but this build's {} has {}: a migration \
                 that shipped was edited; use a build whose migrations match the database",
                ours.version,
                ours.name,
                short(theirs),
                ours.file,
                short(&checksum(ours.sql))
            ),
            None if checked => refuse!(
                "migration {} ({}) has no checksum in websentry_migrations although version {CHECKED_FROM} records them",
                ours.version,
                ours.name
            ),
            _ => {}
        }
    }
    Ok(())
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// Creates the table of applied migrations when the database has none.
///
/// # Errors
/// The statement failed.
pub fn create_table(tx: &mut Transaction<'_>) -> anyhow::Result<()> {
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS websentry_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .context("creating the migrations table")
}

/// Applies the migrations after version `current` and records them; then records the checksum of
/// every migration that has none (those applied before checksums were kept). Returns how many
/// were applied.
///
/// # Errors
/// A migration failed; the caller's transaction is then unusable.
pub fn apply_missing(tx: &mut Transaction<'_>, current: i32) -> anyhow::Result<usize> {
    let mut applied = 0;
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let (version, name) = (migration.version, migration.name);
        tx.batch_execute(migration.sql).with_context(|| format!("applying migration {version} ({name})"))?;
        tx.execute("INSERT INTO websentry_migrations (version, name) VALUES ($1, $2)", &[&version, &name])
            .with_context(|| format!("recording migration {version}"))?;
        tracing::info!(version, name, "migration applied");
        applied += 1;
    }
    for migration in MIGRATIONS {
        tx.execute(
            "UPDATE websentry_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL",
            &[&migration.version, &checksum(migration.sql)],
        )
        .with_context(|| format!("recording the checksum of migration {}", migration.version))?;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-256 of every migration file that has shipped. A shipped migration is never edited:
    /// a database that applied it would hold a schema this file no longer describes. Put a change in
    /// a new migration and pin its checksum here once it ships.
    const SHIPPED: [(i32, &str); 17] = [
        (1, "901b42e7f18ee6cc075b575d363816a3152f229ff884df4c47f2204dfaf9ffae"),
        (2, "db36d033357cde546771e46cf2fd7a7fbaf98392f9f4286f9fa05c7b5351fa07"),
        (3, "ba27dea72fc6678efe038c47b6fccc5d7e798aeea07b2acccc28abf9d50b7d7b"),
        (4, "b76efc2ee8abbe391aec397a7a808f91a8beb4d237b4370188f7fa2be68da913"),
        (5, "10ddec7761398996ddf36b7a8c284b3953d9b6a5fd9d098cf7e52d4ec772b474"),
        (6, "a9652e9544a9b6aacbd37f7c824575f932cad3d9c39e1143124d096eaf48c8aa"),
        (7, "8561382780db4a4a8f29fc998705150119d56443846cf24e639f6f60b97507fe"),
        (8, "9305985eaf55d5d32e98d814ec373f3364f1bda0231226200b994c07a6e07924"),
        (9, "fa331a536cf624ade402cac66dd0ca196bb16358e06fccef7adb0bc6a0b07821"),
        (10, "69f9a9131a2c55393692e5217cb6cb9f1596f5f20ae6c2faa7a791bda746a0b3"),
        (11, "9207735625ccb538280f407d552803fc0fba250634fd3125e86469d51ca0ff84"),
        (12, "792af395ad3f5845be1c38817761a27f004f59cca382545ab2505d63882c5533"),
        (13, "4e881abb3bef332f9789affb810e0f1a524f931a20d69fd61692557fab1bb654"),
        (14, "f0d75c0a5b9a189a7564d3c6cfcda7c88bb0d9392f73f545948afce578f81e3e"),
        (15, "0a4dbe4515d188599d0a98d718416d507a1a531c8ceb398a565935426d59d6b1"),
        (16, "4ad084ace6318a90d3d7ba2528f37733cd9f5f568811664e7f5d48ab722713e9"),
        (17, "16eab92ab001f1173cc19ee0a364544f04807823b38a385ee7b82fd6511510b4"),
    ];

    #[test]
    fn no_shipped_migration_has_been_edited() {
        for (version, pinned) in SHIPPED {
            let migration = MIGRATIONS.iter().find(|m| m.version == version).expect("a shipped migration is kept");
            assert_eq!(
                checksum(migration.sql),
                pinned,
                "migration {version} ({}) was edited after it shipped: restore it and put the change in a new migration",
                migration.file
            );
        }
    }

    #[test]
    fn versions_follow_the_order_of_the_list_and_of_the_files() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i32 + 1, "{}", migration.file);
            assert!(migration.file.starts_with(&format!("{:04}_", migration.version)), "{}", migration.file);
        }
        assert_eq!(CHECKED_FROM, 5, "the migration that adds the checksum column");
    }

    fn applied(version: i32, checksum: Option<String>) -> Applied {
        Applied { version, name: String::new(), checksum }
    }

    fn as_shipped() -> Vec<Applied> {
        MIGRATIONS.iter().map(|m| applied(m.version, Some(checksum(m.sql)))).collect()
    }

    #[test]
    fn a_database_migrated_by_these_files_passes() {
        check(&as_shipped()).expect("the same files");
        let before_checksums: Vec<Applied> = (1..CHECKED_FROM).map(|v| applied(v, None)).collect();
        check(&before_checksums).expect("versions before checksums were kept");
    }

    #[test]
    fn a_migration_whose_file_changed_is_refused_naming_it() {
        let mut recorded = as_shipped();
        recorded[3].checksum = Some("0123456789abcdef".repeat(4));

        let error = check(&recorded).expect_err("refused").to_string();

        assert!(error.starts_with("migration 4 (archive at scale) was applied from a file with checksum 0123456789ab but this build's 0004_archive_at_scale.sql has "), "{error}");
        assert!(error.contains("a migration that shipped was edited"), "{error}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut recorded = as_shipped();
        recorded.push(applied(latest_version() + 1, Some("x".into())));

        let error = check(&recorded).expect_err("refused").to_string();

        assert!(error.contains(&format!("newer than version {} that this build knows", latest_version())), "{error}");
    }

    #[test]
    fn a_missing_checksum_after_they_are_kept_is_refused() {
        let mut recorded = as_shipped();
        recorded[0].checksum = None;

        let error = check(&recorded).expect_err("refused").to_string();

        assert!(error.starts_with("migration 1 (initial) has no checksum"), "{error}");
    }
}
