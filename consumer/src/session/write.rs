//! What a fetch brings is written: records in batches (one COPY each), each with the partition's
//! next offset, in transactions of at most `WEBSENTRY_BATCH_MAX` records (see `archive::Span`),
//! counted in the metrics and logged; the last batch also moves the offset past what the fetch
//! read without a record (transaction markers, aborted transactions). A daemon writes what one
//! poll of its partitions brought together ([`write`]); a one-off run fills a transaction with
//! fetch after fetch as they come (see `drain`), with the same [`fill`] and [`commit`]. A fetch
//! past the end of the log is told apart from a topic created again.

use std::time::{Duration, Instant};

use websentry_shared::kafka::KafkaError;

use crate::{
    archive::{Archiver, Committed, Span, Totals},
    batch::{Batch, Sorted},
    fetch::{Fetched, Records},
    partitions::PartitionTable,
    session::{
        claims::refresh_topic,
        outcome::{on, Flow, Interrupted, Service},
        state::{Parts, Session},
    },
};

/// Writes what a fetch of partition `id` brought, decoded (see `batch::sort`).
///
/// # Errors
/// Either service failed; what was committed stays committed.
pub fn handle(
    session: &mut Session<'_>,
    id: i32,
    result: Result<Fetched<Sorted>, KafkaError>,
) -> Result<Flow, Interrupted> {
    match result.map_err(|err| on(Service::Kafka)(err.into()))? {
        // Past the end of the log is what a topic created again looks like from its old offsets:
        // make sure it is the same topic before skipping anything.
        Fetched::OutOfRange => match refresh_topic(session)? {
            Flow::TopicChanged => Ok(Flow::TopicChanged),
            Flow::CarryOn => skip_to_earliest(session, id).map(|()| Flow::CarryOn),
        },
        Fetched::Records(fetched) => {
            let (parts, archiver, table) = session.split();
            let fetch = Fetch::new(table, id, fetched);
            write(&parts, archiver, table, &mut [fetch]).map(|()| Flow::CarryOn)
        }
    }
}

/// Writes what `fetches` brought, together: fetch after fetch into one transaction, committed
/// when it holds `batch_max` records (or the rollups of [`SPAN_ROLLUP_ROWS`]) and at the end; the
/// last batch of each fetch (possibly without a record) stores the offset past everything it
/// fetched. Stops between batches on shutdown: the rest is fetched again by the next run.
///
/// # Errors
/// The database failed; what was committed stays committed.
pub(super) fn write(
    parts: &Parts<'_>,
    archiver: &mut Archiver,
    table: &mut PartitionTable,
    fetches: &mut [Fetch],
) -> Result<(), Interrupted> {
    let mut next = 0;
    loop {
        while fetches.get(next).is_some_and(|fetch| fetch.done(table)) {
            next += 1;
        }
        if next == fetches.len() {
            break;
        }
        let started = Instant::now();
        let mut span = archiver.begin().map_err(on(Service::Database))?;
        let mut written = Written::default();
        while let Some(fetch) = fetches.get_mut(next) {
            fill(parts, &mut span, table, fetch, &mut written)?;
            if !fetch.done(table) {
                break;
            }
            next += 1;
        }
        commit(parts, span, started, written)?;
        if parts.shutdown.is_requested() {
            break;
        }
    }
    fetches.iter().for_each(|fetch| fetch.lag(parts, table));
    Ok(())
}

/// A fetch being written: the records not added to a transaction yet.
pub(super) struct Fetch {
    id: i32,
    records: Vec<Sorted>,
    next_offset: i64,
    high_watermark: i64,
    /// Another consumer moved the partition's offset: the rest is not written.
    moved: bool,
}

impl Fetch {
    /// What a fetch of partition `id` brought; says so when a one-off run gives the partition up.
    pub(super) fn new(table: &mut PartitionTable, id: i32, fetched: Records<Sorted>) -> Self {
        let Records { records, next_offset, high_watermark } = fetched;
        if table.fetched(id, next_offset > table.offset(id)) {
            let p = table.get(id);
            tracing::warn!(partition = id, offset = ?p.map(|p| p.offset), target = ?p.and_then(|p| p.target), "nothing readable below the start watermark, leaving the partition");
        }
        Self { id, records, next_offset, high_watermark, moved: false }
    }

    /// Whether nothing of it is left to write: no record, and the offset past what came without
    /// one (transaction markers, aborted transactions) stored.
    pub(super) fn done(&self, table: &PartitionTable) -> bool {
        self.moved || (self.records.is_empty() && table.offset(self.id) >= self.next_offset)
    }

