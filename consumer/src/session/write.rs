//! What a fetch brings is written: records in batches of at most `WEBSENTRY_BATCH_MAX`, each with
//! the partition's next offset in one transaction (see `archive`), counted in the metrics and
//! logged; the last one also moves the offset past what the fetch read without a record
//! (transaction markers, aborted transactions). A fetch past the end of the log is told apart from
//! a topic created again.

use std::time::{Duration, Instant};

use websentry_shared::kafka::KafkaError;

use crate::{
    archive::Committed,
    batch::{Batch, Origin, Sorted},
    fetch::{Fetched, Records},
    session::{
        claims::refresh_topic,
        outcome::{on, Flow, Interrupted, Service},
        state::Session,
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
        Fetched::Records(fetched) => write(session, id, fetched).map(|()| Flow::CarryOn),
    }
}

/// Writes fetched records in batches of at most `batch_max`, each in its own transaction; the last
/// one (possibly without a record) stores the offset past everything fetched. Stops between batches
/// on shutdown: the rest is fetched again by the next run.
fn write(session: &mut Session<'_>, id: i32, fetched: Records<Sorted>) -> Result<(), Interrupted> {
    let Records { mut records, next_offset, high_watermark } = fetched;
    let (config, topic) = (session.config, session.topic().to_owned());
    let at = Origin { group: &config.group, topic: &topic, topic_id: session.topic_id, partition: id };
    if session.table.fetched(id, next_offset > session.offset(id)) {
        let p = session.table.get(id);
        tracing::warn!(partition = id, offset = ?p.map(|p| p.offset), target = ?p.and_then(|p| p.target), "nothing readable below the start watermark, leaving the partition");
    }
    while !records.is_empty() || session.offset(id) < next_offset {
        let rest = records.split_off(records.len().min(config.batch_max));
        let from = session.offset(id);
        let stored = session.table.get(id).and_then(|p| p.stored);
        let mut batch = Batch::from_sorted(from, std::mem::replace(&mut records, rest));
        if records.is_empty() {
            batch.next_offset = batch.next_offset.max(next_offset);
        }
        let started = Instant::now();
        let outcome = session.archiver.commit(at, stored.unwrap_or(-1), &batch).map_err(on(Service::Database))?;
        match outcome {
            Committed::Done { archived, rejected, past_retention } => {
                session.metrics.record_batch(archived, rejected, started.elapsed());
                if past_retention > 0 {
                    session.metrics.record_past_retention(past_retention);
                    tracing::warn!(
                        partition = id,
                        reports = past_retention,
                        "reports older than the retention, counted in the rollups only"
                    );
                }
                tracing::debug!(partition = id, archived, rejected, next_offset = batch.next_offset, "batch committed");
                if rejected > 0 {
                    tracing::warn!(partition = id, rejected, "records kept as rejected");
                }
                session.table.committed(id, batch.next_offset);
                session.metrics.set_committed(&topic, id, batch.next_offset);
            }
            Committed::Moved => {
                let stored = session.archiver.stored(at).map_err(on(Service::Database))?.map(|s| s.next_offset);
                tracing::warn!(partition = id, ?stored, "offset moved by another consumer, resuming from it");
                session.table.moved(id, stored);
                break;
            }
        }
        if session.shutdown.is_requested() {
            break;
        }
    }
    session.metrics.set_lag(&topic, id, high_watermark - session.offset(id));
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
