//! The consumer: reads reports from Kafka and archives them into PostgreSQL, exactly once.
//!
//! - [`settings`]: flags and variables, checked into a [`settings::Config`].
//! - [`fetch`]: Kafka partitions read from offsets we choose (rskafka, async).
//! - [`batch`]: fetched records sorted into reports and rejected records; [`storable`]: what
//!   PostgreSQL can store, decided at decode time.
//! - [`archive`]: a batch, its rejected records and the next offset in one transaction (blocking).
//! - [`lease`]: partitions shared between replicas with advisory locks.
//! - [`metadata`]: a topic's id and partitions, asked of the broker directly (Metadata v12).
//! - [`session`]: one connection to each service, used until done or until either fails;
//!   [`partitions`]: its table of partitions (held, offsets, targets), plain data.
//! - [`metrics`] and [`http`]: what the daemon counts and its `/healthz`, `/readyz`, `/metrics`.
//! - [`database`]: connecting over rustls; [`schema`]: versioned migrations.
//! - [`document`]: a report stored once (typed columns, and what they do not rebuild);
//!   [`rollup`]: hourly and daily rollups written with each batch; [`upkeep`]: day partitions
//!   and retention.
//!
//! The blocking PostgreSQL client must not run on a Tokio worker thread, so [`run`] keeps the
//! database on the calling thread and enters the runtime only to talk to Kafka and to serve HTTP.

pub mod archive;
pub mod batch;
pub mod database;
pub mod document;
pub mod fetch;
pub mod http;
pub mod insert;
pub mod lease;
pub mod metadata;
pub mod metrics;
pub mod partitions;
pub mod rollup;
pub mod schema;
pub mod session;
pub mod settings;
pub mod storable;
pub mod upkeep;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::runtime::Runtime;
use websentry_shared::{exit::Fatal, shutdown::Shutdown};

use crate::{
    archive::Archiver,
    metrics::Metrics,
    session::{on, Ended, Interrupted, Service, Session},
    settings::Config,
};

/// First pause after a lost service; doubled after each failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between two attempts: a restarted service is used again within this time.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Migrates the schema, then archives until done (one-off) or until `shutdown` (daemon). A daemon
/// that loses Kafka or PostgreSQL backs off (0.5 s doubling up to 8 s) and reconnects for as long
/// as it runs, logging once per change of state; a one-off run fails instead.
///
/// # Errors
/// A service unreachable (one-off), the HTTP address taken, or a schema this build cannot use.
pub fn run(config: &Config, runtime: &Runtime, shutdown: &Shutdown) -> Result<(), Fatal> {
    let metrics = Arc::new(Metrics::default());
    if let Some(address) = config.listen {
        let listener = std::net::TcpListener::bind(address)
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .with_context(|| format!("listening on {address} (WEBSENTRY_LISTEN)"))
            .map_err(Fatal::Runtime)?;
        let local = listener.local_addr().map_err(|err| Fatal::Runtime(err.into()))?;
        let _guard = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|err| Fatal::Runtime(err.into()))?;
        runtime.spawn(http::serve_until_stopped(listener, Arc::clone(&metrics), shutdown.clone()));
        tracing::info!(address = %local, "http endpoint listening");
    }
    let mut backoff = FIRST_BACKOFF;
    let mut down: Option<Service> = None;
    loop {
        let outcome = connect(config, runtime, shutdown, &metrics).and_then(|session| {
            if let Some(service) = down.take() {
                tracing::info!(?service, "connected again, archiving resumes");
            }
            backoff = FIRST_BACKOFF;
            match session {
                Some(session) => session.run_until_done(),
                None => Ok(Ended::Done),
            }
        });
        match outcome {
            Ok(Ended::Done) => return Ok(()),
            // A new session reads the new topic from its beginning.
            Ok(Ended::TopicChanged) => continue,
            Err(_) if shutdown.is_requested() => return Ok(()),
            Err(Interrupted { service, error }) if config.daemon && !shutdown.is_requested() => {
                metrics.set_connected(service != Service::Kafka, service != Service::Database);
                let cause = websentry_shared::exit::one_line(&error);
                if down != Some(service) {
                    tracing::error!(?service, cause = %cause, "service unavailable, retrying until it is back");
                    down = Some(service);
                } else {
                    tracing::debug!(?service, cause = %cause, retry_in_ms = backoff.as_millis() as u64, "still unavailable");
                }
                if wait_or_shutdown(runtime, shutdown, backoff) {
                    return Ok(());
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(Interrupted { error, .. }) => return Err(Fatal::Runtime(error)),
        }
    }
}

/// Connects the database and migrates it, then (unless `--migrate-only`) Kafka.
fn connect<'a>(
    config: &'a Config,
    runtime: &'a Runtime,
    shutdown: &Shutdown,
    metrics: &Arc<Metrics>,
) -> Result<Option<Session<'a>>, Interrupted> {
    let mut client = config.database.connect().map_err(on(Service::Database))?;
    let applied = schema::migrate(&mut client).map_err(on(Service::Database))?;
    tracing::info!(database = %config.database.address(), migrations_applied = applied, "database ready");
    let mut archiver = Archiver::new(client, config.retention);
    archiver.upkeep(metrics);
    if config.migrate_only {
        return Ok(None);
    }
    Session::start(config, runtime, shutdown, Arc::clone(metrics), archiver).map(Some)
}

/// Sleeps for `pause` unless shutdown comes first; true if it did.
pub(crate) fn wait_or_shutdown(runtime: &Runtime, shutdown: &Shutdown, pause: Duration) -> bool {
    let mut shutdown = shutdown.clone();
    runtime.block_on(async {
        tokio::select! {
            () = shutdown.requested() => true,
            () = tokio::time::sleep(pause) => false,
        }
    })
}

/// A report as this build's producer writes it after a successful probe, for unit tests to change.
#[cfg(test)]
pub(crate) fn test_report() -> websentry_shared::report::Report {
    websentry_shared::report::Report {
        v: 1,
        id: uuid::Uuid::now_v7(),
        url: "https://example.com/".into(),
        code: 200,
        response_ms: 12.5,
        regexp_match: None,
        checked_at: time::macros::datetime!(2026-11-29 10:00:00.123456789 UTC),
        probe: "p".into(),
        error: None,
        timings_ms: Default::default(),
        http_version: Some("HTTP/1.1".into()),
        final_url: Some("https://example.com/".into()),
        redirects: 0,
        body_bytes: Some(10),
        tls_expires_at: None,
    }
}
