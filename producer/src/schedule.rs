//! When probes run: one round and out — of every site, or of the sites due in this run's period
//! (`WEBSENTRY_CADENCE`) — or, for a daemon, each site at its slots until a shutdown
//! ([`crate::daemon`]); reports are delivered as their probes end.
//!
//! A round spawns a probe task only when one of its `concurrency` permits is free, so memory follows
//! the concurrency, not the number of sites. Reports go through a bounded queue to the publisher
//! (or the printer, for a dry run) while the round goes on; a probe that finds the queue full waits,
//! so a slow Kafka slows the probes instead of filling memory. A daemon keeps what Kafka did not
//! acknowledge and sends it first with the next round, up to [`MAX_BACKLOG`] reports.
//!
//! A round starts with its canaries, when there are some: if every one of them fails too, the
//! round's failures may be this producer's own (its network, its DNS), so its failed reports are
//! marked inconclusive — the archive counts their time as unmeasured, not down.

use std::{sync::Arc, time::Duration};

use anyhow::{anyhow, Context};
use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinSet,
};
use websentry_shared::{exit::Fatal, report::Report, shutdown::Shutdown};

use crate::{
    daemon::Daemon,
    printer::print_until_closed,
    probe::Prober,
    publish::Publisher,
    settings::{Config, Output, Plan},
    site::Site,
    slot::{now_ms, Placement},
};

/// Reports kept for the next round at most when Kafka does not acknowledge them; beyond it the
/// oldest are dropped, loudly.
pub const MAX_BACKLOG: usize = 100_000;

/// Whether a round's failures are the sites' own, as its canaries tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No canary, or one of them answered: a failed probe is the site's failure.
    Conclusive,
    /// Every canary failed too: a failed probe is marked inconclusive.
    Inconclusive,
}

/// Reports between the probes and the publisher at most; a probe that finds the queue full waits
/// (Kafka slower than the probes), which bounds memory.
pub(crate) const REPORT_QUEUE: usize = 1024;

/// Runs the plan: one round of every site, one of the sites due in this run's period, or a
/// daemon until `shutdown` is requested (the probes running then are finished and published).
///
/// # Errors
/// Kafka unreachable at start, or any report still not acknowledged when the run ends.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Fatal> {
    let prober = Arc::new(Prober::new(config.roots, config.probe));
    let sites: Arc<[Site]> = config.sites.into();
    let canaries: Arc<[Site]> = config.canaries.into();
    if let Some(shard) = config.shard {
        tracing::info!(%shard, sites = sites.len(), listed = config.listed, "probing one shard of the sites");
    }
    let publisher = match &config.output {
        Output::Kafka(kafka) => {
            Some(Publisher::connect(kafka).await.context("connecting to Kafka").map_err(Fatal::Runtime)?)
        }
        Output::Stdout => None,
    };
    let unpublished = match config.plan {
        Plan::Once => {
            let round = Round { prober: &prober, sites: &sites, canaries: &canaries, concurrency: config.concurrency };
            round.probe_and_deliver(publisher.as_ref(), Vec::new()).await
        }
        Plan::Window(cadence) => {
            let due = due_in_period(&sites, cadence, now_ms());
            tracing::info!(
                due = due.len(),
                sites = sites.len(),
                cadence_s = cadence.as_secs(),
                "probing the sites due in this period"
            );
            let round = Round { prober: &prober, sites: &due, canaries: &canaries, concurrency: config.concurrency };
            round.probe_and_deliver(publisher.as_ref(), Vec::new()).await
        }
        Plan::Daemon(interval) => {
            let daemon = Daemon { prober, sites, canaries, concurrency: config.concurrency, interval };
            daemon.run(publisher, shutdown).await
        }
    };
    if !unpublished.is_empty() {
        return Err(Fatal::Runtime(anyhow!("{} reports were not acknowledged by Kafka", unpublished.len())));
    }
    tracing::info!("stopped");
    Ok(())
}

/// The sites with a slot in the period of `cadence` that holds `now_ms` (the period a CronJob's
/// run was scheduled for, even when it started a little late). Every site's interval is a whole
/// multiple of the cadence (the settings see to it), so the periods find each slot once.
pub fn due_in_period(sites: &[Site], cadence: Duration, now_ms: u64) -> Arc<[Site]> {
    let every = u64::try_from(cadence.as_millis()).unwrap_or(u64::MAX).max(1);
    let start = now_ms - now_ms % every;
    sites
        .iter()
        .filter(|site| {
            let interval = site.interval.unwrap_or(cadence);
            let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1);
            Placement::of(site.url.as_str()).due_in(interval_ms, start, every)
        })
        .cloned()
        .collect()
}

