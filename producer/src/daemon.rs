//! A daemon's schedule: each site probed at its slots (see [`crate::slot`]), so that the probes of
//! a list spread over their interval instead of firing in one burst, and a slow site never moves
//! another one's probes.
//!
//! - **Start**: every site is probed at once, so that none waits up to its interval for its first
//!   measurement after a deploy. That report states the time until the site's first slot as its
//!   `interval_s` (whole seconds, at least one), not the interval: it stands for that time only.
//! - **Rounds**: time is cut into rounds of the greatest common divisor of the intervals (the
//!   interval itself when every site has the daemon's), aligned on the Unix epoch. At each round's
//!   start, the sites with a slot in it are listed; each is probed at its slot. Rounds overlap:
//!   a probe still running when the next round starts does not hold it up.
//! - **One probe per site at a time**: a site whose previous probe is still running at its slot
//!   (a timeout longer than its interval) skips that slot, with a warning. The archive sees no
//!   report for it: unmeasured time, never assumed up.
//! - **Canaries**: probed at the start of each round that has sites due, at once; when every one
//!   of them fails, that round's failed reports are inconclusive.
//! - **Publishing**: reports go out in the order the probes end, through one queue per round's
//!   period, published one period after the other so that one site's reports stay in order.
//!   What Kafka did not acknowledge is sent again first with the next period, up to
//!   [`MAX_BACKLOG`] reports.
//! - **Shutdown**: no probe starts after it; the probes running are finished and their reports
//!   published before the daemon exits.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinSet,
};
use websentry_shared::{report::Report, shutdown::Shutdown};

use crate::{
    printer::print_until_closed,
    probe::Prober,
    publish::Publisher,
    schedule::{ask_canaries, probe_failed, Verdict, MAX_BACKLOG, REPORT_QUEUE},
    site::Site,
    slot::{now_ms, Placement},
};

/// What a daemon probes and how.
pub struct Daemon {
    pub prober: Arc<Prober>,
    pub sites: Arc<[Site]>,
    pub canaries: Arc<[Site]>,
    pub concurrency: usize,
    /// The interval of the sites without their own.
    pub interval: Duration,
}

/// The daemon's shared state, for the rounds it spawns.
struct Schedule {
    prober: Arc<Prober>,
    sites: Arc<[Site]>,
    canaries: Arc<[Site]>,
    concurrency: usize,
    placements: Vec<Placement>,
    intervals_ms: Vec<u64>,
    /// Probes running at once at most, over every round.
    permits: Arc<Semaphore>,
    /// Whether each site has a probe running.
    busy: Vec<AtomicBool>,
    outbox: Outbox,
}

/// A site to probe in a round: at `slot_ms`, stating `stated_s` as its interval when it is not
/// the site's own (the first probe after start).
#[derive(Debug, Clone, Copy)]
struct Due {
    index: usize,
    slot_ms: u64,
    stated_s: Option<u32>,
}

