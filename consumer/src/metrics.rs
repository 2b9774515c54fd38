//! What the consumer counts, shared between the archiving thread (which writes) and the HTTP
//! endpoint (which reads), and its rendering in the Prometheus text format.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::session::Service;

/// How long a daemon's session may stay in one turn of its loop before `/healthz` fails: far past
/// a batch or an hourly upkeep (seconds), so that only a service that holds a request without
/// answering (a database or a proxy that hangs, which no client deadline ends) gets the container
/// restarted by its liveness probe.
pub const STALL_LIMIT: Duration = Duration::from_secs(600);

/// Upper bounds (seconds) of the batch-duration histogram: from a few rows to a full 5,000-row batch
/// on a slow disk.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Counters, gauges and the histogram; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reports archived since start (duplicates not counted).
    archived: AtomicU64,
    /// Records kept as rejected since start.
    rejected: AtomicU64,
    /// Reports older than the raw retention when they arrived: in the rollups only.
    past_retention: AtomicU64,
    /// Day partitions created and dropped by this process's upkeep.
    days_created: AtomicU64,
    days_dropped: AtomicU64,
    /// Upkeep turns that failed.
    upkeep_failures: AtomicU64,
    /// Kept window answers summed, those of them summed again after a late write voided them,
    /// answers too large to keep, and turns at them that failed.
    windows_summed: AtomicU64,
    windows_voided: AtomicU64,
    windows_too_large: AtomicU64,
    windows_failures: AtomicU64,
    /// Hourly and daily rollup rows deleted by retention.
    rollup_rows_expired: AtomicU64,
    /// Reports in the default partition at the last upkeep.
    default_rows: AtomicU64,
    /// Connections open to the HTTP endpoint.
    http_connections: AtomicU64,
    /// HTTP connections closed at the cap before their request head was complete.
    http_shed: AtomicU64,
    /// Sessions ended by the loss of Kafka and of PostgreSQL (each failed attempt to start one
    /// again too): a daemon's retries.
    kafka_interruptions: AtomicU64,
    database_interruptions: AtomicU64,
    /// Whether the last Kafka request succeeded.
    kafka_connected: AtomicBool,
    /// Whether the last database statement succeeded.
    database_connected: AtomicBool,
    /// When the daemon's session last came round its loop (ms since the Unix epoch), 0 while
    /// there is no session.
    session_turned_ms: AtomicU64,
    /// The batch latency histogram and the gauges per partition.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Counts per bucket of [`BUCKETS`] (not cumulative), then the sum and the count.
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
    /// Partitions this process holds: (topic, partition) → gauges.
    partitions: BTreeMap<(String, i32), PartitionGauges>,
}

/// What is known of one held partition.
#[derive(Debug, Default, Clone, Copy)]
struct PartitionGauges {
    committed: Option<i64>,
    lag: Option<i64>,
}

impl Metrics {
    /// Counts a committed batch and how long it took.
    pub fn record_batch(&self, archived: u64, rejected: u64, took: Duration) {
        self.archived.fetch_add(archived, Ordering::Relaxed);
        self.rejected.fetch_add(rejected, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        let mut inner = self.lock();
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            inner.buckets[bucket] += 1;
        }
        inner.sum += seconds;
        inner.count += 1;
    }

    /// Counts reports that arrived past the raw retention.
    pub fn record_past_retention(&self, reports: u64) {
        self.past_retention.fetch_add(reports, Ordering::Relaxed);
    }

    /// Counts one turn of upkeep.
    pub fn record_upkeep(&self, created: u64, dropped: u64, rollup_rows_expired: u64, ok: bool) {
        self.days_created.fetch_add(created, Ordering::Relaxed);
        self.days_dropped.fetch_add(dropped, Ordering::Relaxed);
        self.rollup_rows_expired.fetch_add(rollup_rows_expired, Ordering::Relaxed);
        self.upkeep_failures.fetch_add(u64::from(!ok), Ordering::Relaxed);
    }

