//! Starting a session: the topic's metadata, a client for each partition, and (for a daemon)
//! joining the group of replicas. All partitions or none: a partition left out here would be
//! skipped silently by a one-off run.

use std::{sync::Arc, time::Duration};

use anyhow::{anyhow, Context};
use tokio::runtime::Runtime;
use websentry_shared::{kafka::KafkaError, shutdown::Shutdown};

use crate::{
    archive::Archiver,
    bridge::until_shutdown,
    fetch::Source,
    lease,
    metadata::MetadataClient,
    metrics::Metrics,
    partitions::PartitionTable,
    session::{
        claims::Slot,
        outcome::{on, Interrupted, Service},
        state::Session,
    },
    settings::Config,
};

/// The longest a Kafka request may take beyond its long poll before the broker counts as lost
/// (less when `WEBSENTRY_KAFKA_TIMEOUT` is shorter).
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Connects Kafka for an archiver that is already connected and migrated. `slot` is the writer's
/// share of the partitions; `None` for the first (or only) writer, whose share follows from
/// `WEBSENTRY_CONSUMER_WRITERS` and the partitions found (a daemon: all of them).
///
/// # Errors
/// Kafka unreachable past its timeout, the topic missing, a partition without a known leader, or
/// the group could not be joined.
pub fn start<'a>(
    config: &'a Config,
    runtime: &'a Runtime,
    shutdown: &Shutdown,
    metrics: Arc<Metrics>,
    mut archiver: Archiver,
    slot: Option<Slot>,
) -> Result<Session<'a>, Interrupted> {
    let kafka = config.kafka.as_ref().context("Kafka settings are needed to archive").map_err(on(Service::Kafka))?;
    let request_deadline = kafka.timeout.min(REQUEST_DEADLINE);
    let mut metadata = MetadataClient::new(kafka.clone());
    let topic = until_shutdown(runtime, shutdown, metadata.topic(&kafka.topic))
        .and_then(|found| found.map_err(anyhow::Error::from))
        .and_then(|found| found.ok_or_else(|| KafkaError::NoSuchTopic(kafka.topic.clone()).into()))
        .context("reading the topic's metadata")
        .map_err(on(Service::Kafka))?;
    if topic.id.is_none() {
        tracing::warn!(topic = kafka.topic, "the broker gives no topic id: a topic created again cannot be told apart");
    }
    let slot = match (slot, config.daemon) {
        (Some(slot), _) => slot,
        (None, true) => Slot::ALONE,
        (None, false) => Slot::first(config.writers, topic.partitions.len()),
    };
    // The writers share WEBSENTRY_BATCH_BYTES, the bound on what fetches hold, as a daemon's
    // partitions do: each fetches its share at once.
    let fetch_bytes = slot.share_of(config.batch_bytes);
    let connecting = async {
        let source = Source::connect(kafka, fetch_bytes).await?;
        let readable = source.add(&topic.partitions).await?;
        Ok::<_, KafkaError>((source, readable))
    };
    let (source, readable) = until_shutdown(runtime, shutdown, connecting)
        .and_then(|source| source.map_err(anyhow::Error::from))
        .context("connecting to Kafka")
        .map_err(on(Service::Kafka))?;
    let unreadable: Vec<i32> = topic.partitions.iter().copied().filter(|id| !readable.contains(id)).collect();
    if !unreadable.is_empty() {
        let error = anyhow!("no leader known for partitions {unreadable:?} of topic '{}'", kafka.topic);
        return Err(on(Service::Kafka)(error));
    }
    // Only daemons count as replicas: a one-off run must not be handed partitions it would not read.
    if config.daemon {
        lease::join(archiver.client(), &config.group).map_err(on(Service::Database))?;
    }
    metrics.set_connected(true, true);
    metrics.session_turned();
    Ok(Session {
        config,
        runtime,
        shutdown: shutdown.clone(),
        metrics,
        metadata,
        topic_id: topic.id,
        source: Arc::new(source),
        archiver,
        table: PartitionTable::new(&readable),
        slot,
        request_deadline,
    })
}
