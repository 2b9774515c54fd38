//! The consumer: reads reports from Kafka and archives them into PostgreSQL, exactly once.
//!
//! - [`settings`]: flags and variables, checked into a [`settings::Config`].
//! - [`fetch`]: Kafka partitions read from offsets we choose (rskafka, async).
//! - [`batch`]: fetched records sorted into reports and rejected records.
//! - [`archive`]: a batch, its rejected records and the next offset in one transaction (blocking).
//! - [`database`]: connecting over rustls; [`schema`]: versioned migrations.
//!
//! The blocking PostgreSQL client must not run on a Tokio worker thread, so [`run`] keeps the
//! database on the calling thread and enters the runtime only to talk to Kafka.

pub mod archive;
pub mod batch;
pub mod database;
pub mod fetch;
pub mod schema;
pub mod settings;

use std::time::Duration;

use anyhow::Context;
use tokio::runtime::Runtime;
use websentry_shared::{exit::Fatal, kafka::KafkaSettings, shutdown::Shutdown};

use crate::{
    archive::{Archiver, Committed, Position},
    batch::Batch,
    fetch::{Fetched, Source},
    settings::Config,
};

/// How long a daemon's fetch waits at the broker for new records.
const LONG_POLL_MS: i32 = 500;
/// Empty fetches in a row below the start watermark after which a one-off run stops waiting for a
/// partition (the gap is made of transaction markers or compacted records).
const EMPTY_FETCHES_BEFORE_GIVING_UP: u32 = 3;

/// Migrates the schema, then archives until done (one-off) or until `shutdown` (daemon). A daemon
/// that loses Kafka or PostgreSQL backs off and reconnects; a one-off run fails instead.
///
/// # Errors
/// A service unreachable (one-off) or a schema this build cannot use.
pub fn run(config: &Config, runtime: &Runtime, shutdown: &Shutdown) -> Result<(), Fatal> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match session(config, runtime, shutdown) {
            Ok(()) => return Ok(()),
            Err(err) if config.daemon && !shutdown.is_requested() => {
                tracing::error!(cause = %websentry_shared::exit::one_line(&err), retry_in_s = backoff.as_secs(), "archiving interrupted");
                if wait_or_shutdown(runtime, shutdown, backoff) {
                    return Ok(());
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(err) => return Err(Fatal::Runtime(err)),
        }
    }
}

/// One connection to each service, used until done or until either fails.
fn session(config: &Config, runtime: &Runtime, shutdown: &Shutdown) -> anyhow::Result<()> {
    let mut client = config.database.connect()?;
    let applied = schema::migrate(&mut client)?;
    tracing::info!(database = %config.database.address(), migrations_applied = applied, "database ready");
    if config.migrate_only {
        return Ok(());
    }
    let kafka: &KafkaSettings = config.kafka.as_ref().context("Kafka settings are needed to archive")?;
    let source = runtime.block_on(Source::connect(kafka)).context("connecting to Kafka")?;
    let mut archiver = Archiver::new(client);
    let mut partitions = open_partitions(&source, &mut archiver, &config.group, runtime, config.daemon)?;
    tracing::info!(topic = source.topic(), partitions = partitions.len(), group = %config.group, daemon = config.daemon, "archiving");
    let wait = if config.daemon { LONG_POLL_MS } else { 0 };
    while !shutdown.is_requested() {
        let active: Vec<usize> = (0..partitions.len()).filter(|&i| !partitions[i].drained()).collect();
        if active.is_empty() {
            break;
        }
        let fetches = active.iter().map(|&i| source.fetch(i, partitions[i].offset, wait));
        let fetched = runtime.block_on(futures::future::join_all(fetches));
        for (&i, result) in active.iter().zip(fetched) {
            let partition = &mut partitions[i];
            let at = Position { group: &config.group, topic: source.topic(), partition: partition.id };
            match result? {
                Fetched::OutOfRange => {
                    let earliest = runtime.block_on(source.earliest(i))?;
                    tracing::warn!(
                        partition = partition.id,
                        from = partition.offset,
                        to = earliest,
                        "offset no longer in the log, skipping to the earliest kept record"
                    );
                    partition.offset = earliest;
                }
                Fetched::Records(records, _high_watermark) => {
                    let batch = Batch::from_records(partition.offset, records);
                    partition.record_fetch(batch.is_empty());
                    if batch.is_empty() {
                        continue;
                    }
                    let outcome = archiver.commit(at, partition.stored.unwrap_or(-1), &batch)?;
                    match outcome {
                        Committed::Done { archived, rejected } => {
                            tracing::debug!(
                                partition = partition.id,
                                archived,
                                rejected,
                                next_offset = batch.next_offset,
                                "batch committed"
                            );
                            if rejected > 0 {
                                tracing::warn!(partition = partition.id, rejected, "records kept as rejected");
                            }
                            partition.stored = Some(batch.next_offset);
                            partition.offset = batch.next_offset;
                        }
                        Committed::Moved => {
                            let stored = archiver.next_offset(at)?;
                            tracing::warn!(
                                partition = partition.id,
                                stored,
                                "offset moved by another consumer, resuming from it"
                            );
                            partition.stored = stored;
                            partition.offset = stored.unwrap_or(partition.offset);
                        }
                    }
                }
            }
        }
    }
    tracing::info!(shutdown = shutdown.is_requested(), "archiving stopped");
    Ok(())
}

/// Reading state of one partition.
#[derive(Debug)]
struct Partition {
    id: i32,
    /// The next offset to fetch.
    offset: i64,
    /// The offset stored in the database (`None` before the first commit).
    stored: Option<i64>,
    /// One-off runs stop at the high watermark seen at start.
    target: Option<i64>,
    empty_fetches: u32,
}

impl Partition {
    fn drained(&self) -> bool {
        match self.target {
            Some(target) => self.offset >= target || self.empty_fetches >= EMPTY_FETCHES_BEFORE_GIVING_UP,
            None => false,
        }
    }

    fn record_fetch(&mut self, empty: bool) {
        self.empty_fetches = if empty { self.empty_fetches + 1 } else { 0 };
    }
}

fn open_partitions(
    source: &Source,
    archiver: &mut Archiver,
    group: &str,
    runtime: &Runtime,
    daemon: bool,
) -> anyhow::Result<Vec<Partition>> {
    let mut partitions = Vec::new();
    for (index, id) in source.partition_ids().into_iter().enumerate() {
        let stored = archiver.next_offset(Position { group, topic: source.topic(), partition: id })?;
        let offset = match stored {
            Some(offset) => offset,
            None => runtime.block_on(source.earliest(index))?,
        };
        let target = if daemon { None } else { Some(runtime.block_on(source.latest(index))?) };
        tracing::debug!(partition = id, offset, ?target, "partition opened");
        partitions.push(Partition { id, offset, stored, target, empty_fetches: 0 });
    }
    Ok(partitions)
}

/// Sleeps for `pause` unless shutdown comes first; true if it did.
fn wait_or_shutdown(runtime: &Runtime, shutdown: &Shutdown, pause: Duration) -> bool {
    let mut shutdown = shutdown.clone();
    runtime.block_on(async {
        tokio::select! {
            () = shutdown.requested() => true,
            () = tokio::time::sleep(pause) => false,
        }
    })
}