    /// Records the partition's lag once the fetch is written.
    pub(super) fn lag(&self, parts: &Parts<'_>, table: &PartitionTable) {
        parts.metrics.set_lag(parts.source.topic(), self.id, self.high_watermark - table.offset(self.id));
    }
}

/// A transaction merges at most this many rollup rows (~650 bytes each in memory): the bound on
/// what a one-off run's transaction across fetches holds besides the fetch it writes.
const SPAN_ROLLUP_ROWS: usize = 4096;

/// Whether `span` takes no further batch: it holds `batch_max` records, or the rollups of
/// [`SPAN_ROLLUP_ROWS`].
pub(super) fn full(parts: &Parts<'_>, span: &Span<'_>) -> bool {
    span.records() >= parts.config.batch_max || span.rollup_rows() >= SPAN_ROLLUP_ROWS
}

/// What a transaction wrote besides its totals, told once it commits.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// Each partition written and the offset it is stored at, in the order written.
    offsets: Vec<(i32, i64)>,
    past_retention: u64,
}

/// Adds `fetch`'s records to `span` in batches (one COPY each) until they are all in, the span
/// is full, or shutdown is requested. The last batch (possibly without a record) moves the offset
/// past everything fetched. A batch whose offset another consumer moved is not written: the
/// partition is read from where it was moved, and the rest of the fetch is dropped.
///
/// # Errors
/// The database failed; nothing of the span is kept.
pub(super) fn fill(
    parts: &Parts<'_>,
    span: &mut Span<'_>,
    table: &mut PartitionTable,
    fetch: &mut Fetch,
    written: &mut Written,
) -> Result<(), Interrupted> {
    let id = fetch.id;
    let at = parts.origin(id);
    while !fetch.done(table) && !full(parts, span) {
        let room = parts.config.batch_max - span.records();
        let rest = fetch.records.split_off(fetch.records.len().min(room));
        let from = table.offset(id);
        let stored = table.get(id).and_then(|p| p.stored);
        let mut batch = Batch::from_sorted(from, std::mem::replace(&mut fetch.records, rest));
        if fetch.records.is_empty() {
            batch.next_offset = batch.next_offset.max(fetch.next_offset);
        }
        match span.add(at, stored.unwrap_or(-1), &batch).map_err(on(Service::Database))? {
            Committed::Done { archived, rejected, past_retention } => {
                tracing::debug!(partition = id, archived, rejected, next_offset = batch.next_offset, "batch written");
                table.committed(id, batch.next_offset);
                written.offsets.push((id, batch.next_offset));
                written.past_retention += past_retention;
            }
            Committed::Moved => {
                let stored = span.stored(at).map_err(on(Service::Database))?.map(|s| s.next_offset);
                tracing::warn!(partition = id, ?stored, "offset moved by another consumer, resuming from it");
                table.moved(id, stored);
                fetch.moved = true;
            }
        }
        if parts.shutdown.is_requested() {
            break;
        }
    }
    Ok(())
}

/// Commits `span`, opened at `started`, and counts and logs what it wrote.
///
/// # Errors
/// The database failed; nothing of the span is kept.
pub(super) fn commit(parts: &Parts<'_>, span: Span<'_>, started: Instant, written: Written) -> Result<(), Interrupted> {
    let Totals { archived, rejected } = span.commit().map_err(on(Service::Database))?;
    if written.offsets.is_empty() {
        // Nothing was written: a transaction of the drain that found no records.
        return Ok(());
    }
    let metrics = parts.metrics;
    metrics.record_batch(archived, rejected, started.elapsed());
    let topic = parts.source.topic();
    for (id, next_offset) in &written.offsets {
        metrics.set_committed(topic, *id, *next_offset);
    }
    let partitions: Vec<i32> = written.offsets.iter().map(|(id, _)| *id).collect();
    tracing::debug!(?partitions, archived, rejected, "transaction committed");
    if written.past_retention > 0 {
        metrics.record_past_retention(written.past_retention);
        tracing::warn!(
            ?partitions,
            reports = written.past_retention,
            "reports older than the retention, counted in the rollups only"
        );
    }
    if rejected > 0 {
        tracing::warn!(?partitions, rejected, "records kept as rejected");
    }
    Ok(())
}

/// The offset is no longer in the log (retention removed it): read from the earliest record kept.
fn skip_to_earliest(session: &mut Session<'_>, id: i32) -> Result<(), Interrupted> {
    let earliest = session.kafka(Duration::ZERO, session.source.earliest(id))?;
    tracing::warn!(
        partition = id,
        from = session.offset(id),
        to = earliest,
        "offset no longer in the log, skipping to the earliest kept record"
    );
    session.table.skip_to(id, earliest);
    Ok(())
}
