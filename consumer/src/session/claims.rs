//! Which partitions this replica reads, and from where: claiming free partitions up to the fair
//! share (releasing what is over it), opening a claimed partition at its stored offset, and
//! watching the topic for new partitions and for a new identity (deleted and created again).
//!
//! Claims happen between batches, so nothing is in flight for a partition that is released.

use std::{sync::Arc, time::Duration};

use anyhow::anyhow;
use uuid::Uuid;
use websentry_shared::kafka::KafkaError;

use crate::{
    archive::Stored,
    batch::Origin,
    bridge::until_shutdown,
    lease,
    metadata::TopicMetadata,
    session::{
        outcome::{on, Flow, Interrupted, Service},
        state::Session,
    },
};

/// Which partitions one of a one-off run's writers may claim: writer `index` of `of` takes the
/// partitions whose id is `index` modulo `of`, so that the writers, each a connection of its own,
/// write different partitions at once and never try each other's. Each writer claims and stores
/// offsets as a replica does (see `lease`): the partition locks and the offset compare-and-set
/// keep every report written once however the writers interleave. A daemon is always
/// [`Slot::ALONE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub index: usize,
    pub of: usize,
    /// The writers of the run, which share `WEBSENTRY_BATCH_BYTES` ([`Slot::share_of`]): `of`,
    /// but for a writer that claims any partition after the topic was created again
    /// ([`Slot::any_partition`]).
    pub writers: usize,
}

impl Slot {
    /// The only writer: every partition.
    pub const ALONE: Slot = Slot { index: 0, of: 1, writers: 1 };

    /// The first of the writers a one-off run uses for a topic of `partitions`: as many as
    /// `wanted`, but no more than there are partitions, and at least one.
    pub fn first(wanted: usize, partitions: usize) -> Slot {
        let of = wanted.min(partitions).max(1);
        Slot { index: 0, of, writers: of }
    }

    /// The writers after the first one, in order.
    pub fn others(self) -> impl Iterator<Item = Slot> {
        (1..self.of).map(move |index| Slot { index, ..self })
    }

    /// The same writer once the topic was created again: it may claim any partition (its number
    /// of partitions may have changed, and another writer may have ended already), and still
    /// fetches only its share of the bytes, as the other writers still run.
    pub fn any_partition(self) -> Slot {
        Slot { of: 1, ..self }
    }

    /// This writer's share of `bytes` fetched at once (`WEBSENTRY_BATCH_BYTES`), which the writers
    /// share as a daemon's partitions do: never below the setting's least, 1 KiB.
    pub fn share_of(self, bytes: i32) -> i32 {
        (bytes / count(self.writers)).max(crate::settings::BATCH_BYTES.min.min(bytes))
    }

    /// Whether this writer may claim partition `id`: any, when it is the only one of its kind
    /// (`of` 1). A partition id is never negative; one that were would still fall to exactly one
    /// writer.
    pub fn holds(self, id: i32) -> bool {
        self.of <= 1 || usize::try_from(id.rem_euclid(count(self.of))).is_ok_and(|rest| rest == self.index)
    }
}

/// A number of writers as Kafka counts partitions (at most WEBSENTRY_CONSUMER_WRITERS' 16).
fn count(writers: usize) -> i32 {
    i32::try_from(writers.max(1)).unwrap_or(i32::MAX)
}

/// Where a newly claimed partition is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// From the offset stored for this topic.
    Stored(i64),
    /// From the earliest record kept: the partition was never read.
    Beginning,
    /// From the earliest record kept, after storing that: the offset `old` was stored for a topic
    /// of the same name that was deleted since.
    Restart { old: Stored },
}

/// Decides where to read a partition from, given what is stored of it and the topic's id now. An
/// offset stored without a topic id (before schema version 3), or a broker that gives no id, is
/// taken to belong to the topic as it is.
pub fn resume(stored: Option<Stored>, topic_id: Option<Uuid>) -> Resume {
    match stored {
        None => Resume::Beginning,
        Some(old) if old.topic_id.is_some() && topic_id.is_some() && old.topic_id != topic_id => {
            Resume::Restart { old }
        }
        Some(stored) => Resume::Stored(stored.next_offset),
    }
}

