//! When probes run: one round and out, or rounds at a fixed rate until a shutdown (a daemon), each
//! round's reports delivered as their probes end.
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

use std::sync::Arc;

use anyhow::{anyhow, Context};
use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinSet,
    time::MissedTickBehavior,
};
use websentry_shared::{exit::Fatal, report::Report, shutdown::Shutdown};

use crate::{
    printer::print_until_closed,
    probe::Prober,
    publish::Publisher,
    settings::{Config, Output},
    site::Site,
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
const REPORT_QUEUE: usize = 1024;

/// Runs one round (no interval) or rounds at a fixed rate until `shutdown` is requested; a round in
/// flight when it is requested is finished and published first. A daemon keeps the reports Kafka
/// did not acknowledge and sends them again with the next round.
///
/// # Errors
/// Kafka unreachable at start, or any report still not acknowledged when the run ends.
pub async fn run(config: Config, mut shutdown: Shutdown) -> Result<(), Fatal> {
    let prober = Arc::new(Prober::new(config.roots, config.probe));
    let sites: Arc<[Site]> = config.sites.into();
    let canaries: Arc<[Site]> = config.canaries.into();
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
            let earlier = std::mem::take(&mut backlog);
            let round = Round { prober: &prober, sites: &sites, canaries: &canaries, concurrency: config.concurrency };
            backlog = round.probe_and_deliver(publisher.as_ref(), earlier).await;
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
        let round = Round { prober: &prober, sites: &sites, canaries: &canaries, concurrency: config.concurrency };
        backlog = round.probe_and_deliver(publisher.as_ref(), Vec::new()).await;
    }
    if !backlog.is_empty() {
        return Err(Fatal::Runtime(anyhow!("{} reports were not acknowledged by Kafka", backlog.len())));
    }
    tracing::info!("stopped");
    Ok(())
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

fn probe_failed(joined: Result<bool, tokio::task::JoinError>) -> bool {
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
            let verdict = self.ask_canaries(&sender).await;
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

    /// Probes the canaries and hands their reports on; the round is inconclusive when every one of
    /// them failed (their own failed reports marked so too).
    async fn ask_canaries(&self, reports: &mpsc::Sender<Report>) -> Verdict {
        if self.canaries.is_empty() {
            return Verdict::Conclusive;
        }
        let mut answers = round(self.prober, self.canaries, self.concurrency).await;
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
}
