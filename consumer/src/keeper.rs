//! The kept window answers (schema version 14, `upkeep::keep_windows`), summed off the archiving
//! connection. A daemon sums them on a thread of its own every [`EVERY`], each turn on a new
//! connection it closes after: the seconds a turn takes for thousands of sites (8 s for 10,000 in
//! the archive bench) would otherwise hold every batch up once an hour. The batches wait for it
//! only while it takes its snapshot. A one-off run sums them once on its own connection, after
//! the upkeep ([`turn`]).
//!
//! A turn that fails is logged and counted; `site_summary` reads the windows from the rollups
//! until one succeeds, so a database that is down costs speed, not answers.

use std::{sync::Arc, thread::JoinHandle, time::Duration};

use postgres::Client;
use tokio::runtime::Handle;
use websentry_shared::shutdown::Shutdown;

use crate::{database, metrics::Metrics, upkeep};

/// How often a daemon sums the kept window answers that are due: each hour's answers may be summed
/// from five minutes into the hour before (`upkeep::keep_windows`), so any turn interval well under
/// 55 minutes finds each hour's.
pub const EVERY: Duration = Duration::from_secs(300);
// Two turns fit in that span, so a failed turn is retried in time.
const _: () = assert!(EVERY.as_secs() * 2 <= 55 * 60);

/// Starts the daemon's thread: a turn at once (the schema is migrated before), then one every
/// [`EVERY`] until `shutdown`. Nothing is lost if the process exits mid-turn: the turn's sums are
/// one transaction.
///
/// # Errors
/// The thread could not be started.
pub fn spawn(
    settings: database::DatabaseSettings,
    runtime: Handle,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("kept-windows".into()).spawn(move || loop {
        match database::connect(&settings) {
            Ok(mut client) => turn(&mut client, &metrics),
            Err(err) => failed(&metrics, &err),
        }
        if stopped_within(&runtime, &shutdown, EVERY) {
            return;
        }
    })
}

/// Waits `pause` on the runtime's timer unless shutdown comes first; true if it did. As
/// `bridge::wait_or_shutdown`, from a thread that holds a handle to the runtime, not the runtime.
fn stopped_within(runtime: &Handle, shutdown: &Shutdown, pause: Duration) -> bool {
    let mut shutdown = shutdown.clone();
    runtime.block_on(async {
        tokio::select! {
            () = shutdown.requested() => true,
            () = tokio::time::sleep(pause) => false,
        }
    })
}

/// One turn at the kept window answers on `client`, logged and counted.
pub fn turn(client: &mut Client, metrics: &Metrics) {
    match upkeep::keep_windows(client) {
        Ok(windows) => {
            let count = |outcome: &str| windows.iter().filter(|window| window.outcome == outcome).count() as u64;
            let again = count("summed again");
            metrics.record_kept_windows(count("summed") + again, again, count("too large"), true);
            // One line for a turn that summed anything (the first turn sums every window and 13
            // months); each answer at debug, and each one too large to keep as a warning.
            let worked: Vec<_> =
                windows.iter().filter(|window| !matches!(window.outcome.as_str(), "kept" | "not yet")).collect();
            for window in &worked {
                tracing::debug!(
                    span = %window.span,
                    asked_before = %window.hi,
                    outcome = %window.outcome,
                    sums = window.sums,
                    took_ms = window.took_ms,
                    "kept window answer"
                );
                if window.outcome == "too large" {
                    tracing::warn!(span = %window.span, asked_before = %window.hi, "a kept window answer is too large to keep: that window is read from the rollups");
                }
            }
            if !worked.is_empty() {
                tracing::info!(
                    summed = count("summed"),
                    summed_again = again,
                    too_large = count("too large"),
                    months = worked.iter().filter(|window| window.span == "1 mon").count(),
                    took_ms = worked.iter().filter_map(|window| window.took_ms).sum::<f64>().round(),
                    "kept window answers summed"
                );
            }
        }
        Err(err) => failed(metrics, &err),
    }
}

/// A failed turn, logged and counted.
fn failed(metrics: &Metrics, err: &anyhow::Error) {
    metrics.record_kept_windows(0, 0, 0, false);
    let cause = websentry_shared::exit::one_line(err);
    tracing::warn!(cause = %cause, "summing the kept window answers failed: site_summary reads those windows from the rollups until a turn succeeds");
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use websentry_shared::shutdown::Shutdown;

    use super::*;

    #[test]
    fn the_wait_between_turns_ends_on_shutdown_not_at_its_end() {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().expect("runtime");
        let (trigger, shutdown) = Shutdown::manual();
        let handle = runtime.handle().clone();
        let started = Instant::now();
        let waiter = std::thread::spawn(move || stopped_within(&handle, &shutdown, Duration::from_secs(3600)));
        trigger.trigger();

        assert!(waiter.join().expect("the waiting thread"), "stopped by shutdown");
        assert!(started.elapsed() < Duration::from_secs(60), "it did not wait out the hour");
    }

    #[test]
    fn without_shutdown_the_wait_lasts_its_pause() {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().expect("runtime");
        let (_trigger, shutdown) = Shutdown::manual();

        assert!(!stopped_within(runtime.handle(), &shutdown, Duration::from_millis(20)));
    }
}