    /// Counts one turn at the kept window answers: answers summed (`voided` of them summed again)
    /// and too large to keep, or none when the turn failed.
    pub fn record_kept_windows(&self, summed: u64, voided: u64, too_large: u64, ok: bool) {
        self.windows_summed.fetch_add(summed, Ordering::Relaxed);
        self.windows_voided.fetch_add(voided, Ordering::Relaxed);
        self.windows_too_large.fetch_add(too_large, Ordering::Relaxed);
        self.windows_failures.fetch_add(u64::from(!ok), Ordering::Relaxed);
    }

    /// Reports found in the default partition by the last upkeep.
    pub fn set_default_rows(&self, rows: i64) {
        self.default_rows.store(u64::try_from(rows).unwrap_or(0), Ordering::Relaxed);
    }

    /// Counts a session a daemon lost `service` in, before it tries again.
    pub fn record_interruption(&self, service: Service) {
        let counter = match service {
            Service::Kafka => &self.kafka_interruptions,
            Service::Database => &self.database_interruptions,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_connected(&self, kafka: bool, database: bool) {
        self.kafka_connected.store(kafka, Ordering::Relaxed);
        self.database_connected.store(database, Ordering::Relaxed);
    }

    /// The daemon's session came round its loop (it started, or begins another turn).
    pub fn session_turned(&self) {
        self.session_turned_at(SystemTime::now());
    }

    pub(crate) fn session_turned_at(&self, at: SystemTime) {
        let ms = at.duration_since(UNIX_EPOCH).map_or(1, |since| since.as_millis().max(1));
        self.session_turned_ms.store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The session ended: nothing can be stalled until the next one starts.
    pub fn session_ended(&self) {
        self.session_turned_ms.store(0, Ordering::Relaxed);
    }

    /// How long the session has been in its current turn; zero without a session.
    pub fn stalled(&self) -> Duration {
        match self.session_turned_ms.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            ms => SystemTime::now().duration_since(UNIX_EPOCH + Duration::from_millis(ms)).unwrap_or(Duration::ZERO),
        }
    }

    /// Alive = not stalled in one turn for [`STALL_LIMIT`] or longer.
    pub fn alive(&self) -> bool {
        self.stalled() < STALL_LIMIT
    }

    /// A partition is now held; `committed` is its stored next offset, if any.
    pub fn hold(&self, topic: &str, partition: i32, committed: Option<i64>) {
        self.lock().partitions.insert((topic.to_owned(), partition), PartitionGauges { committed, lag: None });
    }

    /// Forgets every held partition (released, or the session ended).
    pub fn release_all(&self) {
        self.lock().partitions.clear();
    }

    /// Forgets one partition.
    pub fn release(&self, topic: &str, partition: i32) {
        self.lock().partitions.remove(&(topic.to_owned(), partition));
    }

    pub fn set_committed(&self, topic: &str, partition: i32, next_offset: i64) {
        if let Some(gauges) = self.lock().partitions.get_mut(&(topic.to_owned(), partition)) {
            gauges.committed = Some(next_offset);
        }
    }

    /// Records not yet archived: the high watermark minus where this process will read next.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        if let Some(gauges) = self.lock().partitions.get_mut(&(topic.to_owned(), partition)) {
            gauges.lag = Some(lag.max(0));
        }
    }