/// Claims free partitions up to the fair share (a one-off run: every free one) and, in a daemon,
/// releases what is over it.
///
/// # Errors
/// Either service failed.
pub fn claim(session: &mut Session<'_>) -> Result<(), Interrupted> {
    let (daemon, group) = (session.config.daemon, session.config.group.clone());
    let topic = session.topic().to_owned();
    let share = if daemon {
        let members = lease::members(session.archiver.client(), &group).map_err(on(Service::Database))?;
        lease::fair_share(session.table.len(), members)
    } else {
        session.table.len()
    };
    let plan = session.table.plan(share);
    for id in plan.release {
        lease::release(session.archiver.client(), &group, &topic, id).map_err(on(Service::Database))?;
        session.table.release(id);
        session.metrics.release(&topic, id);
        tracing::info!(partition = id, share, "partition released to another replica");
    }
    let (mut claimed, mut restarted) = (0, Vec::new());
    let slot = session.slot;
    for id in plan.candidates.into_iter().filter(|&id| slot.holds(id)) {
        if claimed == plan.wanted {
            break;
        }
        if lease::try_claim(session.archiver.client(), &group, &topic, id).map_err(on(Service::Database))? {
            if open(session, id)? {
                restarted.push(id);
            }
            claimed += 1;
        } else if !daemon {
            tracing::info!(partition = id, "partition held by another replica, left to it");
        }
    }
    if !restarted.is_empty() {
        tracing::warn!(topic, topic_id = ?session.topic_id, partitions = ?restarted, "topic was created again since its offsets were stored; reading it from its beginning");
    }
    Ok(())
}

/// Starts reading a newly claimed partition where [`resume`] says (another replica may have
/// moved its offset while this one did not hold it); true when it restarts a topic created again.
fn open(session: &mut Session<'_>, id: i32) -> Result<bool, Interrupted> {
    let (config, source) = (session.config, Arc::clone(&session.source));
    let at = Origin { group: &config.group, topic: source.topic(), topic_id: session.topic_id, partition: id };
    let stored = session.archiver.stored(at).map_err(on(Service::Database))?;
    let decision = resume(stored, session.topic_id);
    let (offset, stored) = match decision {
        Resume::Stored(offset) => (offset, Some(offset)),
        Resume::Beginning => (session.kafka(Duration::ZERO, source.earliest(id))?, None),
        Resume::Restart { old } => {
            let earliest = session.kafka(Duration::ZERO, source.earliest(id))?;
            tracing::debug!(partition = id, old_topic_id = ?old.topic_id, stored_offset = old.next_offset, from = earliest, "offset of a deleted topic, restarting");
            if !session.archiver.restart_at(at, old.next_offset, earliest).map_err(on(Service::Database))? {
                return Err(on(Service::Database)(anyhow!("the offset of partition {id} moved while restarting it")));
            }
            (earliest, Some(earliest))
        }
    };
    let target = match config.daemon {
        true => None,
        false => Some(session.kafka(Duration::ZERO, source.latest(id))?),
    };
    session.table.open(id, offset, stored, target);
    session.metrics.hold(source.topic(), id, stored);
    tracing::info!(partition = id, offset, ?target, "partition claimed");
    Ok(matches!(decision, Resume::Restart { .. }))
}

