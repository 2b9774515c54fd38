//! The SQL interface: `site_summary`, `report_document`, the views and their helpers, written out in
//! plain SQL in `consumer/src/sql/interface.sql`. It is what the archive promises its readers (the
//! status page, Grafana, people with psql); the tables behind it are the migrations' business.
//!
//! It is applied after the migrations whenever this build's version or file differs from what the
//! database recorded, with CREATE OR REPLACE (grants are kept). A build never applies an older
//! interface over a newer one, so replicas of two builds during an upgrade do not undo each other.

use anyhow::Context;
use postgres::{GenericClient, Transaction};

use crate::schema::{migrations::checksum, refused::refuse};

/// The interface's SQL text.
pub const SQL: &str = include_str!("../sql/interface.sql");

/// Raised with every change of `interface.sql` (a test pins the file's checksum per version).
pub const VERSION: i32 = 15;

/// The interface as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i32,
    pub checksum: String,
}

/// The interface recorded, `None` when none was applied yet.
///
/// # Errors
/// The query failed.
pub fn read(client: &mut impl GenericClient) -> anyhow::Result<Option<Applied>> {
    let row = client
        .query_opt("SELECT version, checksum FROM websentry_interface", &[])
        .context("reading the applied SQL interface")?;
    Ok(row.map(|row| Applied { version: row.get(0), checksum: row.get(1) }))
}

/// Refuses an interface applied by a newer build.
///
/// # Errors
/// One line saying which versions.
pub fn check(applied: &Applied) -> anyhow::Result<()> {
    if applied.version > VERSION {
        refuse!(
            "the database's SQL interface is at version {}, newer than version {VERSION} that this build knows; \
             run a newer consumer",
            applied.version
        );
    }
    Ok(())
}

/// Whether the database holds this build's interface.
pub fn is_current(applied: &Applied) -> bool {
    applied.version == VERSION && applied.checksum == checksum(SQL)
}

/// Applies the interface and records it.
///
/// # Errors
/// A statement failed; the caller's transaction is then unusable.
pub fn apply(tx: &mut Transaction<'_>) -> anyhow::Result<()> {
    tx.batch_execute(SQL).context("applying the SQL interface (interface.sql)")?;
    tx.execute("DELETE FROM websentry_interface", &[]).context("recording the SQL interface")?;
    tx.execute("INSERT INTO websentry_interface (version, checksum) VALUES ($1, $2)", &[&VERSION, &checksum(SQL)])
        .context("recording the SQL interface")?;
    tracing::info!(version = VERSION, "SQL interface applied");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksum of `interface.sql` at [`VERSION`]. When the file changes, raise the version
    /// and pin the new checksum here: two builds with one version and different files would each
    /// apply their own at every start.
    const PINNED: (i32, &str) = (15, "59856a1cf347c28944728468bf023e483e7033e1351c2f6f0fb51c88c17437ae");

    #[test]
    fn the_interface_file_is_pinned_at_its_version() {
        assert_eq!(
            (VERSION, checksum(SQL).as_str()),
            PINNED,
            "interface.sql changed: raise schema::interface::VERSION and pin the new checksum"
        );
    }

    #[test]
    fn a_newer_interface_is_refused_and_an_older_or_changed_one_is_applied_again() {
        let ours = Applied { version: VERSION, checksum: checksum(SQL) };
        assert!(is_current(&ours));
        check(&ours).expect("ours");

        let older = Applied { version: VERSION - 1, checksum: "x".into() };
        check(&older).expect("an older interface is replaced");
        assert!(!is_current(&older));

        let newer = Applied { version: VERSION + 1, checksum: "x".into() };
        let error = check(&newer).expect_err("refused").to_string();
        assert!(error.contains(&format!("newer than version {VERSION} that this build knows")), "{error}");
    }
}