impl Daemon {
    /// Probes until `shutdown` is requested, then finishes the probes running and publishes them.
    /// Returns the reports Kafka did not acknowledge.
    pub async fn run(self, publisher: Option<Publisher>, mut shutdown: Shutdown) -> Vec<Report> {
        let intervals_ms: Vec<u64> =
            self.sites.iter().map(|site| millis(site.interval.unwrap_or(self.interval))).collect();
        let round_ms = intervals_ms.iter().copied().fold(millis(self.interval), gcd);
        tracing::info!(
            sites = self.sites.len(),
            interval_s = self.interval.as_secs(),
            round_s = round_ms / 1000,
            "probing at a fixed rate, each site at its slot"
        );
        let (outbox, epochs) = Outbox::new();
        let publishing = tokio::spawn(publish_epochs(publisher, epochs));
        let schedule = Arc::new(Schedule {
            placements: self.sites.iter().map(|site| Placement::of(site.url.as_str())).collect(),
            busy: self.sites.iter().map(|_| AtomicBool::new(false)).collect(),
            permits: Arc::new(Semaphore::new(self.concurrency)),
            prober: self.prober,
            sites: self.sites,
            canaries: self.canaries,
            concurrency: self.concurrency,
            intervals_ms,
            outbox,
        });

        let started_ms = now_ms();
        let mut rounds = JoinSet::new();
        let first: Vec<Due> = (0..schedule.sites.len())
            .map(|index| {
                let first_slot = schedule.placements[index].next_slot_ms(schedule.intervals_ms[index], started_ms + 1);
                let until_s = u32::try_from((first_slot - started_ms) / 1000).unwrap_or(u32::MAX).max(1);
                Due { index, slot_ms: started_ms, stated_s: Some(until_s) }
            })
            .collect();
        rounds.spawn(Arc::clone(&schedule).round(first, shutdown.clone()));
        let mut window = started_ms / round_ms;
        loop {
            let (start, end) = (window * round_ms, (window + 1) * round_ms);
            // In the round under way at start, only the slots still to come.
            let from = start.max(started_ms + 1);
            let due: Vec<Due> = (0..schedule.sites.len())
                .filter_map(|index| {
                    let slot_ms = schedule.placements[index].next_slot_ms(schedule.intervals_ms[index], from);
                    (slot_ms < end).then_some(Due { index, slot_ms, stated_s: None })
                })
                .collect();
            if !due.is_empty() {
                rounds.spawn(Arc::clone(&schedule).round(due, shutdown.clone()));
            }
            while let Some(joined) = rounds.try_join_next() {
                round_ended(joined);
            }
            window += 1;
            let wait = Duration::from_millis((window * round_ms).saturating_sub(now_ms()));
            tokio::select! {
                biased;
                () = shutdown.requested() => break,
                () = tokio::time::sleep(wait) => {}
            }
            // One queue per period: what ended in it is published before what ends after it.
            schedule.outbox.next_epoch();
        }
        while let Some(joined) = rounds.join_next().await {
            round_ended(joined);
        }
        schedule.outbox.close();
        drop(schedule);
        publishing.await.unwrap_or_else(|err| {
            tracing::error!(cause = %err, "the publishing task failed");
            Vec::new()
        })
    }
}

impl Schedule {
    /// Probes `due` (canaries first, if any), each at its slot, until a shutdown stops the probes
    /// not started yet.
    async fn round(self: Arc<Self>, mut due: Vec<Due>, mut shutdown: Shutdown) {
        tracing::info!(sites = due.len(), canaries = self.canaries.len(), "round started");
        let verdict = match self.canaries.is_empty() {
            true => Verdict::Conclusive,
            false => {
                let (sender, mut receiver) = mpsc::channel(REPORT_QUEUE);
                let forward = async {
                    while let Some(report) = receiver.recv().await {
                        self.outbox.send(report).await;
                    }
                };
                let (verdict, ()) =
                    tokio::join!(ask_canaries(&self.prober, &self.canaries, self.concurrency, sender), forward);
                verdict
            }
        };
        due.sort_by_key(|due| due.slot_ms);
        let (mut probes, mut skipped, mut stopped) = (JoinSet::new(), 0_usize, 0_usize);
        for (at, next) in due.iter().enumerate() {
            let wait = Duration::from_millis(next.slot_ms.saturating_sub(now_ms()));
            let permit = tokio::select! {
                biased;
                () = shutdown.requested() => None,
                permit = async {
                    tokio::time::sleep(wait).await;
                    Arc::clone(&self.permits).acquire_owned().await.expect("the semaphore is never closed")
                } => Some(permit),
            };
            let Some(permit) = permit else {
                stopped = due.len() - at;
                break;
            };
            let site = &self.sites[next.index];
            if self.busy[next.index].swap(true, Ordering::AcqRel) {
                skipped += 1;
                tracing::warn!(
                    url = site.url.as_str(),
                    "still probed from an earlier slot: this slot is skipped and left unmeasured"
                );
                continue;
            }
            let (schedule, next) = (Arc::clone(&self), *next);
            probes.spawn(async move {
                let mut report = schedule.prober.probe(&schedule.sites[next.index]).await;
                drop(permit);
                if let Some(stated) = next.stated_s {
                    report.interval_s = Some(stated);
                }
                let down = report.error.is_some();
                report.inconclusive = down && verdict == Verdict::Inconclusive;
                schedule.outbox.send(report).await;
                schedule.busy[next.index].store(false, Ordering::Release);
                down
            });
            while let Some(joined) = probes.try_join_next() {
                let _ = probe_failed(joined);
            }
        }
        let mut failed_probes = 0;
        while let Some(joined) = probes.join_next().await {
            failed_probes += usize::from(probe_failed(joined));
        }
        let probes = due.len() - skipped - stopped + self.canaries.len();
        tracing::info!(probes, failed_probes, skipped, stopped, "round done");
    }
}

