//! One connection to each service, used until the work is done, shutdown is requested or either
//! service fails: claim partitions, fetch, write batches, commit offsets.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use rskafka::record::RecordAndOffset;
use tokio::runtime::Runtime;
use websentry_shared::{kafka::KafkaError, shutdown::Shutdown};

use crate::{
    archive::{Archiver, Committed, Position},
    batch::{Batch, Origin},
    fetch::{Fetched, Source},
    lease,
    metrics::Metrics,
    settings::Config,
};

/// How long a daemon's fetch waits at the broker for new records.
const LONG_POLL_MS: i32 = 500;
/// How often a daemon looks for partitions nobody holds (a replica died) and for its fair share.
const CLAIM_EVERY: Duration = Duration::from_millis(1500);
/// Empty fetches in a row below the start watermark after which a one-off run stops waiting for a
/// partition (the gap is made of transaction markers or compacted records).
const EMPTY_FETCHES_BEFORE_GIVING_UP: u32 = 3;

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

/// Reading state of one partition of the topic.
#[derive(Debug)]
struct Partition {
    index: usize,
    id: i32,
    held: bool,
    /// The next offset to fetch.
    offset: i64,
    /// The offset stored in the database (`None` before the first commit).
    stored: Option<i64>,
    /// One-off runs stop at the high watermark seen when they claimed the partition.
    target: Option<i64>,
    empty_fetches: u32,
}

impl Partition {
    fn active(&self) -> bool {
        self.held
            && match self.target {
                Some(target) => self.offset < target && self.empty_fetches < EMPTY_FETCHES_BEFORE_GIVING_UP,
                None => true,
            }
    }
}

/// A fetch running on the runtime while the archiving thread writes.
struct Prefetch {
    index: usize,
    offset: i64,
    task: tokio::task::JoinHandle<Result<Fetched, KafkaError>>,
}

/// The state of a session: both connections and the partitions.
pub struct Session<'a> {
    config: &'a Config,
    runtime: &'a Runtime,
    metrics: Arc<Metrics>,
    source: Arc<Source>,
    archiver: Archiver,
    partitions: Vec<Partition>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("partitions", &self.partitions).finish_non_exhaustive()
    }
}

impl<'a> Session<'a> {
    /// Connects Kafka for an archiver that is already connected and migrated.
    ///
    /// # Errors
    /// Kafka unreachable past its timeout, or the group could not be joined.
    pub fn start(
        config: &'a Config,
        runtime: &'a Runtime,
        metrics: Arc<Metrics>,
        mut archiver: Archiver,
    ) -> Result<Self, Interrupted> {
        let kafka =
            config.kafka.as_ref().context("Kafka settings are needed to archive").map_err(on(Service::Kafka))?;
        let source = runtime
            .block_on(Source::connect(kafka, config.batch_bytes))
            .context("connecting to Kafka")
            .map_err(on(Service::Kafka))?;
        // Only daemons count as replicas: a one-off run must not be handed partitions it would not read.
        if config.daemon {
            lease::join(archiver.client(), &config.group).map_err(on(Service::Database))?;
        }
        let partitions = source
            .partition_ids()
            .into_iter()
            .enumerate()
            .map(|(index, id)| Partition {
                index,
                id,
                held: false,
                offset: 0,
                stored: None,
                target: None,
                empty_fetches: 0,
            })
            .collect();
        metrics.set_connected(true, true);
        Ok(Self { config, runtime, metrics, source: Arc::new(source), archiver, partitions })
    }

    /// Archives until done (one-off: every claimed partition up to its start watermark) or until
    /// shutdown (daemon).
    ///
    /// # Errors
    /// Either service failed; what was committed stays committed.
    pub fn run_until_done(mut self, shutdown: &Shutdown) -> Result<(), Interrupted> {
        let result = self.archive_until_done(shutdown);
        self.metrics.release_all();
        self.metrics.set_connected(false, false);
        result
    }

    fn archive_until_done(&mut self, shutdown: &Shutdown) -> Result<(), Interrupted> {
        self.claim()?;
        let held = self.partitions.iter().filter(|p| p.held).count();
        tracing::info!(topic = self.source.topic(), partitions = self.partitions.len(), held, group = %self.config.group, daemon = self.config.daemon, "archiving");
        if self.config.daemon {
            self.poll_until_stopped(shutdown)?;
        } else {
            self.drain_to_watermarks(shutdown)?;
        }
        tracing::info!(shutdown = shutdown.is_requested(), "archiving stopped");
        Ok(())
    }

