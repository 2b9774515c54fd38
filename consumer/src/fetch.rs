//! The Kafka side of the consumer: one client per partition, fetching from offsets we choose.
//! rskafka has no consumer groups; the offsets live in PostgreSQL (see `archive`).

use std::{
    collections::BTreeMap,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use rskafka::{
    client::{
        error::{Error as RsError, ProtocolError},
        partition::{FetchedRecords, OffsetAt, PartitionClient, UnknownTopicHandling},
        Client,
    },
    record::RecordAndOffset,
};
use websentry_shared::kafka::{KafkaError, KafkaSettings};

/// Tries to find a new partition's leader before leaving it for later (0.4 s, 0.8 s, 1.6 s apart).
const LEADER_ATTEMPTS: u32 = 4;

/// The smallest byte bound of one partition's fetch when the bound is shared between partitions.
const MIN_FETCH_BYTES: i32 = 64 * 1024;

/// The most a fetch grows its byte bound to get one whole record batch that is larger than the
/// bound (Kafka's own default limit of a batch is 1 MiB; topics may raise it).
const MAX_GROWN_FETCH_BYTES: i32 = 64 * 1024 * 1024;

/// What a fetch found: records as the broker sent them (`R` = [`RecordAndOffset`]), or decoded
/// (see [`Fetched::map`]).
#[derive(Debug)]
pub enum Fetched<R = RecordAndOffset> {
    /// Records from the requested offset on (possibly none).
    Records(Records<R>),
    /// The offset is no longer (or not yet) in the log, e.g. removed by retention.
    OutOfRange,
}

impl<R> Fetched<R> {
    /// The same fetch with its records turned into something else by `f` (decoded: see
    /// `batch::sort`); offsets and watermark unchanged.
    pub fn map<S>(self, f: impl FnOnce(Vec<R>) -> Vec<S>) -> Fetched<S> {
        match self {
            Fetched::Records(Records { records, next_offset, high_watermark }) => {
                Fetched::Records(Records { records: f(records), next_offset, high_watermark })
            }
            Fetched::OutOfRange => Fetched::OutOfRange,
        }
    }
}

/// The records of one fetch and where the partition stands.
#[derive(Debug, Default)]
pub struct Records<R = RecordAndOffset> {
    /// What a read-committed reader sees: no transaction markers, no records of aborted
    /// transactions.
    pub records: Vec<R>,
    /// Where to read next: past the last record batch fetched, transaction markers and aborted
    /// transactions included (they hold no record to resume after); the requested offset when
    /// nothing whole came back.
    pub next_offset: i64,
    /// The partition's high watermark, for the lag.
    pub high_watermark: i64,
}

impl From<FetchedRecords> for Records {
    fn from(fetched: FetchedRecords) -> Self {
        let FetchedRecords { records, next_offset, high_watermark, .. } = fetched;
        Self { records, next_offset, high_watermark }
    }
}

/// Whether a fetch from `offset` met a record batch larger than the byte bound rather than the end
/// of what is readable: nothing whole came back (`next_offset` is still `offset`) although records
/// are readable there. Readable means below the last stable offset (where a read-committed fetch
/// stops while a transaction is open: its records, and whatever follows them, are not readable yet
/// however large the bound), or below the high watermark when the broker gives none.
fn cut_short(offset: i64, fetched: &FetchedRecords) -> bool {
    nothing_whole_below(offset, fetched.next_offset, fetched.last_stable_offset.unwrap_or(fetched.high_watermark))
}

fn nothing_whole_below(offset: i64, next_offset: i64, readable_end: i64) -> bool {
    next_offset == offset && readable_end > offset
}

/// Clients for the partitions of the topic, by partition id; partitions added to the topic while
/// a daemon runs get theirs through [`Source::add`].
#[derive(Debug)]
pub struct Source {
    topic: String,
    /// A client per partition read so far, by partition id.
    partitions: RwLock<BTreeMap<i32, Arc<PartitionClient>>>,
    /// Bytes fetched at most per partition and request (`WEBSENTRY_BATCH_BYTES`).
    max_bytes: i32,
    /// The cluster client the partition clients are made from.
    client: Client,
}

impl Source {
    /// A source of the topic without partitions yet (see [`Source::add`]), fetching at most
    /// `max_bytes` per partition and request.
    ///
    /// # Errors
    /// Kafka unreachable within the timeout.
    pub async fn connect(settings: &KafkaSettings, max_bytes: i32) -> Result<Self, KafkaError> {
        let client = settings.connect("websentry-consumer").await?;
        Ok(Self { topic: settings.topic.clone(), partitions: RwLock::default(), max_bytes, client })
    }

    /// Adds clients for partitions `ids` that have none yet; returns those that have one now. A
    /// partition whose leader rskafka does not know yet (its metadata can lag the broker's for a
    /// moment after partitions are added) is left for the next call.
    ///
    /// # Errors
    /// The metadata could not be refreshed.
    pub async fn add(&self, ids: &[i32]) -> Result<Vec<i32>, KafkaError> {
        let new: Vec<i32> = ids.iter().copied().filter(|&id| !self.known(id)).collect();
        if new.is_empty() {
            return Ok(ids.to_vec());
        }
        // rskafka finds leaders in its cached metadata, which can lag the broker's for a moment:
        // refresh it (uncached) and try again a few times before leaving a partition for later.
        let mut missing = new;
        for attempt in 0..LEADER_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            self.client.list_topics().await.map_err(|source| request("reading metadata", &self.topic, source))?;
            let mut still = Vec::new();
            for id in missing {
                match self.client.partition_client(self.topic.clone(), id, UnknownTopicHandling::Retry).await {
                    Ok(partition) => {
                        self.partitions.write().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::new(partition));
                    }
                    Err(err) => {
                        tracing::debug!(partition = id, attempt, cause = %err, "no leader known yet");
                        still.push(id);
                    }
                }
            }
            missing = still;
            if missing.is_empty() {
                break;
            }
        }
        Ok(ids.iter().copied().filter(|&id| self.known(id)).collect())
    }

    fn known(&self, id: i32) -> bool {
        self.partitions.read().unwrap_or_else(PoisonError::into_inner).contains_key(&id)
    }

    fn partition(&self, id: i32) -> Arc<PartitionClient> {
        let partitions = self.partitions.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(partitions.get(&id).unwrap_or_else(|| panic!("no client for partition {id}")))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The first offset still in the log of partition `id`.
    ///
    /// # Errors
    /// The request failed past the retry deadline.
    pub async fn earliest(&self, id: i32) -> Result<i64, KafkaError> {
        self.partition(id)
            .get_offset(OffsetAt::Earliest)
            .await
            .map_err(|source| request("reading the earliest offset", &self.topic, source))
    }

    /// The offset up to which partition `id` is readable now: its last stable offset (rskafka lists
    /// offsets read-committed), which is the high watermark unless a transaction is open, whose
    /// records and whatever follows them are not readable before it ends.
    ///
    /// # Errors
    /// The request failed past the retry deadline.
    pub async fn latest(&self, id: i32) -> Result<i64, KafkaError> {
        self.partition(id)
            .get_offset(OffsetAt::Latest)
            .await
            .map_err(|source| request("reading the last stable offset", &self.topic, source))
    }

    /// Fetches from `offset` of partition `id`, waiting up to `max_wait_ms` for records to come,
    /// `share` of the byte bound (1 = all of it; the broker still sends at least one record batch).
    ///
    /// # Errors
    /// The request failed past the retry deadline.
    pub async fn fetch(&self, id: i32, offset: i64, max_wait_ms: i32, share: usize) -> Result<Fetched, KafkaError> {
        let mut max_bytes = (self.max_bytes / i32::try_from(share.max(1)).unwrap_or(i32::MAX)).max(MIN_FETCH_BYTES);
        let partition = self.partition(id);
        loop {
            match partition.fetch_records_with_positions(offset, 1..max_bytes, max_wait_ms).await {
                // Nothing whole came back below the readable end: the next record batch may be
                // larger than the bound (the broker then sends a part of it, which is dropped). Ask
                // for more, up to a limit, rather than mistake it for the end.
                Ok(fetched) if cut_short(offset, &fetched) && max_bytes < MAX_GROWN_FETCH_BYTES => {
                    max_bytes = max_bytes.saturating_mul(2).min(MAX_GROWN_FETCH_BYTES);
                }
                Ok(fetched) => return Ok(Fetched::Records(fetched.into())),
                Err(RsError::ServerError { protocol_error: ProtocolError::OffsetOutOfRange, .. }) => {
                    return Ok(Fetched::OutOfRange)
                }
                Err(source) => return Err(request("fetching records", &self.topic, source)),
            }
        }
    }
}

fn request(action: &'static str, topic: &str, source: RsError) -> KafkaError {
    KafkaError::Request { action, topic: topic.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_grows_only_when_a_batch_larger_than_its_bound_is_readable() {
        // (case, next offset after a fetch from 10, readable end, whether to grow)
        let cases = [
            ("nothing whole came back below the readable end", 10, 20, true),
            ("records, markers or aborted batches came back", 12, 20, false),
            ("at the readable end: a transaction still open, or the end of the log", 10, 10, false),
        ];
        for (case, next_offset, readable_end, grow) in cases {
            assert_eq!(nothing_whole_below(10, next_offset, readable_end), grow, "{case}");
        }
    }
}
