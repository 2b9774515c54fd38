//! The producer: probes sites and publishes one report per probe.
//!
//! - [`settings`]: flags and variables, checked into a [`settings::Config`].
//! - [`site`]: a URL worth probing and its own settings; [`sites_file`]: those settings in TOML.
//! - [`matcher`]: the body pattern. [`certificate`]: a leaf certificate's expiry.
//! - [`probe`]: one probe of one site, never an `Err`: a down site is data.
//! - [`publish`]: reports to Kafka, keyed by URL, partitioned like the Java client.
//!
//! `probe` and `publish` do not know each other; [`run`] wires them.

pub mod certificate;
pub mod matcher;
pub mod probe;
pub mod publish;
pub mod settings;
pub mod site;
pub mod sites_file;

use std::{io::Write, sync::Arc};

use anyhow::{anyhow, Context};
use tokio::{sync::Semaphore, task::JoinSet, time::MissedTickBehavior};
use websentry_shared::{exit::Fatal, report::Report, shutdown::Shutdown};

use crate::{
    probe::Prober,
    publish::Publisher,
    settings::{Config, Output},
    site::Site,
};

/// Reports kept for the next round at most when Kafka does not acknowledge them; beyond it the
/// oldest are dropped, loudly.
pub const MAX_BACKLOG: usize = 100_000;

/// Runs one round (no interval) or rounds at a fixed rate until `shutdown` is requested; a round in
/// flight when it is requested is finished and published first. A daemon keeps the reports Kafka
/// did not acknowledge and sends them again with the next round.
///
/// # Errors
/// Kafka unreachable at start, or any report still not acknowledged when the run ends.
pub async fn run(config: Config, mut shutdown: Shutdown) -> Result<(), Fatal> {
    let prober = Arc::new(Prober::new(config.roots, config.probe));
    let sites: Arc<[Site]> = config.sites.into();
    let publisher = match &config.output {
        Output::Kafka(kafka) => {
            Some(Publisher::connect(kafka).await.context("connecting to Kafka").map_err(Fatal::Runtime)?)
        }
        Output::Stdout => None,
    };
    let mut backlog = Vec::new();
    if let Some(interval) = config.interval {
        tracing::info!(sites = sites.len(), interval_s = interval.as_secs(), "probing at a fixed rate");
        let mut ticks = tokio::time::interval(interval);
        // A round longer than the interval delays the next one; rounds never overlap.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                () = shutdown.requested() => break,
                _ = ticks.tick() => {}
            }
            let mut reports = std::mem::take(&mut backlog);
            reports.extend(round(&prober, &sites, config.concurrency).await);
            backlog = deliver(publisher.as_ref(), reports).await;
            if backlog.len() > MAX_BACKLOG {
                let dropped = backlog.len() - MAX_BACKLOG;
                tracing::error!(dropped, kept = MAX_BACKLOG, "backlog full, dropping the oldest unpublished reports");
                backlog.drain(..dropped);
            }
            if shutdown.is_requested() {
                break;
            }
        }
    } else {
        let reports = round(&prober, &sites, config.concurrency).await;
        backlog = deliver(publisher.as_ref(), reports).await;
    }
    if !backlog.is_empty() {
        return Err(Fatal::Runtime(anyhow!("{} reports were not acknowledged by Kafka", backlog.len())));
    }
    tracing::info!("stopped");
    Ok(())
}

/// Probes every site once, at most `concurrency` at a time. A probe task is spawned only when a
/// permit is free, so memory follows the concurrency, not the number of sites.
pub async fn round(prober: &Arc<Prober>, sites: &Arc<[Site]>, concurrency: usize) -> Vec<Report> {
    tracing::info!(sites = sites.len(), "round started");
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let mut reports = Vec::with_capacity(sites.len());
    for index in 0..sites.len() {
        let permit = Arc::clone(&permits).acquire_owned().await.expect("the semaphore is never closed");
        let (prober, sites) = (Arc::clone(prober), Arc::clone(sites));
        tasks.spawn(async move {
            let report = prober.probe(&sites[index]).await;
            drop(permit);
            report
        });
        while let Some(joined) = tasks.try_join_next() {
            collect(joined, &mut reports);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        collect(joined, &mut reports);
    }
    reports
}

fn collect(joined: Result<Report, tokio::task::JoinError>, reports: &mut Vec<Report>) {
    match joined {
        Ok(report) => reports.push(report),
        Err(err) => tracing::error!(cause = %err, "a probe task failed"),
    }
}

/// Publishes the reports, or prints them for a dry run; returns those not delivered.
async fn deliver(publisher: Option<&Publisher>, reports: Vec<Report>) -> Vec<Report> {
    let count = reports.len();
    let down = reports.iter().filter(|r| r.error.is_some()).count();
    let unpublished = match publisher {
        Some(publisher) => publisher.publish(reports).await,
        None => print_reports(reports),
    };
    tracing::info!(reports = count, failed_probes = down, unpublished = unpublished.len(), "round done");
    unpublished
}

fn print_reports(reports: Vec<Report>) -> Vec<Report> {
    let mut out = std::io::stdout().lock();
    let mut unwritten = Vec::new();
    for report in reports {
        if out.write_all(&report.to_json()).and_then(|()| out.write_all(b"\n")).is_err() {
            unwritten.push(report);
        }
    }
    let _ = out.flush();
    unwritten
}