    /// Daemon: long-polls every held partition at once (sharing the byte bound between them) and
    /// looks for partitions to claim or release every [`CLAIM_EVERY`].
    fn poll_until_stopped(&mut self, shutdown: &Shutdown) -> Result<(), Interrupted> {
        let mut next_claim = Instant::now() + CLAIM_EVERY;
        while !shutdown.is_requested() {
            if Instant::now() >= next_claim {
                self.claim()?;
                next_claim = Instant::now() + CLAIM_EVERY;
            }
            let active: Vec<usize> = self.partitions.iter().filter(|p| p.active()).map(|p| p.index).collect();
            if active.is_empty() {
                let pause = next_claim.saturating_duration_since(Instant::now());
                if crate::wait_or_shutdown(self.runtime, shutdown, pause) {
                    break;
                }
                continue;
            }
            let fetches =
                active.iter().map(|&i| self.source.fetch(i, self.partitions[i].offset, LONG_POLL_MS, active.len()));
            let fetched = self.runtime.block_on(futures::future::join_all(fetches));
            for (&i, result) in active.iter().zip(fetched) {
                self.handle(i, result, shutdown)?;
                if shutdown.is_requested() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// One-off: reads the held partitions in turn, one fetch at a time (memory stays at about two
    /// fetches), the next fetch running on the runtime while this thread writes the current one.
    /// A prefetch whose partition has moved meanwhile (a shorter write, an offset moved by another
    /// consumer) is dropped and fetched again.
    fn drain_to_watermarks(&mut self, shutdown: &Shutdown) -> Result<(), Interrupted> {
        let mut cursor = 0;
        let mut pending: Option<Prefetch> = None;
        while !shutdown.is_requested() {
            let current = match pending.take() {
                Some(prefetch) => prefetch,
                None => match self.next_active(&mut cursor) {
                    Some(i) => self.prefetch(i, self.partitions[i].offset),
                    None => break,
                },
            };
            let Prefetch { index: i, offset, task } = current;
            let result = self
                .runtime
                .block_on(task)
                .map_err(|err| on(Service::Kafka)(anyhow::Error::new(err).context("fetch task failed")))?;
            if offset != self.partitions[i].offset || !self.partitions[i].active() {
                continue;
            }
            let after = match &result {
                Ok(Fetched::Records(records, _)) => records.last().map_or(offset, |r| r.offset + 1),
                _ => offset,
            };
            if let Some(j) = self.next_active(&mut cursor) {
                pending = Some(self.prefetch(j, if j == i { after } else { self.partitions[j].offset }));
            }
            self.handle(i, result, shutdown)?;
        }
        if let Some(prefetch) = pending {
            prefetch.task.abort();
        }
        Ok(())
    }

    /// The next active partition after `cursor`, round-robin.
    fn next_active(&self, cursor: &mut usize) -> Option<usize> {
        let n = self.partitions.len();
        let found = (0..n).map(|k| (*cursor + k) % n).find(|&i| self.partitions[i].active())?;
        *cursor = (found + 1) % n;
        Some(found)
    }

    fn prefetch(&self, index: usize, offset: i64) -> Prefetch {
        let source = Arc::clone(&self.source);
        let task = self.runtime.spawn(async move { source.fetch(index, offset, 0, 1).await });
        Prefetch { index, offset, task }
    }

    fn handle(
        &mut self,
        i: usize,
        result: Result<Fetched, KafkaError>,
        shutdown: &Shutdown,
    ) -> Result<(), Interrupted> {
        match result.map_err(|err| on(Service::Kafka)(err.into()))? {
            Fetched::OutOfRange => self.skip_to_earliest(i),
            Fetched::Records(records, high_watermark) => self.write(i, records, high_watermark, shutdown),
        }
    }

    /// Writes fetched records in batches of at most `batch_max`, each in its own transaction.
    /// Stops between batches on shutdown: the rest is fetched again by the next run.
    fn write(
        &mut self,
        i: usize,
        mut records: Vec<RecordAndOffset>,
        high_watermark: i64,
        shutdown: &Shutdown,
    ) -> Result<(), Interrupted> {
        let topic = self.source.topic().to_owned();
        let at = Position { group: &self.config.group, topic: &topic, partition: self.partitions[i].id };
        let origin = Origin { topic: &topic, partition: at.partition };
        self.partitions[i].empty_fetches = if records.is_empty() { self.partitions[i].empty_fetches + 1 } else { 0 };
        let partition = &self.partitions[i];
        if partition.empty_fetches == EMPTY_FETCHES_BEFORE_GIVING_UP && partition.target.is_some() {
            tracing::warn!(partition = partition.id, offset = partition.offset, target = ?partition.target, "nothing readable below the start watermark, leaving the partition");
        }
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(self.config.batch_max));
            let batch = Batch::from_records(origin, self.partitions[i].offset, std::mem::replace(&mut records, rest));
            let partition = &mut self.partitions[i];
            let started = Instant::now();
            let outcome =
                self.archiver.commit(at, partition.stored.unwrap_or(-1), &batch).map_err(on(Service::Database))?;
            match outcome {
                Committed::Done { archived, rejected } => {
                    self.metrics.record_batch(archived, rejected, started.elapsed());
                    tracing::debug!(
                        partition = at.partition,
                        archived,
                        rejected,
                        next_offset = batch.next_offset,
                        "batch committed"
                    );
                    if rejected > 0 {
                        tracing::warn!(partition = at.partition, rejected, "records kept as rejected");
                    }
                    partition.stored = Some(batch.next_offset);
                    partition.offset = batch.next_offset;
                    self.metrics.set_committed(&topic, at.partition, batch.next_offset);
                }
                Committed::Moved => {
                    let stored = self.archiver.next_offset(at).map_err(on(Service::Database))?;
                    tracing::warn!(
                        partition = at.partition,
                        ?stored,
                        "offset moved by another consumer, resuming from it"
                    );
                    partition.stored = stored;
                    partition.offset = stored.unwrap_or(partition.offset);
                    break;
                }
            }
            if shutdown.is_requested() {
                break;
            }
        }
        self.metrics.set_lag(&topic, at.partition, high_watermark - self.partitions[i].offset);
        Ok(())
    }

    fn skip_to_earliest(&mut self, i: usize) -> Result<(), Interrupted> {
        let earliest = self.runtime.block_on(self.source.earliest(i)).map_err(|err| on(Service::Kafka)(err.into()))?;
        let partition = &mut self.partitions[i];
        tracing::warn!(
            partition = partition.id,
            from = partition.offset,
            to = earliest,
            "offset no longer in the log, skipping to the earliest kept record"
        );
        partition.offset = earliest;
        Ok(())
    }

    /// Claims free partitions up to the fair share (a one-off run: every free one) and, in a
    /// daemon, releases what is over it, between batches so that nothing is in flight.
    fn claim(&mut self) -> Result<(), Interrupted> {
        let group = self.config.group.clone();
        let topic = self.source.topic().to_owned();
        let share = if self.config.daemon {
            let members = lease::members(self.archiver.client(), &group).map_err(on(Service::Database))?;
            lease::fair_share(self.partitions.len(), members)
        } else {
            self.partitions.len()
        };
        let mut held = self.partitions.iter().filter(|p| p.held).count();
        for i in 0..self.partitions.len() {
            let id = self.partitions[i].id;
            if self.partitions[i].held && held > share {
                lease::release(self.archiver.client(), &group, &topic, id).map_err(on(Service::Database))?;
                self.partitions[i].held = false;
                self.metrics.release(&topic, id);
                held -= 1;
                tracing::info!(partition = id, share, "partition released to another replica");
            } else if !self.partitions[i].held && held < share {
                if lease::try_claim(self.archiver.client(), &group, &topic, id).map_err(on(Service::Database))? {
                    self.open(i)?;
                    held += 1;
                } else if !self.config.daemon {
                    tracing::info!(partition = id, "partition held by another replica, left to it");
                }
            }
        }
        Ok(())
    }

    /// Starts reading a newly claimed partition from its stored offset (another replica may have
    /// moved it while this one did not hold it).
    fn open(&mut self, i: usize) -> Result<(), Interrupted> {
        let at = Position { group: &self.config.group, topic: self.source.topic(), partition: self.partitions[i].id };
        let stored = self.archiver.next_offset(at).map_err(on(Service::Database))?;
        let kafka = |err: websentry_shared::kafka::KafkaError| on(Service::Kafka)(err.into());
        let offset = match stored {
            Some(offset) => offset,
            None => self.runtime.block_on(self.source.earliest(i)).map_err(kafka)?,
        };
        let target =
            if self.config.daemon { None } else { Some(self.runtime.block_on(self.source.latest(i)).map_err(kafka)?) };
        let partition = &mut self.partitions[i];
        *partition = Partition { held: true, offset, stored, target, empty_fetches: 0, ..*partition };
        self.metrics.hold(self.source.topic(), partition.id, stored);
        tracing::info!(partition = partition.id, offset, ?target, "partition claimed");
        Ok(())
    }
}