/// Probes every site once, at most `concurrency` at a time, and returns the reports (see
/// [`round_into`]).
pub async fn round(prober: &Arc<Prober>, sites: &Arc<[Site]>, concurrency: usize) -> Vec<Report> {
    let (sender, mut receiver) = mpsc::channel(REPORT_QUEUE);
    let collect = async {
        let mut reports = Vec::with_capacity(sites.len());
        while let Some(report) = receiver.recv().await {
            reports.push(report);
        }
        reports
    };
    let (_, reports) = tokio::join!(round_into(prober, sites, concurrency, sender, Verdict::Conclusive), collect);
    reports
}

/// Probes every site once, at most `concurrency` at a time, handing each report to `reports` as
/// its probe ends (a failed one marked inconclusive when the `verdict` says so); returns how many
/// probes failed. A probe task is spawned only when a permit is free, so memory follows the
/// concurrency, not the number of sites.
pub async fn round_into(
    prober: &Arc<Prober>,
    sites: &Arc<[Site]>,
    concurrency: usize,
    reports: mpsc::Sender<Report>,
    verdict: Verdict,
) -> usize {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let mut failed = 0;
    for index in 0..sites.len() {
        let permit = Arc::clone(&permits).acquire_owned().await.expect("the semaphore is never closed");
        let (prober, sites, reports) = (Arc::clone(prober), Arc::clone(sites), reports.clone());
        tasks.spawn(async move {
            let mut report = prober.probe(&sites[index]).await;
            drop(permit);
            let down = report.error.is_some();
            report.inconclusive = down && verdict == Verdict::Inconclusive;
            // The receiver outlives the round.
            let _ = reports.send(report).await;
            down
        });
        while let Some(joined) = tasks.try_join_next() {
            failed += usize::from(probe_failed(joined));
        }
    }
    while let Some(joined) = tasks.join_next().await {
        failed += usize::from(probe_failed(joined));
    }
    failed
}

pub(crate) fn probe_failed(joined: Result<bool, tokio::task::JoinError>) -> bool {
    joined.unwrap_or_else(|err| {
        tracing::error!(cause = %err, "a probe task failed");
        true
    })
}

/// One round's work: its sites, its canaries and how many probes run at once.
struct Round<'a> {
    prober: &'a Arc<Prober>,
    sites: &'a Arc<[Site]>,
    canaries: &'a Arc<[Site]>,
    concurrency: usize,
}

impl Round<'_> {
    /// Probes the round (canaries first) and publishes each report as its probe ends (or prints
    /// it, for a dry run), after the `earlier` reports that were not acknowledged before; returns
    /// those not delivered.
    async fn probe_and_deliver(&self, publisher: Option<&Publisher>, earlier: Vec<Report>) -> Vec<Report> {
        let (sender, receiver) = mpsc::channel(REPORT_QUEUE);
        let resent = earlier.len();
        tracing::info!(sites = self.sites.len(), canaries = self.canaries.len(), "round started");
        let probing = async move {
            for report in earlier {
                let _ = sender.send(report).await;
            }
            let verdict = ask_canaries(self.prober, self.canaries, self.concurrency, sender.clone()).await;
            round_into(self.prober, self.sites, self.concurrency, sender, verdict).await
        };
        let deliver = async {
            match publisher {
                Some(publisher) => publisher.publish_until_closed(receiver).await,
                None => print_until_closed(receiver).await,
            }
        };
        let (failed_probes, unpublished) = tokio::join!(probing, deliver);
        let probes = self.sites.len() + self.canaries.len();
        tracing::info!(probes, failed_probes, resent, unpublished = unpublished.len(), "round done");
        unpublished
    }
}

/// Probes the canaries at once and hands their reports on; the round is inconclusive when every one
/// of them failed (their own failed reports marked so too).
pub(crate) async fn ask_canaries(
    prober: &Arc<Prober>,
    canaries: &Arc<[Site]>,
    concurrency: usize,
    reports: mpsc::Sender<Report>,
) -> Verdict {
    if canaries.is_empty() {
        return Verdict::Conclusive;
    }
    let mut answers = round(prober, canaries, concurrency).await;
    let verdict = match answers.iter().all(|report| report.error.is_some()) {
        true => Verdict::Inconclusive,
        false => Verdict::Conclusive,
    };
    if verdict == Verdict::Inconclusive {
        tracing::warn!(canaries = answers.len(), "every canary failed: this round's failures are inconclusive");
    }
    for mut report in answers.drain(..) {
        report.inconclusive = report.error.is_some() && verdict == Verdict::Inconclusive;
        let _ = reports.send(report).await;
    }
    verdict
}
