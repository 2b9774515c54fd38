//! The supervisor: migrates the schema, then starts sessions until the work is done. A daemon that
//! loses Kafka or PostgreSQL backs off (0.5 s doubling up to 8 s) and starts a new session for as
//! long as it runs, logging once per change of state; a one-off run fails instead.
//!
//! What to do after a session is decided by [`Supervision`], plain data tested on its own; [`run`]
//! does the I/O around it (as mini-redis's `Listener` runs its `Handler`s).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::runtime::Runtime;
use websentry_shared::{exit::Fatal, shutdown::Shutdown};

use crate::{
    archive::Archiver,
    bridge::wait_or_shutdown,
    http, keeper,
    metrics::Metrics,
    schema,
    session::{
        self,
        outcome::{on, refused},
        Ended, Interrupted, Service, Session,
    },
    settings::Config,
};

/// First pause after a lost service; doubled after each failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between two attempts: a restarted service is used again within this time.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What the supervisor does after a session ended.
#[derive(Debug)]
enum Decision {
    /// The work is done, or shutdown was requested: exit 0.
    Stop,
    /// A one-off run lost a service, or a service refused what waiting does not change: exit 1
    /// with its error.
    Fail(anyhow::Error),
    /// The topic was created again: a new session reads it from its beginning, at once.
    StartAgain,
    /// A daemon lost `service`: pause, then a new session. `first` when this is a change of state
    /// (logged as an error once; repeats are logged at debug).
    Retry { service: Service, error: anyhow::Error, pause: Duration, first: bool },
}

/// The supervisor's memory between sessions: the backoff and which service is down.
#[derive(Debug)]
struct Supervision {
    daemon: bool,
    backoff: Duration,
    down: Option<Service>,
}

impl Supervision {
    fn new(daemon: bool) -> Self {
        Self { daemon, backoff: FIRST_BACKOFF, down: None }
    }

    /// Both services answered: the backoff starts over. Returns the service that was down, to
    /// say once that it is back.
    fn connected(&mut self) -> Option<Service> {
        self.backoff = FIRST_BACKOFF;
        self.down.take()
    }

    /// Decides what follows a session that ended with `outcome`; `stopping` when shutdown was
    /// requested.
    fn after(&mut self, outcome: Result<Ended, Interrupted>, stopping: bool) -> Decision {
        match outcome {
            Ok(Ended::Done) => Decision::Stop,
            Ok(Ended::TopicChanged) => Decision::StartAgain,
            Err(_) if stopping => Decision::Stop,
            Err(Interrupted { service, error, transient: true }) if self.daemon => {
                let first = self.down != Some(service);
                self.down = Some(service);
                let pause = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Decision::Retry { service, error, pause, first }
            }
            Err(Interrupted { error, .. }) => Decision::Fail(error),
        }
    }
}

/// Migrates the schema, then archives until done (one-off) or until `shutdown` (daemon), serving
/// the HTTP endpoint meanwhile when `WEBSENTRY_LISTEN` is set. A one-off run whose first session
/// finds several partitions writes with up to `WEBSENTRY_CONSUMER_WRITERS` connections at once
/// (see `session::Slot`), each on a thread of its own; it exits once all are done, with the first
/// writer's error if any failed. The writers share `metrics`, whose connection flags and held
/// partitions describe one session at a time: nothing reads them in a one-off run, which serves no
/// HTTP endpoint, and a daemon has one writer.
///
/// # Errors
/// A service unreachable (one-off), the HTTP address taken, or a schema this build cannot use.
pub fn run(config: &Config, runtime: &Runtime, shutdown: &Shutdown) -> Result<(), Fatal> {
    let metrics = Arc::new(Metrics::default());
    if let Some(address) = config.listen {
        serve_http(address, runtime, &metrics, shutdown)?;
    }
    std::thread::scope(|scope| {
        // The other writers' threads, or why one could not be started: the run then fails, its
        // partitions left to the next run.
        let mut others = Vec::new();
        // A daemon's kept window answers, summed on a thread and connection of their own once the
        // schema is migrated (see `keeper`); it stops on shutdown.
        let mut started = false;
        let first = supervise(config, runtime, shutdown, &metrics, None, |slot| {
            if std::mem::replace(&mut started, true) {
                return;
            }
            if config.daemon {
                start_keeper(config, runtime, shutdown, &metrics);
            }
            for slot in slot.others() {
                let metrics = &metrics;
                let writer = std::thread::Builder::new()
                    .name(format!("writer-{}", slot.index + 1))
                    .spawn_scoped(scope, move || supervise(config, runtime, shutdown, metrics, Some(slot), |_| {}))
                    .with_context(|| format!("starting writer {} of {}", slot.index + 1, slot.of));
                others.push((slot, writer));
            }
        });
        others.into_iter().fold(first, |result, (slot, writer)| {
            let ended = match writer {
                Ok(writer) => writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(error) => Err(Fatal::Runtime(error)),
            };
            match (result, ended) {
                // The run exits with the first writer's failure; each other one is said here.
                (Err(first), Err(Fatal::Runtime(also) | Fatal::Config(also))) => {
                    let cause = websentry_shared::exit::one_line(&also);
                    tracing::error!(writer = slot.index + 1, cause = %cause, "this writer failed too");
                    Err(first)
                }
                (result, ended) => result.and(ended),
            }
        })
    })
}

