//! One connection to each service, used until the work is done, shutdown is requested, the topic
//! changes or either service fails: claim partitions, fetch, write batches, commit offsets. The
//! bookkeeping lives in [`PartitionTable`]; this file does the I/O around it.
//!
//! Every wait on Kafka ends on shutdown and has a deadline ([`Session::kafka`]): a broker that is
//! gone or hangs ends the session within seconds, and the run loop says so once.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context};
use rskafka::record::RecordAndOffset;
use tokio::runtime::Runtime;
use uuid::Uuid;
use websentry_shared::{kafka::KafkaError, shutdown::Shutdown};

use crate::{
    archive::{Archiver, Committed},
    batch::{Batch, Origin},
    fetch::{Fetched, Source},
    lease,
    metadata::{MetadataClient, TopicMetadata},
    metrics::Metrics,
    partitions::PartitionTable,
    settings::Config,
};

/// How long a daemon's fetch waits at the broker for new records.
const LONG_POLL_MS: i32 = 500;
/// How often a daemon looks at the topic (new partitions, a new identity), for partitions nobody
/// holds (a replica died) and for its fair share.
const CLAIM_EVERY: Duration = Duration::from_millis(1500);
/// How often a daemon keeps the archive: day partitions ahead, retention (see `upkeep`).
const UPKEEP_EVERY: Duration = Duration::from_secs(3600);
/// The longest a Kafka request may take beyond its long poll before the broker counts as lost
/// (less when `WEBSENTRY_KAFKA_TIMEOUT` is shorter).
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Which service a session lost; the run loop logs once per change of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kafka,
    Database,
}

/// Why a session ended early.
#[derive(Debug)]
pub struct Interrupted {
    pub service: Service,
    pub error: anyhow::Error,
}

pub(crate) fn on(service: Service) -> impl FnOnce(anyhow::Error) -> Interrupted {
    move |error| Interrupted { service, error }
}

/// How a session that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// One-off: every claimed partition read to its start watermark; or shutdown was requested.
    Done,
    /// The topic was deleted and created again: start a new session, which reads it from its
    /// beginning.
    TopicChanged,
}

/// A fetch running on the runtime while the archiving thread writes.
struct Prefetch {
    id: i32,
    offset: i64,
    task: tokio::task::JoinHandle<Result<Fetched, KafkaError>>,
}

/// The state of a session: both connections, the topic and its partitions.
pub struct Session<'a> {
    config: &'a Config,
    /// Where the Kafka side runs; the database side blocks on this thread.
    runtime: &'a Runtime,
    /// Checked between batches and around every Kafka wait.
    shutdown: Shutdown,
    /// Shared with the HTTP endpoint.
    metrics: Arc<Metrics>,
    /// Asks the broker for the topic's id and partitions (a daemon: every 1.5 s).
    metadata: MetadataClient,
    /// The topic's id when the session started; another id means the topic was created again.
    topic_id: Option<Uuid>,
    /// The partition clients, shared with prefetch tasks.
    source: Arc<Source>,
    /// The database connection, which also holds the partition locks.
    archiver: Archiver,
    /// What this replica knows of each partition.
    table: PartitionTable,
    /// The longest one Kafka request is waited for before the broker counts as gone.
    request_deadline: Duration,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("topic_id", &self.topic_id).field("table", &self.table).finish_non_exhaustive()
    }
}

