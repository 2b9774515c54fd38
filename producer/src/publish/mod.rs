//! Publishing reports as their probes finish: one record per report, keyed by URL, partitioned like
//! the Java client ([`partitioner`]).
//!
//! - Each partition has its own queue. A request holds the reports that came while the first of
//!   them waited [`LINGER`], and at most [`MAX_REQUEST_BYTES`] of records: Kafka refuses a record
//!   batch over the topic's `max.message.bytes` (1 MiB by default), so a round of any size goes out
//!   in as many requests as it needs. The partitions send in parallel; within one, requests go one
//!   after the other, so one site's reports stay in order.
//! - One deadline, `WEBSENTRY_KAFKA_TIMEOUT`: a request that is neither acknowledged nor refused
//!   within it counts as Kafka lost, and the rest of the round is kept without trying again, so a
//!   round never waits on Kafka for longer than that. The caller keeps what was not acknowledged.
//! - A request Kafka refuses as too large is split in halves; a single report too large for the
//!   topic is kept, with an error naming it.
//! - Kafka lost and back are logged once each (rskafka's own retry warnings are not shown).

pub mod partitioner;

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::Duration,
};

use rskafka::{
    chrono::{DateTime, Utc},
    client::{
        error::{Error as RsError, ProtocolError},
        partition::{Compression, PartitionClient, UnknownTopicHandling},
        Client,
    },
    record::Record,
};
use tokio::{
    sync::mpsc,
    time::{timeout, timeout_at, Instant},
};
use websentry_shared::{
    kafka::{KafkaError, KafkaSettings},
    report::Report,
};

use self::partitioner::partition_for_key;

/// The most record bytes in one produce request, below Kafka's default `max.message.bytes`
/// (1,048,588) with room for the batch's own header.
pub const MAX_REQUEST_BYTES: usize = 900 * 1024;
/// How long a report waits for others to share its request.
pub const LINGER: Duration = Duration::from_millis(100);
/// Bytes a record takes beyond its key and value (lengths, offsets and timestamp deltas as
/// varints, attributes, header count), rounded up.
const RECORD_OVERHEAD: usize = 64;

/// A connection to the topic's partitions.
#[derive(Debug)]
pub struct Publisher {
    topic: String,
    partitions: Vec<PartitionClient>,
    /// `WEBSENTRY_KAFKA_TIMEOUT`: the longest one request may take, retries included.
    timeout: Duration,
    /// Whether the last request was acknowledged; logged when it changes.
    acknowledging: AtomicBool,
    /// How many times Kafka acknowledged again after failing: a request sent before the last time
    /// belongs to the outage that ended, and its failure does not begin another one.
    recoveries: AtomicU64,
    _client: Client,
}

/// A report on its way, with its place in the round (to hand back unsent ones in order).
#[derive(Debug)]
struct Pending {
    seq: u64,
    report: Report,
    record: Record,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.record.key.as_ref().map_or(0, Vec::len) + self.record.value.as_ref().map_or(0, Vec::len) + RECORD_OVERHEAD
    }
}

impl Publisher {
    /// Connects to the cluster and to the leader of every partition of the topic.
    ///
    /// # Errors
    /// The cluster is unreachable within the settings' timeout, or the topic does not exist.
    pub async fn connect(settings: &KafkaSettings) -> Result<Self, KafkaError> {
        let client = settings.connect("websentry-producer").await?;
        let ids = settings.partitions(&client).await?;
        let mut partitions = Vec::with_capacity(ids.len());
        for (expected, id) in ids.into_iter().enumerate() {
            if usize::try_from(id).ok() != Some(expected) {
                return Err(KafkaError::NoSuchTopic(format!("{} (partition {expected} missing)", settings.topic)));
            }
            let partition = client
                .partition_client(settings.topic.clone(), id, UnknownTopicHandling::Retry)
                .await
                .map_err(|source| KafkaError::Request {
                    action: "connecting to a partition leader",
                    topic: settings.topic.clone(),
                    source,
                })?;
            partitions.push(partition);
        }
        if partitions.is_empty() {
            return Err(KafkaError::NoSuchTopic(settings.topic.clone()));
        }
        Ok(Self {
            topic: settings.topic.clone(),
            partitions,
            timeout: settings.timeout,
            acknowledging: AtomicBool::new(true),
            recoveries: AtomicU64::new(0),
            _client: client,
        })
    }

    /// Publishes the reports that arrive on `reports` until it closes; returns those Kafka did not
    /// acknowledge, in the order they arrived, for the caller to keep.
    pub async fn publish_until_closed(&self, mut reports: mpsc::Receiver<Report>) -> Vec<Report> {
        let count = i32::try_from(self.partitions.len()).expect("partition count fits an i32");
        let lost = AtomicBool::new(false);
        let (queues, receivers): (Vec<_>, Vec<_>) = self.partitions.iter().map(|_| mpsc::unbounded_channel()).unzip();
        let route = async move {
            let mut seq = 0;
            while let Some(report) = reports.recv().await {
                let partition = partition_for_key(report.url.as_bytes(), count) as usize;
                let record = record(&report);
                // A queue's receiver lives until this sender is dropped.
                let _ = queues[partition].send(Pending { seq, report, record });
                seq += 1;
            }
        };
        let sends = receivers.into_iter().enumerate().map(|(partition, queue)| self.drain(partition, queue, &lost));
        let ((), unsent) = tokio::join!(route, futures::future::join_all(sends));
        let mut unsent: Vec<Pending> = unsent.into_iter().flatten().collect();
        unsent.sort_by_key(|p| p.seq);
        unsent.into_iter().map(|p| p.report).collect()
    }