    /// Ready = connected to both services and holding at least one partition.
    pub fn ready(&self) -> bool {
        self.kafka_connected.load(Ordering::Relaxed)
            && self.database_connected.load(Ordering::Relaxed)
            && !self.lock().partitions.is_empty()
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            &mut out,
            "websentry_reports_archived_total",
            "Reports newly written to the archive.",
            self.archived.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "websentry_records_rejected_total",
            "Records kept in rejected_messages.",
            self.rejected.load(Ordering::Relaxed),
        );
        for (name, help, value) in [
            (
                "websentry_reports_past_retention_total",
                "Reports older than the raw retention when they arrived, counted in the rollups only.",
                &self.past_retention,
            ),
            ("websentry_archive_days_created_total", "Day partitions created by this process.", &self.days_created),
            ("websentry_archive_days_dropped_total", "Day partitions dropped by retention.", &self.days_dropped),
            ("websentry_archive_upkeep_failures_total", "Upkeep turns that failed.", &self.upkeep_failures),
            (
                "websentry_archive_kept_windows_summed_total",
                "Window answers (the fixed windows and calendar months) summed ahead by this process's upkeep.",
                &self.windows_summed,
            ),
            (
                "websentry_archive_kept_windows_voided_total",
                "Kept fixed-window answers voided by a late report and summed again (counted in summed too).",
                &self.windows_voided,
            ),
            (
                "websentry_archive_kept_windows_too_large_total",
                "Fixed-window answers not kept because a sum does not fit an integer: read from the rollups.",
                &self.windows_too_large,
            ),
            (
                "websentry_archive_kept_windows_failures_total",
                "Turns at the kept fixed-window answers that failed: those windows are read from the rollups until one succeeds.",
                &self.windows_failures,
            ),
            (
                "websentry_archive_rollup_rows_expired_total",
                "Hourly and daily rollup rows deleted by retention by this process.",
                &self.rollup_rows_expired,
            ),
            (
                "websentry_http_connections_shed_total",
                "HTTP connections closed before their request head was complete, to make room for new ones at the cap.",
                &self.http_shed,
            ),
        ] {
            counter(&mut out, name, help, value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP websentry_archive_default_partition_rows Reports waiting in the default partition at the last upkeep.\n# TYPE websentry_archive_default_partition_rows gauge\nwebsentry_archive_default_partition_rows {}",
            self.default_rows.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP websentry_http_connections Connections open to the HTTP endpoint.\n# TYPE websentry_http_connections gauge\nwebsentry_http_connections {}",
            self.http_connections.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP websentry_service_interruptions_total Sessions ended because the service was lost, and failed attempts to start one again.\n# TYPE websentry_service_interruptions_total counter");
        for (service, counter) in [("kafka", &self.kafka_interruptions), ("postgresql", &self.database_interruptions)] {
            let _ = writeln!(
                out,
                "websentry_service_interruptions_total{{service=\"{service}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP websentry_session_stalled_seconds How long the daemon's session has been in the current turn of its loop (a fetch and its batches, the claims, the upkeep); 0 without a session.\n# TYPE websentry_session_stalled_seconds gauge\nwebsentry_session_stalled_seconds {:.3}",
            self.stalled().as_secs_f64()
        );
        let up = |b: &AtomicBool| u8::from(b.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP websentry_connected Whether the consumer is connected to the service.\n# TYPE websentry_connected gauge");
        let _ = writeln!(out, "websentry_connected{{service=\"kafka\"}} {}", up(&self.kafka_connected));
        let _ = writeln!(out, "websentry_connected{{service=\"postgresql\"}} {}", up(&self.database_connected));
        let inner = self.lock();
        let _ = writeln!(out, "# HELP websentry_batch_duration_seconds Time to write and commit one transaction (the batches of a poll, or of a one-off run's fetches).\n# TYPE websentry_batch_duration_seconds histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(inner.buckets) {
            cumulative += count;
            let _ = writeln!(out, "websentry_batch_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "websentry_batch_duration_seconds_bucket{{le=\"+Inf\"}} {}", inner.count);
        let _ = writeln!(out, "websentry_batch_duration_seconds_sum {}", inner.sum);
        let _ = writeln!(out, "websentry_batch_duration_seconds_count {}", inner.count);
        let _ = writeln!(out, "# HELP websentry_partitions_held Partitions this replica holds.\n# TYPE websentry_partitions_held gauge\nwebsentry_partitions_held {}", inner.partitions.len());
        let _ = writeln!(out, "# HELP websentry_partition_lag Records in the partition not yet archived.\n# TYPE websentry_partition_lag gauge");
        for ((topic, partition), gauges) in &inner.partitions {
            if let Some(lag) = gauges.lag {
                let _ = writeln!(
                    out,
                    "websentry_partition_lag{{topic=\"{}\",partition=\"{partition}\"}} {lag}",
                    escape(topic)
                );
            }
        }
        let _ = writeln!(out, "# HELP websentry_partition_committed_offset The next offset stored for the partition.\n# TYPE websentry_partition_committed_offset gauge");
        for ((topic, partition), gauges) in &inner.partitions {
            if let Some(committed) = gauges.committed {
                let _ = writeln!(
                    out,
                    "websentry_partition_committed_offset{{topic=\"{}\",partition=\"{partition}\"}} {committed}",
                    escape(topic)
                );
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind: still good to read.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// The HTTP endpoint's connections (websentry_shared::connections).
impl websentry_shared::connections::ConnectionMetrics for Metrics {
    fn set_open(&self, open: usize) {
        self.http_connections.store(open as u64, Ordering::Relaxed);
    }

    fn count_shed(&self) {
        self.http_shed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use websentry_shared::connections::ConnectionMetrics;

    use super::*;

    #[test]
    fn the_exposition_has_counters_a_cumulative_histogram_and_per_partition_gauges() {
        let metrics = Metrics::default();
        metrics.hold("sitecheck", 2, None);
        metrics.record_batch(10, 1, Duration::from_millis(3));
        metrics.record_batch(5, 0, Duration::from_millis(30));
        metrics.set_committed("sitecheck", 2, 15);
        metrics.set_lag("sitecheck", 2, 7);
        metrics.record_past_retention(3);
        metrics.record_upkeep(3, 1, 240, true);
        metrics.record_upkeep(0, 0, 0, false);
        metrics.record_kept_windows(4, 2, 1, true);
        metrics.record_kept_windows(0, 0, 0, false);
        metrics.set_default_rows(4);
        metrics.set_open(3);
        metrics.count_shed();
        metrics.record_interruption(Service::Database);
        metrics.record_interruption(Service::Database);
        let text = metrics.render();
        for line in [
            "websentry_reports_archived_total 15",
            "websentry_records_rejected_total 1",
            "websentry_batch_duration_seconds_bucket{le=\"0.005\"} 1",
            "websentry_batch_duration_seconds_bucket{le=\"0.05\"} 2",
            "websentry_batch_duration_seconds_bucket{le=\"+Inf\"} 2",
            "websentry_batch_duration_seconds_count 2",
            "websentry_partition_lag{topic=\"sitecheck\",partition=\"2\"} 7",
            "websentry_partition_committed_offset{topic=\"sitecheck\",partition=\"2\"} 15",
            "websentry_reports_past_retention_total 3",
            "websentry_archive_days_created_total 3",
            "websentry_archive_days_dropped_total 1",
            "websentry_archive_upkeep_failures_total 1",
            "websentry_archive_kept_windows_summed_total 4",
            "websentry_archive_kept_windows_voided_total 2",
            "websentry_archive_kept_windows_too_large_total 1",
            "websentry_archive_kept_windows_failures_total 1",
            "websentry_archive_rollup_rows_expired_total 240",
            "websentry_archive_default_partition_rows 4",
            "websentry_http_connections 3",
            "websentry_http_connections_shed_total 1",
            "websentry_service_interruptions_total{service=\"kafka\"} 0",
            "websentry_service_interruptions_total{service=\"postgresql\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_session_stalled_in_one_turn_past_the_limit_is_not_alive() {
        let metrics = Metrics::default();
        assert_eq!(metrics.stalled(), Duration::ZERO, "no session");
        assert!(metrics.render().lines().any(|l| l == "websentry_session_stalled_seconds 0.000"));
        metrics.session_turned_at(SystemTime::now() - Duration::from_secs(42));
        assert!((42..44).contains(&metrics.stalled().as_secs()), "{:?}", metrics.stalled());
        assert!(metrics.render().contains("\nwebsentry_session_stalled_seconds 42."), "{}", metrics.render());
        assert!(metrics.alive());
        metrics.session_turned_at(SystemTime::now() - STALL_LIMIT);
        assert!(!metrics.alive(), "stalled for the limit");
        metrics.session_turned();
        assert!(metrics.alive() && metrics.stalled() < Duration::from_secs(1), "a new turn");
        metrics.session_turned_at(SystemTime::now() - 2 * STALL_LIMIT);
        metrics.session_ended();
        assert!(metrics.alive() && metrics.stalled() == Duration::ZERO, "the session ended");
    }

    #[test]
    fn ready_needs_both_services_and_a_partition() {
        let metrics = Metrics::default();
        metrics.set_connected(true, true);
        assert!(!metrics.ready(), "no partition held");
        metrics.hold("t", 0, Some(1));
        assert!(metrics.ready());
        metrics.set_connected(true, false);
        assert!(!metrics.ready(), "database lost");
    }
}
