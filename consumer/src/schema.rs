//! Versioned migrations, applied at start under an advisory lock so that replicas starting together
//! apply each migration once.

use anyhow::{bail, Context};
use postgres::Client;

/// The migrations, in order; version = position + 1. Never edit one that has shipped: add another.
const MIGRATIONS: &[(&str, &str)] = &[
    ("initial", include_str!("migrations/0001_initial.sql")),
    ("probe details", include_str!("migrations/0002_probe_details.sql")),
    ("topic identity", include_str!("migrations/0003_topic_identity.sql")),
];

/// An arbitrary constant shared by every replica: the key of the migration lock.
const MIGRATION_LOCK: i64 = 0x7765_6273_656e_7472; // "websentr"

/// The schema version this build needs.
pub fn latest_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Applies the migrations the database lacks; returns how many were applied.
///
/// # Errors
/// A migration failed (nothing of it is kept), the database was migrated by a newer build, or it
/// does not use UTF-8.
pub fn migrate(client: &mut Client) -> anyhow::Result<usize> {
    // Reports are UTF-8 text; another encoding would refuse some of them, record by record.
    let encoding: String =
        client.query_one("SHOW server_encoding", &[]).context("reading the database encoding")?.get(0);
    if encoding != "UTF8" {
        bail!("the database uses encoding {encoding}; websentry needs UTF8 (CREATE DATABASE … ENCODING 'UTF8')");
    }
    let mut tx = client.transaction().context("starting the migration transaction")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).context("taking the migration lock")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS websentry_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .context("creating the migrations table")?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM websentry_migrations", &[])
        .context("reading the schema version")?
        .get(0);
    if current > latest_version() {
        bail!(
            "the database schema is at version {current}, newer than version {} that this build knows; run a newer consumer",
            latest_version()
        );
    }
    let mut applied = 0;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i32 + 1;
        tx.batch_execute(sql).with_context(|| format!("applying migration {version} ({name})"))?;
        tx.execute("INSERT INTO websentry_migrations (version, name) VALUES ($1, $2)", &[&version, name])
            .with_context(|| format!("recording migration {version}"))?;
        tracing::info!(version, name, "migration applied");
        applied += 1;
    }
    tx.commit().context("committing the migrations")?;
    Ok(applied)
}
