//! Publishing reports: one record per report, keyed by URL, partitioned like the Java client.

use std::collections::BTreeMap;

use rskafka::{
    chrono::{DateTime, Utc},
    client::{
        partition::{Compression, PartitionClient, UnknownTopicHandling},
        Client,
    },
    record::Record,
};
use websentry_shared::{
    kafka::{partition_for_key, KafkaError, KafkaSettings},
    report::Report,
};

/// A connection to the topic's partitions.
#[derive(Debug)]
pub struct Publisher {
    topic: String,
    partitions: Vec<PartitionClient>,
    _client: Client,
}

/// How a publishing round went: reports are never silently lost, they are counted here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub acknowledged: usize,
    pub failed: usize,
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
        Ok(Self { topic: settings.topic.clone(), partitions, _client: client })
    }

    /// Publishes the reports, one batch per partition, the partitions in parallel. rskafka retries
    /// retriable errors with backoff until the settings' timeout.
    pub async fn publish(&self, reports: &[Report]) -> Delivery {
        let count = i32::try_from(self.partitions.len()).expect("partition count fits an i32");
        let mut batches: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        for report in reports {
            let key = report.url.as_bytes();
            batches.entry(partition_for_key(key, count)).or_default().push(record(report));
        }
        let sends = batches.into_iter().map(|(partition, records)| async move {
            let n = records.len();
            let client = &self.partitions[partition as usize];
            match client.produce(records, Compression::NoCompression).await {
                Ok(_) => Delivery { acknowledged: n, failed: 0 },
                Err(err) => {
                    tracing::error!(topic = %self.topic, partition, reports = n, cause = %err, "publishing failed");
                    Delivery { acknowledged: 0, failed: n }
                }
            }
        });
        let results = futures::future::join_all(sends).await;
        results.into_iter().fold(Delivery::default(), |sum, d| Delivery {
            acknowledged: sum.acknowledged + d.acknowledged,
            failed: sum.failed + d.failed,
        })
    }
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