    /// Sends one partition's queue in requests until it closes; returns what was not acknowledged.
    async fn drain(
        &self,
        partition: usize,
        mut queue: mpsc::UnboundedReceiver<Pending>,
        lost: &AtomicBool,
    ) -> Vec<Pending> {
        let mut unsent = Vec::new();
        let mut carried: Option<Pending> = None;
        loop {
            let first = match carried.take() {
                Some(pending) => pending,
                None => match queue.recv().await {
                    Some(pending) => pending,
                    None => break,
                },
            };
            let linger_until = Instant::now() + LINGER;
            let mut bytes = first.bytes();
            let mut request = vec![first];
            while bytes < MAX_REQUEST_BYTES {
                match timeout_at(linger_until, queue.recv()).await {
                    Ok(Some(next)) if bytes + next.bytes() > MAX_REQUEST_BYTES => {
                        carried = Some(next);
                        break;
                    }
                    Ok(Some(next)) => {
                        bytes += next.bytes();
                        request.push(next);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if lost.load(Ordering::Relaxed) {
                unsent.extend(request);
            } else {
                self.send(partition, request, lost, &mut unsent).await;
            }
        }
        unsent
    }

    /// One produce request; a request refused as too large is sent again in halves.
    async fn send(&self, partition: usize, request: Vec<Pending>, lost: &AtomicBool, unsent: &mut Vec<Pending>) {
        let records = request.iter().map(|p| p.record.clone()).collect();
        let sent_during = self.recoveries.load(Ordering::Relaxed);
        let outcome =
            timeout(self.timeout, self.partitions[partition].produce(records, Compression::NoCompression)).await;
        let err = match outcome {
            Ok(Ok(_)) => {
                if !self.acknowledging.swap(true, Ordering::Relaxed) {
                    self.recoveries.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(topic = %self.topic, "Kafka acknowledges reports again");
                }
                return;
            }
            Ok(Err(err)) => err,
            Err(_) => RsError::Timeout,
        };
        if too_large(&err) {
            if request.len() > 1 {
                let mut first = request;
                let second = first.split_off(first.len() / 2);
                Box::pin(self.send(partition, first, lost, unsent)).await;
                Box::pin(self.send(partition, second, lost, unsent)).await;
            } else {
                let pending = &request[0];
                tracing::error!(topic = %self.topic, partition, url = %pending.report.url, bytes = pending.bytes(), "report too large for the topic (max.message.bytes), kept unsent");
                unsent.extend(request);
            }
            return;
        }
        lost.store(true, Ordering::Relaxed);
        // A request sent into an outage that has ended since (another partition's leader answered
        // first) is kept unsent like any other, but begins no new outage in the log.
        let stale = self.recoveries.load(Ordering::Relaxed) != sent_during;
        if !stale && self.acknowledging.swap(false, Ordering::Relaxed) {
            tracing::error!(topic = %self.topic, partition, timeout_s = self.timeout.as_secs(), cause = %err, "Kafka does not acknowledge reports; keeping them, not trying again this round");
        }
        unsent.extend(request);
    }
}

fn too_large(err: &RsError) -> bool {
    matches!(
        err,
        RsError::ServerError { protocol_error: ProtocolError::MessageTooLarge | ProtocolError::RecordListTooLarge, .. }
    )
}

fn record(report: &Report) -> Record {
    let nanos = report.checked_at.unix_timestamp_nanos();
    let timestamp = DateTime::<Utc>::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX));
    Record {
        key: Some(report.url.as_bytes().to_vec()),
        value: Some(report.to_json()),
        headers: BTreeMap::new(),
        timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_counts_its_key_value_and_overhead() {
        let report = Report::decode(
            br#"{"v":1,"id":"01a226c2-20b7-74b1-802b-3965cebb9a74","url":"http://a/","code":200,"response_ms":1.5,"regexp_match":null,"checked_at":"2026-11-29T10:00:00Z"}"#,
        )
        .expect("a report");
        let record = record(&report);
        let value = record.value.as_ref().map_or(0, Vec::len);
        let pending = Pending { seq: 0, report, record };
        assert_eq!(pending.bytes(), "http://a/".len() + value + RECORD_OVERHEAD);
    }

    #[test]
    fn only_size_refusals_split_a_request() {
        let refusal = |protocol_error| RsError::ServerError {
            protocol_error,
            error_message: None,
            request: rskafka::client::error::RequestContext::Partition("t".into(), 0),
            response: None,
            is_virtual: false,
        };
        assert!(too_large(&refusal(ProtocolError::MessageTooLarge)));
        assert!(too_large(&refusal(ProtocolError::RecordListTooLarge)));
        assert!(!too_large(&refusal(ProtocolError::NotLeaderOrFollower)));
        assert!(!too_large(&RsError::Timeout));
    }
}
