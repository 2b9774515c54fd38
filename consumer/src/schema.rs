//! Versioned migrations, applied at start under an advisory lock so that replicas starting together
//! apply each migration once.
//!
//! A database whose schema is already current is only read: the consumer may run as a user that
//! can read and write the archive but create nothing (`deploy/postgres/grants.sql`), with the
//! migrations applied by the schema owner (`--migrate-only`).

use anyhow::{bail, Context};
use postgres::Client;

/// The migrations, in order; version = position + 1. Never edit one that has shipped: add another.
const MIGRATIONS: &[(&str, &str)] = &[
    ("initial", include_str!("migrations/0001_initial.sql")),
    ("probe details", include_str!("migrations/0002_probe_details.sql")),
    ("topic identity", include_str!("migrations/0003_topic_identity.sql")),
    ("archive at scale", include_str!("migrations/0004_archive_at_scale.sql")),
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
    // Current already: nothing to change, so nothing that needs more than reading the version.
    let exists: bool = client
        .query_one("SELECT to_regclass('websentry_migrations') IS NOT NULL", &[])
        .context("looking for the migrations table")?
        .get(0);
    let recorded: Option<i32> = match exists {
        true => Some(
            client
                .query_one("SELECT coalesce(max(version), 0) FROM websentry_migrations", &[])
                .context("reading the schema version")?
                .get(0),
        ),
        false => None,
    };
    match recorded {
        Some(version) if version == latest_version() => return Ok(0),
        Some(version) if version > latest_version() => bail!(newer(version)),
        _ => {}
    }
    apply(client).map_err(|err| {
        let denied = err
            .chain()
            .filter_map(|cause| cause.downcast_ref::<postgres::Error>())
            .any(|cause| cause.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
        if denied {
            err.context(format!(
                "the schema is at version {}, this build needs {}, and this database user may not change it: \
                 run `websentry-consumer --migrate-only` as the schema owner first",
                recorded.unwrap_or(0),
                latest_version()
            ))
        } else {
            err
        }
    })
}

fn newer(version: i32) -> String {
    format!(
        "the database schema is at version {version}, newer than version {} that this build knows; run a newer consumer",
        latest_version()
    )
}

/// Takes the migration lock and applies what is missing, in one transaction.
fn apply(client: &mut Client) -> anyhow::Result<usize> {
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
        bail!(newer(current));
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
