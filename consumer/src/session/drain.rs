//! One-off runs: read every held partition up to its readable end when it was claimed (its last
//! stable offset: the high watermark, unless a transaction is open), in turn, one fetch at a time
//! (memory stays at about two fetches), the next fetch running on the runtime and decoded on a
//! blocking thread while this thread writes the current one. Records of a transaction still open
//! when the run started are left to the next run, which finds them committed or aborted.
//!
//! A run catching up writes several fetches in one transaction, up to `WEBSENTRY_BATCH_MAX`
//! records (see `write::full`): each fetch's reports are copied as it comes, and the rollups of
//! them all are merged once, when it commits. Merging a site's hour once per transaction rather
//! than once per fetch was most of a batch's time.

use std::{sync::Arc, time::Instant};

use tokio::task::{JoinError, JoinHandle};
use websentry_shared::kafka::KafkaError;

use crate::{
    batch::{self, Origin, Sorted},
    fetch::{Fetched, Records},
    partitions::PartitionTable,
    session::{
        outcome::{on, Ended, Flow, Interrupted, Service},
        state::{Parts, Session},
        write::{commit, fill, full, handle, Fetch, Written},
    },
};

/// A fetch running on the runtime, then decoded, while the archiving thread writes.
struct Prefetch {
    id: i32,
    offset: i64,
    task: JoinHandle<Result<Result<Fetched<Sorted>, KafkaError>, JoinError>>,
}

/// A fetch as it came, of a partition.
type Came = (i32, Result<Fetched<Sorted>, KafkaError>);

/// Reads the held partitions in turn until each reached its start watermark (or gave up, see
/// `partitions`), or until shutdown. A prefetch whose partition has moved meanwhile (a shorter
/// write, an offset moved by another consumer) is dropped and fetched again.
///
/// # Errors
/// Either service failed; what was committed stays committed.
pub fn drain_to_watermarks(session: &mut Session<'_>) -> Result<Ended, Interrupted> {
    let mut reading = Reading::default();
    // A fetch with records left to write when its transaction was full.
    let mut fetch: Option<Fetch> = None;
    let ended = loop {
        // One transaction: what is left of the last fetch, then the fetches that follow while they
        // bring records, until it is full.
        let stop = {
            let (parts, archiver, table) = session.split();
            let mut span = archiver.begin().map_err(on(Service::Database))?;
            let (started, mut written) = (Instant::now(), Written::default());
            let stop = loop {
                if parts.shutdown.is_requested() {
                    break Stop::Done;
                }
                let current = match &mut fetch {
                    Some(current) => current,
                    None if full(&parts, &span) => break Stop::Full,
                    None => match reading.next(&parts, table) {
                        Ok(Some((id, Ok(Fetched::Records(records))))) => fetch.insert(Fetch::new(table, id, records)),
                        Ok(Some(other)) => break Stop::Came(other),
                        Ok(None) => break Stop::Done,
                        Err(lost) => {
                            // What is written is kept: the broker's failure is not the database's.
                            commit(&parts, span, started, written)?;
                            return Err(lost);
                        }
                    },
                };
                fill(&parts, &mut span, table, current, &mut written)?;
                if !current.done(table) {
                    break Stop::Full;
                }
                current.lag(&parts, table);
                fetch = None;
            };
            commit(&parts, span, started, written)?;
            stop
        };
        match stop {
            Stop::Full => continue,
            Stop::Done => break Ended::Done,
            Stop::Came((id, result)) => {
                if handle(session, id, result)? == Flow::TopicChanged {
                    break Ended::TopicChanged;
                }
            }
        }
    };
    reading.abort();
    Ok(ended)
}

/// Why a transaction of the drain ended.
enum Stop {
    /// It holds as much as one may (or shutdown came while a fetch was written): commit, go on.
    Full,
    /// Every partition is read, or shutdown was requested.
    Done,
    /// A fetch that brought no records to write (past the end of the log, or failed), for
    /// `handle` once the transaction is committed.
    Came(Came),
}

/// The partitions read in turn, and the fetch running for the next one.
#[derive(Default)]
struct Reading {
    cursor: usize,
    pending: Option<Prefetch>,
}

impl Reading {
    /// The next fetch of a partition still to be read, and the one after it started; `None` once
    /// none is left, or on shutdown.
    ///
    /// # Errors
    /// Kafka failed, or shutdown came while waiting.
    fn next(&mut self, parts: &Parts<'_>, table: &PartitionTable) -> Result<Option<Came>, Interrupted> {
        loop {
            if parts.shutdown.is_requested() {
                return Ok(None);
            }
            let current = match self.pending.take() {
                Some(prefetch) => prefetch,
                None => match table.next_active(&mut self.cursor) {
                    Some(id) => prefetch(parts, id, table.offset(id)),
                    None => return Ok(None),
                },
            };
            let Prefetch { id, offset, task } = current;
            let abort = task.abort_handle();
            let joined = async {
                match task.await {
                    Ok(Ok(fetched)) => Ok(fetched),
                    // A panic while decoding is this consumer's bug, not a lost broker: raised on
                    // this thread, as it was when this thread decoded.
                    Ok(Err(decoding)) => Err(match decoding.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        Err(cancelled) => cancelled,
                    }),
                    Err(fetching) => Err(fetching),
                }
            };
            let result = parts.kafka(std::time::Duration::ZERO, joined).inspect_err(|_| abort.abort())?;
            if is_stale(offset, table.offset(id), table.get(id).is_some_and(|p| p.active())) {
                continue;
            }
            if let Some(next) = table.next_active(&mut self.cursor) {
                let from = if next == id { offset_after(offset, &result) } else { table.offset(next) };
                self.pending = Some(prefetch(parts, next, from));
            }
            return Ok(Some((id, result)));
        }
    }

    /// Stops the fetch running ahead, if any.
    fn abort(self) {
        if let Some(prefetch) = self.pending {
            prefetch.task.abort();
        }
    }
}

