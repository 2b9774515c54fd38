//! Sharing a topic's partitions between replicas of one group with PostgreSQL session advisory
//! locks, held by the archiving connection itself: when a replica dies or loses its connection, its
//! locks vanish with the session and the other replicas claim the partitions on their next round.
//!
//! - A partition's lock key is `hashtextextended('<group>/<topic>/<partition>', 0)`.
//! - Each replica also holds one of [`MEMBER_SLOTS`] member locks, so that every replica can count
//!   the live ones (in `pg_locks`) and hold no more than its fair share, `ceil(partitions /
//!   replicas)`: a replica that starts late gets partitions released to it instead of idling.
//!
//! The lock is the first guard; the offset compare-and-set in `archive` stays the second, for the
//! moment between a lost connection and its locks being released.

use anyhow::Context;
use postgres::Client;

/// Replicas of one group counted at most; a replica that finds every slot taken still works, it
/// only does not count in the fair share.
pub const MEMBER_SLOTS: i32 = 64;

const PARTITION_KEY: &str = "hashtextextended($1 || '/' || $2 || '/' || $3::int4::text, 0)";

/// Tries to take partition's lock; true if this session holds it now (also when it already did).
///
/// # Errors
/// The query failed.
pub fn try_claim(client: &mut Client, group: &str, topic: &str, partition: i32) -> anyhow::Result<bool> {
    let sql = format!("SELECT pg_try_advisory_lock({PARTITION_KEY})");
    let row = client.query_one(&sql, &[&group, &topic, &partition]).context("claiming a partition")?;
    Ok(row.get(0))
}

/// Gives a partition's lock back, for another replica to take.
///
/// # Errors
/// The query failed.
pub fn release(client: &mut Client, group: &str, topic: &str, partition: i32) -> anyhow::Result<()> {
    let sql = format!("SELECT pg_advisory_unlock({PARTITION_KEY})");
    client.query_one(&sql, &[&group, &topic, &partition]).context("releasing a partition")?;
    Ok(())
}

/// Takes a free member slot of `group`; `None` when all are taken.
///
/// # Errors
/// The query failed.
pub fn join(client: &mut Client, group: &str) -> anyhow::Result<Option<i32>> {
    for slot in 0..MEMBER_SLOTS {
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1 || '/member/' || $2::int4::text, 0))",
                &[&group, &slot],
            )
            .context("joining the group")?;
        if row.get(0) {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// The live replicas of `group` in this database (at least 1: the caller).
///
/// # Errors
/// The query failed.
pub fn members(client: &mut Client, group: &str) -> anyhow::Result<usize> {
    let row = client
        .query_one(
            "SELECT count(DISTINCT l.pid)
             FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND ((l.classid::int8 << 32) | l.objid::int8) IN (
                   SELECT hashtextextended($1 || '/member/' || s::text, 0) FROM generate_series(0, $2 - 1) s)",
            &[&group, &MEMBER_SLOTS],
        )
        .context("counting the group's replicas")?;
    let count: i64 = row.get(0);
    Ok(usize::try_from(count).unwrap_or(1).max(1))
}

/// Partitions one replica should hold at most.
pub fn fair_share(partitions: usize, members: usize) -> usize {
    partitions.div_ceil(members.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fair_share_rounds_up_so_that_every_partition_has_a_holder() {
        for (partitions, members, expected) in [(3, 1, 3), (3, 2, 2), (4, 2, 2), (1, 3, 1), (8, 3, 3), (0, 2, 0)] {
            assert_eq!(fair_share(partitions, members), expected, "{partitions} partitions, {members} members");
        }
    }
}
