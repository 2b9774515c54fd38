//! One connection to each service, used until the work is done, shutdown is requested, the topic
//! changes or either service fails — the unit the supervisor starts again after a failure.
//!
//! - [`state`]: what a session holds; [`outcome`]: how it ends and how its steps say "go on".
//! - [`connect`]: the topic's metadata, a client per partition, joining the group.
//! - [`claims`]: which partitions this replica reads and from where; the topic watched for new
//!   partitions and a new identity.
//! - [`drain`] (one-off runs) and [`poll`] (daemons): the two ways to read; both hand what they
//!   fetch to [`write`], which commits batches with their offsets.
//!
//! The bookkeeping of partitions is plain data in `partitions`; these files do the I/O around it.
//! Every wait on Kafka ends on shutdown and has a deadline (`state::Session::kafka`): a broker that
//! is gone or hangs ends the session within seconds, and the supervisor says so once.

pub mod claims;
pub mod connect;
pub mod drain;
pub mod outcome;
pub mod poll;
pub mod state;
pub mod write;

pub use claims::Slot;
pub use connect::start;
pub use outcome::{Ended, Interrupted, Service};
pub use state::Session;

/// Archives until done (one-off: every claimed partition up to its start watermark), until
/// shutdown (daemon) or until the topic is created again.
///
/// # Errors
/// Either service failed; what was committed stays committed.
pub fn run_until_done(mut session: Session<'_>) -> Result<Ended, Interrupted> {
    let result = archive_until_done(&mut session);
    session.metrics.release_all();
    session.metrics.set_connected(false, false);
    session.metrics.session_ended();
    result
}

fn archive_until_done(session: &mut Session<'_>) -> Result<Ended, Interrupted> {
    claims::claim(session)?;
    let config = session.config;
    let slot = session.slot;
    tracing::info!(topic = session.topic(), topic_id = ?session.topic_id, partitions = session.table.len(), held = session.table.held(), group = %config.group, daemon = config.daemon, writer = slot.index + 1, writers = slot.writers, "archiving");
    let ended = match config.daemon {
        true => poll::poll_until_stopped(session)?,
        false => drain::drain_to_watermarks(session)?,
    };
    tracing::info!(shutdown = session.shutdown.is_requested(), ?ended, "archiving stopped");
    Ok(ended)
}