/// Blocking threads a prefetch decodes on, each a share of the fetch's records.
const DECODERS: usize = 2;

/// Fetches partition `id` from `offset` and decodes what came, off the archiving thread (on it,
/// decoding took ~13 ms of every ~80 ms batch in the drain benchmark) and in [`DECODERS`] shares
/// at once (on one thread, the archiving thread still waited ~6 ms a fetch for it once a
/// transaction held several fetches).
fn prefetch(parts: &Parts<'_>, id: i32, offset: i64) -> Prefetch {
    let source = Arc::clone(parts.source);
    let Origin { group, topic, topic_id, .. } = parts.origin(id);
    let (group, topic): (Arc<str>, Arc<str>) = (group.into(), topic.into());
    let task = parts.runtime.spawn(async move {
        let mut records = match source.fetch(id, offset, 0, 1).await {
            Ok(Fetched::Records(records)) => records,
            Ok(Fetched::OutOfRange) => return Ok(Ok(Fetched::OutOfRange)),
            Err(err) => return Ok(Err(err)),
        };
        let share = records.records.len().div_ceil(DECODERS).max(1);
        let mut shares = Vec::with_capacity(DECODERS);
        while !records.records.is_empty() {
            let rest = records.records.split_off(share.min(records.records.len()));
            let share = std::mem::replace(&mut records.records, rest);
            let (group, topic) = (Arc::clone(&group), Arc::clone(&topic));
            shares.push(tokio::task::spawn_blocking(move || {
                batch::sort(Origin { group: &group, topic: &topic, topic_id, partition: id }, share)
            }));
        }
        let mut decoded = Vec::new();
        for share in shares {
            decoded.extend(share.await?);
        }
        Ok(Ok(Fetched::Records(Records {
            records: decoded,
            next_offset: records.next_offset,
            high_watermark: records.high_watermark,
        })))
    });
    Prefetch { id, offset, task }
}

/// Whether a fetch from `fetched_from` is no longer wanted: the partition is now read from
/// `reading_from`, or it is no longer active (released, or read to its watermark).
fn is_stale(fetched_from: i64, reading_from: i64, active: bool) -> bool {
    fetched_from != reading_from || !active
}

/// Where the partition will be read from once `result`, fetched from `offset`, is written: past
/// the last record batch fetched (transaction markers and aborted transactions included); where it
/// was when nothing came back.
fn offset_after<R>(offset: i64, result: &Result<Fetched<R>, KafkaError>) -> i64 {
    match result {
        Ok(Fetched::Records(fetched)) => fetched.next_offset.max(offset),
        _ => offset,
    }
}

#[cfg(test)]
mod tests {
    use rskafka::record::{Record, RecordAndOffset};

    use super::*;
    use crate::fetch::Records;

    fn records(offsets: &[i64], next_offset: i64) -> Fetched {
        let record = Record {
            key: None,
            value: None,
            headers: Default::default(),
            timestamp: rskafka::chrono::DateTime::UNIX_EPOCH,
        };
        let records = offsets.iter().map(|&offset| RecordAndOffset { record: record.clone(), offset }).collect();
        Fetched::Records(Records { records, next_offset, high_watermark: 100 })
    }

    #[test]
    fn the_next_fetch_of_a_partition_starts_past_the_batches_being_written() {
        assert_eq!(offset_after(10, &Ok(records(&[10, 11, 14], 15))), 15, "past the last one, gaps included");
        assert_eq!(offset_after(10, &Ok(records(&[10, 11], 13))), 13, "past a transaction marker after them");
        assert_eq!(offset_after(10, &Ok(records(&[], 14))), 14, "past markers and aborted records alone");
        assert_eq!(offset_after(10, &Ok(records(&[], 10))), 10, "nothing came: where it was");
        assert_eq!(offset_after(10, &Ok(Fetched::<()>::OutOfRange)), 10, "out of range: where it was");
    }

    #[test]
    fn a_prefetch_is_dropped_when_its_partition_moved_or_is_no_longer_read() {
        assert!(!is_stale(10, 10, true), "the partition is read from where it was fetched");
        assert!(is_stale(10, 7, true), "another consumer moved the offset back");
        assert!(is_stale(10, 12, true), "a shorter write than fetched moved it");
        assert!(is_stale(10, 10, false), "read to its watermark, or released");
    }
}
