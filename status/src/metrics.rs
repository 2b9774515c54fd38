//! The status page's own metrics, in the Prometheus text format at `/metrics` (the official
//! `prometheus-client`): requests by route and status, their latency, the cache's hits and misses,
//! the database's queries and errors, the pool and the open connections.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, PoisonError,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route's pattern (`/sites/{id}`), never the path itself: bounded cardinality.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    answer: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    query: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// Every metric, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    hits: Family<AnswerLabels, Counter>,
    misses: Family<AnswerLabels, Counter>,
    made: Family<AnswerLabels, Counter>,
    queries: Family<QueryLabels, Counter>,
    db_errors: Counter,
    db_up: Gauge,
    pool: Family<PoolLabels, Gauge>,
    connections: Gauge,
    shed: Counter,
    /// Queries run so far, all of them: for tests and the single-flight check.
    queries_total: AtomicU64,
    /// Serialises encoding (the registry is read-only after start; this keeps the output whole).
    render: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("websentry_status");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 4.0, 8))
        });
        registry.register("http_request_duration_seconds", "Time to answer a request, by route", duration.clone());
        let hits = Family::<AnswerLabels, Counter>::default();
        registry.register(
            "cache_hits",
            "Answers served from the cache (or shared with a request loading them)",
            hits.clone(),
        );
        let misses = Family::<AnswerLabels, Counter>::default();
        registry.register("cache_misses", "Answers loaded from the database", misses.clone());
        let made = Family::<AnswerLabels, Counter>::default();
        registry.register(
            "pages_made",
            "Kept pages rendered (page), or compressed (page_br, page_gzip): once per cache period, group and coding",
            made.clone(),
        );
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register("db_queries", "Queries sent to the database, by SQL interface object", queries.clone());
        let db_errors = Counter::default();
        registry.register("db_errors", "Failed database connections and queries", db_errors.clone());
        let db_up = Gauge::default();
        registry.register("db_up", "1 when the database answered the last readiness check, else 0", db_up.clone());
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register("db_pool_connections", "Database connections open (size) and idle (available)", pool.clone());
        let connections = Gauge::default();
        registry.register("http_connections", "HTTP connections open", connections.clone());
        let shed = Counter::default();
        registry.register(
            "http_connections_shed",
            "Connections closed at the cap because their request head was incomplete (slow clients)",
            shed.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            hits,
            misses,
            made,
            queries,
            db_errors,
            db_up,
            pool,
            connections,
            shed,
            queries_total: AtomicU64::new(0),
            render: Mutex::new(()),
        }
    }
}

impl Metrics {
    pub fn count_request(&self, route: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { route: route.to_owned(), status }).inc();
        self.duration.get_or_create(&RouteLabels { route: route.to_owned() }).observe(seconds);
    }

    /// An answer (`overview`, `site`, `latency`, `ready`) served from the cache, or loaded.
    pub fn count_cache(&self, answer: &'static str, hit: bool) {
        let family = if hit { &self.hits } else { &self.misses };
        family.get_or_create(&AnswerLabels { answer }).inc();
    }

    /// A kept page rendered (`page`) or compressed (`page_br`, `page_gzip`).
    pub fn count_made(&self, what: &'static str) {
        self.made.get_or_create(&AnswerLabels { answer: what }).inc();
    }

    pub fn count_query(&self, query: &'static str) {
        self.queries.get_or_create(&QueryLabels { query }).inc();
        self.queries_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_db_error(&self) {
        self.db_errors.inc();
    }

    pub fn set_db_up(&self, up: bool) {
        self.db_up.set(i64::from(up));
    }

    pub fn set_pool(&self, size: usize, available: usize) {
        self.pool.get_or_create(&PoolLabels { state: "size" }).set(i64::try_from(size).unwrap_or(i64::MAX));
        self.pool.get_or_create(&PoolLabels { state: "available" }).set(i64::try_from(available).unwrap_or(i64::MAX));
    }

    /// Queries run since start.
    pub fn queries_total(&self) -> u64 {
        self.queries_total.load(Ordering::Relaxed)
    }

    /// The exposition, in the Prometheus text format.
    pub fn render(&self) -> String {
        let _whole = self.render.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The server's connections (websentry_shared::connections).
impl websentry_shared::connections::ConnectionMetrics for Metrics {
    fn set_open(&self, open: usize) {
        self.connections.set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    fn count_shed(&self) {
        self.shed.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_each_metric_with_its_labels() {
        let metrics = Metrics::default();
        metrics.count_request("/sites/{id}", 404, 0.002);
        metrics.count_cache("overview", false);
        metrics.count_cache("overview", true);
        metrics.count_query("latest_reports");
        metrics.set_pool(3, 1);

        let text = metrics.render();

        for line in [
            "websentry_status_http_requests_total{route=\"/sites/{id}\",status=\"404\"} 1",
            "websentry_status_cache_hits_total{answer=\"overview\"} 1",
            "websentry_status_cache_misses_total{answer=\"overview\"} 1",
            "websentry_status_db_queries_total{query=\"latest_reports\"} 1",
            "websentry_status_db_pool_connections{state=\"size\"} 3",
            "websentry_status_http_request_duration_seconds_count{route=\"/sites/{id}\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        assert_eq!(metrics.queries_total(), 1);
    }
}