impl<'a> Session<'a> {
    /// Connects Kafka for an archiver that is already connected and migrated.
    ///
    /// # Errors
    /// Kafka unreachable past its timeout, the topic missing, or the group could not be joined.
    pub fn start(
        config: &'a Config,
        runtime: &'a Runtime,
        shutdown: &Shutdown,
        metrics: Arc<Metrics>,
        mut archiver: Archiver,
    ) -> Result<Self, Interrupted> {
        let kafka =
            config.kafka.as_ref().context("Kafka settings are needed to archive").map_err(on(Service::Kafka))?;
        let request_deadline = kafka.timeout.min(REQUEST_DEADLINE);
        let mut metadata = MetadataClient::new(kafka.clone());
        let topic = until_shutdown(runtime, shutdown, metadata.topic(&kafka.topic))
            .and_then(|found| found.map_err(anyhow::Error::from))
            .and_then(|found| found.ok_or_else(|| KafkaError::NoSuchTopic(kafka.topic.clone()).into()))
            .context("reading the topic's metadata")
            .map_err(on(Service::Kafka))?;
        if topic.id.is_none() {
            tracing::warn!(
                topic = kafka.topic,
                "the broker gives no topic id: a topic created again cannot be told apart"
            );
        }
        let connecting = async {
            let source = Source::connect(kafka, config.batch_bytes).await?;
            let readable = source.add(&topic.partitions).await?;
            Ok::<_, KafkaError>((source, readable))
        };
        let (source, readable) = until_shutdown(runtime, shutdown, connecting)
            .and_then(|source| source.map_err(anyhow::Error::from))
            .context("connecting to Kafka")
            .map_err(on(Service::Kafka))?;
        // A partition left out here would be skipped silently by a one-off run: all or retry.
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
        Ok(Self {
            config,
            runtime,
            shutdown: shutdown.clone(),
            metrics,
            metadata,
            topic_id: topic.id,
            source: Arc::new(source),
            archiver,
            table: PartitionTable::new(&readable),
            request_deadline,
        })
    }

    /// Archives until done (one-off: every claimed partition up to its start watermark), until
    /// shutdown (daemon) or until the topic is created again.
    ///
    /// # Errors
    /// Either service failed; what was committed stays committed.
    pub fn run_until_done(mut self) -> Result<Ended, Interrupted> {
        let result = self.archive_until_done();
        self.metrics.release_all();
        self.metrics.set_connected(false, false);
        result
    }

    fn archive_until_done(&mut self) -> Result<Ended, Interrupted> {
        self.claim()?;
        tracing::info!(topic = self.source.topic(), topic_id = ?self.topic_id, partitions = self.table.len(), held = self.table.held(), group = %self.config.group, daemon = self.config.daemon, "archiving");
        let ended = if self.config.daemon { self.poll_until_stopped()? } else { self.drain_to_watermarks()? };
        tracing::info!(shutdown = self.shutdown.is_requested(), ?ended, "archiving stopped");
        Ok(ended)
    }

    /// Runs a Kafka request on the runtime, ending it after `wait` plus the request deadline (the
    /// broker counts as lost) or on shutdown.
    fn kafka<T, E: std::error::Error + Send + Sync + 'static>(
        &self,
        wait: Duration,
        request: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Interrupted> {
        let limit = wait + self.request_deadline;
        let bounded = async move {
            tokio::time::timeout(limit, request)
                .await
                .map_err(|_| anyhow!("Kafka did not answer within {limit:?}"))?
                .map_err(anyhow::Error::from)
        };
        until_shutdown(self.runtime, &self.shutdown, bounded).and_then(|r| r).map_err(on(Service::Kafka))
    }