/// Starts sessions for one writer until the work is done: `slot` is `None` for the first writer,
/// which migrates and keeps the archive, and whose first session decides how many writers there
/// are; `started` is told that session's slot. After the topic was created again, a writer claims
/// any free partition of it ([`session::Slot::any_partition`]), still fetching its share of the
/// bytes: another writer may have ended already, and the partition locks keep each partition to
/// one writer.
fn supervise(
    config: &Config,
    runtime: &Runtime,
    shutdown: &Shutdown,
    metrics: &Arc<Metrics>,
    mut slot: Option<session::Slot>,
    mut started: impl FnMut(session::Slot),
) -> Result<(), Fatal> {
    let first = slot.is_none();
    let mut supervision = Supervision::new(config.daemon);
    loop {
        let outcome = connect(config, runtime, shutdown, metrics, first, slot).and_then(|session| {
            if let Some(service) = supervision.connected() {
                tracing::info!(?service, "connected again, archiving resumes");
            }
            match session {
                Some(session) => {
                    // Kept for the sessions after this one: the first writer, reconnected after an
                    // outage, keeps the share the other writers were started with (decided again
                    // from a grown topic, it would miss partitions none of them holds).
                    slot = Some(session.slot());
                    started(session.slot());
                    session::run_until_done(session)
                }
                None => Ok(Ended::Done),
            }
        });
        match supervision.after(outcome, shutdown.is_requested()) {
            Decision::Stop => return Ok(()),
            Decision::Fail(error) => return Err(Fatal::Runtime(error)),
            Decision::StartAgain => slot = Some(slot.map_or(session::Slot::ALONE, session::Slot::any_partition)),
            Decision::Retry { service, error, pause, first } => {
                metrics.record_interruption(service);
                metrics.set_connected(service != Service::Kafka, service != Service::Database);
                let cause = websentry_shared::exit::one_line(&error);
                if first {
                    tracing::error!(?service, cause = %cause, "service unavailable, retrying until it is back");
                } else {
                    tracing::debug!(?service, cause = %cause, retry_in_ms = pause.as_millis() as u64, "still unavailable");
                }
                if wait_or_shutdown(runtime, shutdown, pause) {
                    return Ok(());
                }
            }
        }
    }
}

/// Starts the daemon's kept-windows thread, which is left to run until shutdown (it is not joined:
/// a turn cut short by the process's exit commits nothing). A thread that cannot be started is
/// logged and counted as a failed turn: the windows are then read from the rollups.
fn start_keeper(config: &Config, runtime: &Runtime, shutdown: &Shutdown, metrics: &Arc<Metrics>) {
    let started =
        keeper::spawn(config.database.clone(), runtime.handle().clone(), shutdown.clone(), Arc::clone(metrics));
    if let Err(err) = started {
        metrics.record_kept_windows(0, 0, 0, false);
        tracing::error!(cause = %err, "starting the kept-windows thread failed: site_summary reads those windows from the rollups");
    }
}

/// Binds `address` and serves `/healthz`, `/readyz` and `/metrics` on the runtime until shutdown.
fn serve_http(
    address: std::net::SocketAddr,
    runtime: &Runtime,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
) -> Result<(), Fatal> {
    let _guard = runtime.enter();
    let listener = websentry_shared::listen::listen(address)
        .with_context(|| format!("listening on {address} (WEBSENTRY_LISTEN)"))
        .map_err(Fatal::Runtime)?;
    let local = listener.local_addr().map_err(|err| Fatal::Runtime(err.into()))?;
    runtime.spawn(http::serve_until_stopped(listener, Arc::clone(metrics), shutdown.clone()));
    tracing::info!(address = %local, "http endpoint listening");
    Ok(())
}