/// Looks at the topic as the broker knows it now: a new identity ends the session, new partitions
/// join the table.
///
/// # Errors
/// Kafka failed, or the topic is gone.
pub fn refresh_topic(session: &mut Session<'_>) -> Result<Flow, Interrupted> {
    let name = session.topic().to_owned();
    let found = {
        let metadata = &mut session.metadata;
        let request = async { metadata.topic(&name).await.map_err(anyhow::Error::from) };
        until_shutdown(session.runtime, &session.shutdown, request).and_then(|r| r).map_err(on(Service::Kafka))?
    };
    let Some(TopicMetadata { id, partitions }) = found else {
        return Err(on(Service::Kafka)(KafkaError::NoSuchTopic(name).into()));
    };
    if id.is_some() && session.topic_id.is_some() && id != session.topic_id {
        // The next session's claims log the change, once.
        tracing::debug!(topic = name, old = ?session.topic_id, new = ?id, "topic id changed, starting a new session");
        return Ok(Flow::TopicChanged);
    }
    let new: Vec<i32> = partitions.into_iter().filter(|&id| session.table.get(id).is_none()).collect();
    if !new.is_empty() {
        let readable = session.kafka(Duration::ZERO, session.source.add(&new))?;
        let added = session.table.add(&readable);
        if !added.is_empty() {
            tracing::info!(topic = name, partitions = ?added, "partitions added to the topic");
        }
    }
    Ok(Flow::CarryOn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: Uuid = Uuid::from_u128(1);
    const NEW: Uuid = Uuid::from_u128(2);

    fn stored(next_offset: i64, topic_id: Option<Uuid>) -> Option<Stored> {
        Some(Stored { next_offset, topic_id })
    }

    #[test]
    fn a_one_off_runs_writers_share_the_partitions_each_to_exactly_one() {
        for (wanted, partitions, writers) in [(2, 4, 2), (2, 1, 1), (4, 3, 3), (1, 8, 1), (16, 0, 1), (3, 7, 3)] {
            let first = Slot::first(wanted, partitions);
            assert_eq!(first.of, writers, "{wanted} wanted for {partitions} partitions");
            let slots: Vec<Slot> = std::iter::once(first).chain(first.others()).collect();
            assert_eq!(slots.len(), writers);
            assert_eq!(slots.iter().map(|slot| slot.index).collect::<Vec<_>>(), (0..writers).collect::<Vec<_>>());
            let ids = i32::try_from(partitions).unwrap();
            for id in (0..ids + 3).chain([-1, i32::MAX]) {
                let holders = slots.iter().filter(|slot| slot.holds(id)).count();
                assert_eq!(holders, 1, "partition {id} with {writers} writers");
            }
            if writers > 1 {
                let shares: Vec<usize> =
                    slots.iter().map(|slot| (0..ids).filter(|&id| slot.holds(id)).count()).collect();
                let (least, most) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(most - least <= 1, "even shares: {shares:?}");
            }
        }
        assert!((-5..100).all(|id| Slot::ALONE.holds(id)), "alone, a writer holds every partition");
    }

    #[test]
    fn the_writers_share_the_bytes_fetched_at_once_down_to_one_kib() {
        let of = |n| Slot::first(n, 16);
        assert_eq!(Slot::ALONE.share_of(1 << 20), 1 << 20);
        assert_eq!(of(2).share_of(1 << 20), 1 << 19);
        assert_eq!(of(3).share_of(3000 * 1024), 1000 * 1024);
        assert_eq!(of(3).others().map(|slot| slot.share_of(3000 * 1024)).collect::<Vec<_>>(), [1000 * 1024; 2]);
        assert_eq!(of(16).share_of(4096), 1024, "no fetch below the setting's least");
        assert_eq!(of(16).share_of(1024), 1024);
    }

    #[test]
    fn a_writer_that_starts_again_on_a_new_topic_claims_any_partition_and_keeps_its_share() {
        for slot in Slot::first(4, 8).others() {
            let again = slot.any_partition();
            assert!((-5..100).all(|id| again.holds(id)), "{slot:?}: every partition it can claim");
            assert_eq!(again.share_of(1 << 20), 1 << 18, "{slot:?}: still a quarter of the bytes");
            assert_eq!(again.others().count(), 0, "{slot:?}: starts no writer");
            assert_eq!(again.index, slot.index, "{slot:?}: still logged as the same writer");
        }
        assert_eq!(Slot::ALONE.any_partition(), Slot::ALONE);
    }

    #[test]
    fn a_partition_never_read_starts_at_the_beginning() {
        assert_eq!(resume(None, Some(NEW)), Resume::Beginning);
        assert_eq!(resume(None, None), Resume::Beginning);
    }

    #[test]
    fn a_partition_resumes_at_the_offset_stored_for_the_same_topic() {
        assert_eq!(resume(stored(42, Some(NEW)), Some(NEW)), Resume::Stored(42));
    }

    #[test]
    fn an_offset_stored_without_a_topic_id_or_read_without_one_belongs_to_the_topic_as_it_is() {
        // (case, stored topic id, topic id now)
        for (case, then, now) in [("stored before ids", None, Some(NEW)), ("broker without ids", Some(OLD), None)] {
            assert_eq!(resume(stored(42, then), now), Resume::Stored(42), "{case}");
        }
    }

    #[test]
    fn an_offset_of_a_topic_deleted_since_restarts_at_the_beginning() {
        let old = Stored { next_offset: 42, topic_id: Some(OLD) };
        assert_eq!(resume(Some(old), Some(NEW)), Resume::Restart { old });
    }
}