fn round_ended(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        tracing::error!(cause = %err, "a round failed");
    }
}

/// Where the probes' reports go: the queue of the current period, taken when a report is ready
/// (a probe that runs long does not hold its start's period open).
struct Outbox {
    current: Mutex<Option<mpsc::Sender<Report>>>,
    epochs: mpsc::UnboundedSender<mpsc::Receiver<Report>>,
}

impl Outbox {
    fn new() -> (Self, mpsc::UnboundedReceiver<mpsc::Receiver<Report>>) {
        let (epochs, receiving) = mpsc::unbounded_channel();
        let outbox = Outbox { current: Mutex::new(None), epochs };
        outbox.next_epoch();
        (outbox, receiving)
    }

    /// Starts a new period's queue; the last one closes once the reports being sent to it are in.
    fn next_epoch(&self) {
        let (sender, receiver) = mpsc::channel(REPORT_QUEUE);
        // The publishing task outlives the daemon's loop.
        let _ = self.epochs.send(receiver);
        *self.current.lock().expect("the outbox lock is never poisoned") = Some(sender);
    }

    /// Closes the current period's queue: nothing is sent after it.
    fn close(&self) {
        self.current.lock().expect("the outbox lock is never poisoned").take();
    }

    async fn send(&self, report: Report) {
        let sender = self.current.lock().expect("the outbox lock is never poisoned").clone();
        if let Some(sender) = sender {
            // The publishing task receives until every period's queue is closed.
            let _ = sender.send(report).await;
        }
    }
}

/// Publishes each period's queue in turn, after what the previous one could not deliver; returns
/// what the last one could not.
async fn publish_epochs(
    publisher: Option<Publisher>,
    mut epochs: mpsc::UnboundedReceiver<mpsc::Receiver<Report>>,
) -> Vec<Report> {
    let mut backlog: Vec<Report> = Vec::new();
    while let Some(mut epoch) = epochs.recv().await {
        let earlier = std::mem::take(&mut backlog);
        let resent = earlier.len();
        let (sender, receiver) = mpsc::channel(REPORT_QUEUE);
        let forward = async move {
            for report in earlier {
                let _ = sender.send(report).await;
            }
            while let Some(report) = epoch.recv().await {
                let _ = sender.send(report).await;
            }
        };
        let deliver = async {
            match &publisher {
                Some(publisher) => publisher.publish_until_closed(receiver).await,
                None => print_until_closed(receiver).await,
            }
        };
        let ((), unpublished) = tokio::join!(forward, deliver);
        backlog = unpublished;
        if !backlog.is_empty() {
            tracing::warn!(
                resent,
                unpublished = backlog.len(),
                "reports not acknowledged by Kafka, kept for the next period"
            );
        }
        if backlog.len() > MAX_BACKLOG {
            let dropped = backlog.len() - MAX_BACKLOG;
            tracing::error!(dropped, kept = MAX_BACKLOG, "backlog full, dropping the oldest unpublished reports");
            backlog.drain(..dropped);
        }
    }
    backlog
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn gcd(a: u64, b: u64) -> u64 {
    match b {
        0 => a,
        b => gcd(b, a % b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_round_is_the_greatest_common_divisor_of_the_intervals() {
        let round = |intervals: &[u64]| intervals.iter().copied().fold(60_000, gcd);
        assert_eq!(round(&[]), 60_000);
        assert_eq!(round(&[60_000, 300_000]), 60_000);
        assert_eq!(round(&[45_000, 300_000]), 15_000);
        assert_eq!(round(&[7_000]), 1_000);
    }
}
