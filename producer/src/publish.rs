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

    /// Publishes the reports, one batch per partition, the partitions in parallel; rskafka retries
    /// retriable errors with backoff until the settings' timeout. Returns the reports that were
    /// not acknowledged, in their original order, so the caller can keep them.
    pub async fn publish(&self, reports: Vec<Report>) -> Vec<Report> {
        let count = i32::try_from(self.partitions.len()).expect("partition count fits an i32");
        let mut batches: BTreeMap<i32, Vec<Report>> = BTreeMap::new();
        for report in reports {
            batches.entry(partition_for_key(report.url.as_bytes(), count)).or_default().push(report);
        }
        let sends = batches.into_iter().map(|(partition, reports)| async move {
            let records = reports.iter().map(record).collect();
            let client = &self.partitions[partition as usize];
            match client.produce(records, Compression::NoCompression).await {
                Ok(_) => Vec::new(),
                Err(err) => {
                    tracing::error!(topic = %self.topic, partition, reports = reports.len(), cause = %err, "publishing failed");
                    reports
                }
            }
        });
        let mut unpublished: Vec<Report> = futures::future::join_all(sends).await.into_iter().flatten().collect();
        unpublished.sort_by_key(|r| r.id);
        unpublished
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