    /// Daemon: long-polls every held partition at once (sharing the byte bound between them) and
    /// looks at the topic and the claims every [`CLAIM_EVERY`].
    fn poll_until_stopped(&mut self) -> Result<Ended, Interrupted> {
        let mut next_claim = Instant::now() + CLAIM_EVERY;
        let mut next_upkeep = Instant::now() + UPKEEP_EVERY;
        while !self.shutdown.is_requested() {
            if Instant::now() >= next_upkeep {
                self.archiver.upkeep(&self.metrics);
                next_upkeep = Instant::now() + UPKEEP_EVERY;
            }
            if Instant::now() >= next_claim {
                if self.refresh_topic()? == Ended::TopicChanged {
                    return Ok(Ended::TopicChanged);
                }
                self.claim()?;
                next_claim = Instant::now() + CLAIM_EVERY;
            }
            let active = self.table.active();
            if active.is_empty() {
                let pause = next_claim.saturating_duration_since(Instant::now());
                if crate::wait_or_shutdown(self.runtime, &self.shutdown, pause) {
                    break;
                }
                continue;
            }
            let fetches = active.iter().map(|&id| {
                let offset = self.table.get(id).map_or(0, |p| p.offset);
                self.source.fetch(id, offset, LONG_POLL_MS, active.len())
            });
            let all = async { Ok::<_, KafkaError>(futures::future::join_all(fetches).await) };
            let fetched = self.kafka(Duration::from_millis(LONG_POLL_MS as u64), all)?;
            for (&id, result) in active.iter().zip(fetched) {
                if self.handle(id, result)? == Ended::TopicChanged {
                    return Ok(Ended::TopicChanged);
                }
                if self.shutdown.is_requested() {
                    break;
                }
            }
        }
        Ok(Ended::Done)
    }

    /// Looks at the topic as the broker knows it now: a new identity ends the session, new
    /// partitions join the table.
    fn refresh_topic(&mut self) -> Result<Ended, Interrupted> {
        let name = self.source.topic().to_owned();
        let found = {
            let metadata = &mut self.metadata;
            let request = async { metadata.topic(&name).await.map_err(anyhow::Error::from) };
            until_shutdown(self.runtime, &self.shutdown, request).and_then(|r| r).map_err(on(Service::Kafka))?
        };
        let Some(TopicMetadata { id, partitions }) = found else {
            return Err(on(Service::Kafka)(KafkaError::NoSuchTopic(name).into()));
        };
        if id.is_some() && self.topic_id.is_some() && id != self.topic_id {
            // The next session's claims log the change, once.
            tracing::debug!(topic = name, old = ?self.topic_id, new = ?id, "topic id changed, starting a new session");
            return Ok(Ended::TopicChanged);
        }
        let new: Vec<i32> = partitions.into_iter().filter(|&id| self.table.get(id).is_none()).collect();
        if !new.is_empty() {
            let readable = self.kafka(Duration::ZERO, self.source.add(&new))?;
            let added = self.table.add(&readable);
            if !added.is_empty() {
                tracing::info!(topic = name, partitions = ?added, "partitions added to the topic");
            }
        }
        Ok(Ended::Done)
    }

    /// One-off: reads the held partitions in turn, one fetch at a time (memory stays at about two
    /// fetches), the next fetch running on the runtime while this thread writes the current one.
    /// A prefetch whose partition has moved meanwhile (a shorter write, an offset moved by another
    /// consumer) is dropped and fetched again.
    fn drain_to_watermarks(&mut self) -> Result<Ended, Interrupted> {
        let mut cursor = 0;
        let mut pending: Option<Prefetch> = None;
        while !self.shutdown.is_requested() {
            let current = match pending.take() {
                Some(prefetch) => prefetch,
                None => match self.table.next_active(&mut cursor) {
                    Some(id) => self.prefetch(id, self.offset(id)),
                    None => break,
                },
            };
            let Prefetch { id, offset, task } = current;
            let abort = task.abort_handle();
            let result = self.kafka(Duration::ZERO, task).inspect_err(|_| abort.abort())?;
            if offset != self.offset(id) || !self.table.get(id).is_some_and(|p| p.active()) {
                continue;
            }
            let after = match &result {
                Ok(Fetched::Records(records, _)) => records.last().map_or(offset, |r| r.offset + 1),
                _ => offset,
            };
            if let Some(next) = self.table.next_active(&mut cursor) {
                pending = Some(self.prefetch(next, if next == id { after } else { self.offset(next) }));
            }
            if self.handle(id, result)? == Ended::TopicChanged {
                if let Some(prefetch) = pending.take() {
                    prefetch.task.abort();
                }
                return Ok(Ended::TopicChanged);
            }
        }
        if let Some(prefetch) = pending {
            prefetch.task.abort();
        }
        Ok(Ended::Done)
    }

