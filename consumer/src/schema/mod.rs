//! The database's schema: versioned migrations, then the SQL interface, applied at start under an
//! advisory lock so that replicas starting together apply each once, in one transaction.
//!
//! - [`migrations`]: the versioned migrations (`consumer/src/sql/migrations/`), each recorded with
//!   the SHA-256 of its file: a shipped migration whose file changed is refused at start, naming it
//!   (sqlx's rule: a migration that shipped is never edited; a change is a new migration).
//! - [`interface`]: the SQL interface (`consumer/src/sql/interface.sql`): what readers use, written
//!   out in plain SQL, applied again whenever it changes.
//!
//! A database whose schema is current is only read: the consumer may run as a user that can read
//! and write the archive but create nothing (`deploy/postgres/grants.sql`), with the migrations
//! applied by the schema owner (`--migrate-only`).

pub mod interface;
pub mod migrations;
mod refused;

use anyhow::Context;
use postgres::Client;

pub use migrations::{latest_version, MIGRATION_LOCK};
use refused::refuse;
pub use refused::Refused;

/// What the database records of its schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The migrations applied (empty for a new database).
    pub migrations: Vec<migrations::Applied>,
    /// The interface applied last, from schema version 5 on.
    pub interface: Option<interface::Applied>,
}

impl Recorded {
    /// The schema version: the highest migration applied, 0 for none.
    pub fn version(&self) -> i32 {
        self.migrations.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Refuses a schema this build must not touch: migrated by a newer build, or from files that
    /// differ from this build's.
    ///
    /// # Errors
    /// [`Refused`]: a newer schema or interface, or a shipped migration edited (see
    /// [`migrations::check`]).
    pub fn check(&self) -> anyhow::Result<()> {
        migrations::check(&self.migrations)?;
        if let Some(applied) = &self.interface {
            interface::check(applied)?;
        }
        Ok(())
    }

    /// Whether there is nothing to apply.
    pub fn is_current(&self) -> bool {
        self.version() == latest_version() && self.interface.as_ref().is_some_and(interface::is_current)
    }
}

/// Brings the schema to this build's version, then the interface; returns how many migrations were
/// applied.
///
/// # Errors
/// [`Refused`]: the database does not use UTF-8, was migrated by a newer build, or holds a migration
/// whose file this build changed. Otherwise: a migration failed (nothing of it is kept), or this
/// user may not change the schema when it must be changed.
pub fn migrate(client: &mut Client) -> anyhow::Result<usize> {
    // Reports are UTF-8 text; another encoding would refuse some of them, record by record.
    let encoding: String =
        client.query_one("SHOW server_encoding", &[]).context("reading the database encoding")?.get(0);
    if encoding != "UTF8" {
        refuse!("the database uses encoding {encoding}; websentry needs UTF8 (CREATE DATABASE … ENCODING 'UTF8')");
    }
    let recorded = read(client)?;
    recorded.check()?;
    if recorded.is_current() {
        return Ok(0);
    }
    apply(client).map_err(|err| {
        let denied = err
            .chain()
            .filter_map(|cause| cause.downcast_ref::<postgres::Error>())
            .any(|cause| cause.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
        if denied {
            err.context(format!(
                "the schema is at version {}, this build needs {} (and its SQL interface), and this database user \
                 may not change it: run `websentry-consumer --migrate-only` as the schema owner first",
                recorded.version(),
                latest_version()
            ))
        } else {
            err
        }
    })
}

/// What the database records; only reads.
///
/// # Errors
/// A query failed.
pub fn read(client: &mut impl postgres::GenericClient) -> anyhow::Result<Recorded> {
    let exists: bool = client
        .query_one("SELECT to_regclass('websentry_migrations') IS NOT NULL", &[])
        .context("looking for the migrations table")?
        .get(0);
    if !exists {
        return Ok(Recorded::default());
    }
    let migrations = migrations::read(client)?;
    let interface = match migrations.iter().any(|m| m.version >= migrations::CHECKED_FROM) {
        true => interface::read(client)?,
        false => None,
    };
    Ok(Recorded { migrations, interface })
}

/// Takes the migration lock and applies what is missing, in one transaction.
fn apply(client: &mut Client) -> anyhow::Result<usize> {
    let mut tx = client.transaction().context("starting the migration transaction")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).context("taking the migration lock")?;
    migrations::create_table(&mut tx)?;
    // Another replica may have applied something while this one waited for the lock.
    let recorded = read(&mut tx)?;
    recorded.check()?;
    let applied = migrations::apply_missing(&mut tx, recorded.version())?;
    if !recorded.interface.as_ref().is_some_and(interface::is_current) {
        interface::apply(&mut tx)?;
    }
    tx.commit().context("committing the migrations")?;
    Ok(applied)
}