/// Connects the database and migrates it, then (unless `--migrate-only`) Kafka. The `first`
/// writer keeps the archive first; the others find it kept. `slot`: the writer's share of the
/// partitions, `None` until the first writer's first session decides it.
fn connect<'a>(
    config: &'a Config,
    runtime: &'a Runtime,
    shutdown: &Shutdown,
    metrics: &Arc<Metrics>,
    first: bool,
    slot: Option<session::Slot>,
) -> Result<Option<Session<'a>>, Interrupted> {
    let mut client = crate::database::connect(&config.database).map_err(on(Service::Database))?;
    let applied = schema::migrate(&mut client).map_err(|error| match error.is::<schema::Refused>() {
        true => refused(Service::Database)(error),
        false => on(Service::Database)(error),
    })?;
    tracing::info!(database = %config.database.address(), migrations_applied = applied, "database ready");
    let mut archiver = Archiver::new(client, config.retention);
    if first {
        archiver.upkeep(metrics);
    }
    if config.migrate_only {
        return Ok(None);
    }
    // A one-off run sums the kept window answers here, between its upkeep and its batches; a
    // daemon on its own thread (`keeper`), and `--migrate-only` not at all.
    if !config.daemon && first {
        archiver.keep_windows(metrics);
    }
    session::start(config, runtime, shutdown, Arc::clone(metrics), archiver, slot).map(Some)
}

#[cfg(test)]
mod tests {
    use anyhow::anyhow;

    use super::*;

    fn lost(service: Service) -> Result<Ended, Interrupted> {
        Err(on(service)(anyhow!("{service:?} is gone")))
    }

    fn pause_and_first(decision: Decision) -> (Duration, bool) {
        match decision {
            Decision::Retry { pause, first, .. } => (pause, first),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn a_one_off_run_fails_with_the_error_of_the_service_it_lost() {
        let mut supervision = Supervision::new(false);

        let decision = supervision.after(lost(Service::Kafka), false);

        assert!(matches!(decision, Decision::Fail(ref error) if error.to_string() == "Kafka is gone"), "{decision:?}");
    }

    #[test]
    fn a_daemon_backs_off_doubling_up_to_the_limit_and_starts_over_once_connected() {
        let mut supervision = Supervision::new(true);
        let pauses: Vec<Duration> =
            (0..7).map(|_| pause_and_first(supervision.after(lost(Service::Database), false)).0).collect();

        assert_eq!(pauses, [500, 1000, 2000, 4000, 8000, 8000, 8000].map(Duration::from_millis));
        assert_eq!(supervision.connected(), Some(Service::Database), "the service back is named once");
        assert_eq!(supervision.connected(), None);
        assert_eq!(pause_and_first(supervision.after(lost(Service::Database), false)).0, FIRST_BACKOFF);
    }

    #[test]
    fn a_daemon_logs_a_lost_service_once_per_change_of_state() {
        let mut supervision = Supervision::new(true);

        let firsts: Vec<bool> = [Service::Kafka, Service::Kafka, Service::Database, Service::Kafka]
            .into_iter()
            .map(|service| pause_and_first(supervision.after(lost(service), false)).1)
            .collect();

        assert_eq!(firsts, [true, false, true, true]);
    }

    #[test]
    fn a_refusal_that_waiting_does_not_change_stops_even_a_daemon() {
        let mut supervision = Supervision::new(true);

        let decision = supervision.after(Err(refused(Service::Database)(anyhow!("schema too new"))), false);

        assert!(matches!(decision, Decision::Fail(ref error) if error.to_string() == "schema too new"), "{decision:?}");
    }

    #[test]
    fn shutdown_stops_whatever_the_session_ended_with() {
        for daemon in [false, true] {
            let mut supervision = Supervision::new(daemon);
            assert!(matches!(supervision.after(lost(Service::Kafka), true), Decision::Stop), "daemon {daemon}");
        }
    }

    #[test]
    fn a_session_done_stops_and_a_topic_created_again_starts_a_new_one() {
        let mut supervision = Supervision::new(true);

        assert!(matches!(supervision.after(Ok(Ended::Done), false), Decision::Stop));
        assert!(matches!(supervision.after(Ok(Ended::TopicChanged), false), Decision::StartAgain));
    }
}