    fn offset(&self, id: i32) -> i64 {
        self.table.get(id).map_or(0, |p| p.offset)
    }

    fn prefetch(&self, id: i32, offset: i64) -> Prefetch {
        let source = Arc::clone(&self.source);
        let task = self.runtime.spawn(async move { source.fetch(id, offset, 0, 1).await });
        Prefetch { id, offset, task }
    }

    fn handle(&mut self, id: i32, result: Result<Fetched, KafkaError>) -> Result<Ended, Interrupted> {
        match result.map_err(|err| on(Service::Kafka)(err.into()))? {
            // Past the end of the log is what a topic created again looks like from its old
            // offsets: make sure it is the same topic before skipping anything.
            Fetched::OutOfRange => match self.refresh_topic()? {
                Ended::TopicChanged => Ok(Ended::TopicChanged),
                Ended::Done => self.skip_to_earliest(id).map(|()| Ended::Done),
            },
            Fetched::Records(records, high_watermark) => self.write(id, records, high_watermark).map(|()| Ended::Done),
        }
    }

    /// Writes fetched records in batches of at most `batch_max`, each in its own transaction.
    /// Stops between batches on shutdown: the rest is fetched again by the next run.
    fn write(&mut self, id: i32, mut records: Vec<RecordAndOffset>, high_watermark: i64) -> Result<(), Interrupted> {
        let topic = self.source.topic().to_owned();
        let at = Origin { group: &self.config.group, topic: &topic, topic_id: self.topic_id, partition: id };
        if self.table.fetched(id, records.len()) {
            let p = self.table.get(id);
            tracing::warn!(partition = id, offset = ?p.map(|p| p.offset), target = ?p.and_then(|p| p.target), "nothing readable below the start watermark, leaving the partition");
        }
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(self.config.batch_max));
            let from = self.offset(id);
            let stored = self.table.get(id).and_then(|p| p.stored);
            let batch = Batch::from_records(at, from, std::mem::replace(&mut records, rest));
            let started = Instant::now();
            let outcome = self.archiver.commit(at, stored.unwrap_or(-1), &batch).map_err(on(Service::Database))?;
            match outcome {
                Committed::Done { archived, rejected, past_retention } => {
                    self.metrics.record_batch(archived, rejected, started.elapsed());
                    if past_retention > 0 {
                        self.metrics.record_past_retention(past_retention);
                        tracing::warn!(
                            partition = id,
                            reports = past_retention,
                            "reports older than the retention, counted in the rollups only"
                        );
                    }
                    tracing::debug!(
                        partition = id,
                        archived,
                        rejected,
                        next_offset = batch.next_offset,
                        "batch committed"
                    );
                    if rejected > 0 {
                        tracing::warn!(partition = id, rejected, "records kept as rejected");
                    }
                    self.table.committed(id, batch.next_offset);
                    self.metrics.set_committed(&topic, id, batch.next_offset);
                }
                Committed::Moved => {
                    let stored = self.archiver.stored(at).map_err(on(Service::Database))?.map(|s| s.next_offset);
                    tracing::warn!(partition = id, ?stored, "offset moved by another consumer, resuming from it");
                    self.table.moved(id, stored);
                    break;
                }
            }
            if self.shutdown.is_requested() {
                break;
            }
        }
        self.metrics.set_lag(&topic, id, high_watermark - self.offset(id));
        Ok(())
    }

    fn skip_to_earliest(&mut self, id: i32) -> Result<(), Interrupted> {
        let earliest = self.kafka(Duration::ZERO, self.source.earliest(id))?;
        tracing::warn!(
            partition = id,
            from = self.offset(id),
            to = earliest,
            "offset no longer in the log, skipping to the earliest kept record"
        );
        self.table.skip_to(id, earliest);
        Ok(())
    }

    /// Claims free partitions up to the fair share (a one-off run: every free one) and, in a
    /// daemon, releases what is over it, between batches so that nothing is in flight.
    fn claim(&mut self) -> Result<(), Interrupted> {
        let group = self.config.group.clone();
        let topic = self.source.topic().to_owned();
        let share = if self.config.daemon {
            let members = lease::members(self.archiver.client(), &group).map_err(on(Service::Database))?;
            lease::fair_share(self.table.len(), members)
        } else {
            self.table.len()
        };
        let plan = self.table.plan(share);
        for id in plan.release {
            lease::release(self.archiver.client(), &group, &topic, id).map_err(on(Service::Database))?;
            self.table.release(id);
            self.metrics.release(&topic, id);
            tracing::info!(partition = id, share, "partition released to another replica");
        }
        let (mut claimed, mut restarted) = (0, Vec::new());
        for id in plan.candidates {
            if claimed == plan.wanted {
                break;
            }
            if lease::try_claim(self.archiver.client(), &group, &topic, id).map_err(on(Service::Database))? {
                if self.open(id)? {
                    restarted.push(id);
                }
                claimed += 1;
            } else if !self.config.daemon {
                tracing::info!(partition = id, "partition held by another replica, left to it");
            }
        }
        if !restarted.is_empty() {
            tracing::warn!(topic, topic_id = ?self.topic_id, partitions = ?restarted, "topic was created again since its offsets were stored; reading it from its beginning");
        }
        Ok(())
    }

    /// Starts reading a newly claimed partition from its stored offset (another replica may have
    /// moved it while this one did not hold it), or from its beginning when it was never read or
    /// the offset was stored for a topic of the same name that was deleted since (then true).
    fn open(&mut self, id: i32) -> Result<bool, Interrupted> {
        let (config, topic) = (self.config, Arc::clone(&self.source));
        let at = Origin { group: &config.group, topic: topic.topic(), topic_id: self.topic_id, partition: id };
        let stored = self.archiver.stored(at).map_err(on(Service::Database))?;
        let recreated =
            stored.is_some_and(|s| s.topic_id.is_some() && self.topic_id.is_some() && s.topic_id != self.topic_id);
        let (offset, stored) = match stored {
            Some(s) if !recreated => (s.next_offset, Some(s.next_offset)),
            _ => {
                let earliest = self.kafka(Duration::ZERO, self.source.earliest(id))?;
                if let (true, Some(old)) = (recreated, stored) {
                    tracing::debug!(partition = id, old_topic_id = ?old.topic_id, stored_offset = old.next_offset, from = earliest, "offset of a deleted topic, restarting");
                    if !self.archiver.restart_at(at, old.next_offset, earliest).map_err(on(Service::Database))? {
                        return Err(on(Service::Database)(anyhow!(
                            "the offset of partition {id} moved while restarting it"
                        )));
                    }
                    (earliest, Some(earliest))
                } else {
                    (earliest, None)
                }
            }
        };
        let target = if self.config.daemon { None } else { Some(self.kafka(Duration::ZERO, self.source.latest(id))?) };
        self.table.open(id, offset, stored, target);
        self.metrics.hold(self.source.topic(), id, stored);
        tracing::info!(partition = id, offset, ?target, "partition claimed");
        Ok(recreated)
    }
}

/// Runs `future` on the runtime unless shutdown comes first.
///
/// # Errors
/// Shutdown was requested before it ended.
pub(crate) fn until_shutdown<T>(
    runtime: &Runtime,
    shutdown: &Shutdown,
    future: impl std::future::Future<Output = T>,
) -> anyhow::Result<T> {
    let mut shutdown = shutdown.clone();
    runtime.block_on(async {
        tokio::select! {
            () = shutdown.requested() => Err(anyhow!("stopped by shutdown")),
            value = future => Ok(value),
        }
    })
}
