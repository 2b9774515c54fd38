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
    publish::{Delivery, Publisher},
    settings::{Config, Output},
    site::Site,
};

/// Runs one round (no interval) or rounds at a fixed rate until `shutdown` is requested; a round in
/// flight when it is requested is finished and published first.
///
/// # Errors
/// Kafka unreachable at start, or, in a one-off run, any report not acknowledged.
pub async fn run(config: Config, mut shutdown: Shutdown) -> Result<(), Fatal> {
    let prober = Arc::new(Prober::new(config.roots, config.probe));
    let sites: Arc<[Site]> = config.sites.into();
    let publisher = match &config.output {
        Output::Kafka(kafka) => {
            Some(Publisher::connect(kafka).await.context("connecting to Kafka").map_err(Fatal::Runtime)?)
        }
        Output::Stdout => None,
    };
    let Some(interval) = config.interval else {
        let reports = round(&prober, &sites, config.concurrency).await;
        let delivery = deliver(publisher.as_ref(), &reports).await;
        if delivery.failed > 0 {
            return Err(Fatal::Runtime(anyhow!(
                "{} of {} reports were not acknowledged by Kafka",
                delivery.failed,
                reports.len()
            )));
        }
        return Ok(());
    };
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
        tracing::info!(sites = sites.len(), "round started");
        let reports = round(&prober, &sites, config.concurrency).await;
        deliver(publisher.as_ref(), &reports).await;
        if shutdown.is_requested() {
            break;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Probes every site once, at most `concurrency` at a time.
pub async fn round(prober: &Arc<Prober>, sites: &Arc<[Site]>, concurrency: usize) -> Vec<Report> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for index in 0..sites.len() {
        let (prober, sites, permits) = (Arc::clone(prober), Arc::clone(sites), Arc::clone(&permits));
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            prober.probe(&sites[index]).await
        });
    }
    let mut reports = Vec::with_capacity(sites.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(report) => reports.push(report),
            Err(err) => tracing::error!(cause = %err, "a probe task failed"),
        }
    }
    reports
}

/// Publishes the round, or prints it for a dry run.
async fn deliver(publisher: Option<&Publisher>, reports: &[Report]) -> Delivery {
    let down = reports.iter().filter(|r| r.error.is_some()).count();
    let delivery = match publisher {
        Some(publisher) => publisher.publish(reports).await,
        None => print_reports(reports),
    };
    tracing::info!(
        probed = reports.len(),
        failed_probes = down,
        published = delivery.acknowledged,
        unpublished = delivery.failed,
        "round done"
    );
    delivery
}

fn print_reports(reports: &[Report]) -> Delivery {
    let mut out = std::io::stdout().lock();
    let mut delivery = Delivery::default();
    for report in reports {
        let written = out.write_all(&report.to_json()).and_then(|()| out.write_all(b"\n"));
        match written {
            Ok(()) => delivery.acknowledged += 1,
            Err(_) => delivery.failed += 1,
        }
    }
    let _ = out.flush();
    delivery
}
