//! Answers computed at most once per cache period and shared: every request for the overview (the
//! page, the API, a badge), one site's details or a window's latency within the period gets the
//! same answer, and concurrent requests for one that is loading wait for that one load (moka's
//! `try_get_with`). A flood of requests costs the database one load per answer per period.
//!
//! A failed load is not kept: the next request tries again (and waits for the same load as its
//! neighbours, so an unreachable database is not asked more often than it is answered).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        Arc,
    },
    time::Duration,
};

use moka::future::Cache;
use time::OffsetDateTime;

use crate::{
    db::{Database, DbError, DetailRows},
    metrics::Metrics,
    model::{overview::Latency, Overview, Window},
    settings::Groups,
};

/// A load that failed; shared by the requests that waited for it.
pub type LoadError = Arc<DbError>;

/// Latency percentiles of each (url, probe) over a window.
pub type LatencyByLocation = HashMap<(String, String), Latency>;

/// How long the readiness answer is kept.
const READY_FOR: Duration = Duration::from_secs(1);
/// How long the readiness query may take.
const READY_WITHIN: Duration = Duration::from_secs(2);
/// One-site answers kept at most (the least used go first).
const SITES_KEPT: u64 = 1024;

/// The cached answers.
#[derive(Debug)]
pub struct Answers {
    db: Database,
    metrics: Arc<Metrics>,
    groups: Groups,
    /// How long a load may take: connecting and querying.
    load_within: Duration,
    overview: Cache<(), Arc<Overview>>,
    latency: Cache<Window, Arc<LatencyByLocation>>,
    detail: Cache<String, Arc<DetailRows>>,
    ready: Cache<(), bool>,
    /// The last readiness seen: 0 none yet, 1 ready, 2 not ready (logged when it changes).
    last_ready: AtomicU8,
}

impl Answers {
    pub fn new(db: Database, metrics: Arc<Metrics>, groups: Groups, period: Duration, load_within: Duration) -> Self {
        Answers {
            db,
            metrics,
            groups,
            load_within,
            overview: Cache::builder().time_to_live(period).build(),
            latency: Cache::builder().time_to_live(period).build(),
            detail: Cache::builder().time_to_live(period).max_capacity(SITES_KEPT).build(),
            ready: Cache::builder().time_to_live(READY_FOR).build(),
            last_ready: AtomicU8::new(0),
        }
    }

    /// Every shown site.
    ///
    /// # Errors
    /// The database could not be read (not kept: the next request tries again).
    pub async fn overview(&self) -> Result<Arc<Overview>, LoadError> {
        let loaded = AtomicBool::new(false);
        let answer = self
            .overview
            .try_get_with((), async {
                loaded.store(true, Ordering::Relaxed);
                let rows = self.within(self.db.overview()).await?;
                Ok(Arc::new(Overview::build(&rows, &self.groups, OffsetDateTime::now_utc())))
            })
            .await;
        self.metrics.count_cache("overview", !loaded.load(Ordering::Relaxed));
        answer
    }

    /// Latency percentiles of each (url, probe) over `window`; the 24 hours come with the overview.
    ///
    /// # Errors
    /// As [`Answers::overview`].
    pub async fn latency(&self, window: Window) -> Result<Arc<LatencyByLocation>, LoadError> {
        let loaded = AtomicBool::new(false);
        let answer = self
            .latency
            .try_get_with(window, async {
                loaded.store(true, Ordering::Relaxed);
                let rows = self.within(self.db.latency(window)).await?;
                let by_location = rows
                    .into_iter()
                    .map(|row| {
                        ((row.url, row.probe), Latency { p50_ms: row.p50_ms, p95_ms: row.p95_ms, p99_ms: row.p99_ms })
                    })
                    .collect();
                Ok(Arc::new(by_location))
            })
            .await;
        self.metrics.count_cache("latency", !loaded.load(Ordering::Relaxed));
        answer
    }

    /// What one site's page adds to the overview, for the site `url` (found in the overview).
    ///
    /// # Errors
    /// As [`Answers::overview`].
    pub async fn detail(&self, url: &str) -> Result<Arc<DetailRows>, LoadError> {
        let loaded = AtomicBool::new(false);
        let answer = self
            .detail
            .try_get_with(url.to_owned(), async {
                loaded.store(true, Ordering::Relaxed);
                Ok(Arc::new(self.within(self.db.detail(url)).await?))
            })
            .await;
        self.metrics.count_cache("site", !loaded.load(Ordering::Relaxed));
        answer
    }

    /// Whether the database answered a query within the last second or so (asked at most once a
    /// second, whatever the number of probes). A change is logged once.
    pub async fn ready(&self) -> bool {
        let ready = self
            .ready
            .get_with((), async {
                let answer = self.db.ping(READY_WITHIN).await;
                let (size, available) = self.db.pool_status();
                self.metrics.set_pool(size, available);
                self.metrics.set_db_up(answer.is_ok());
                let now = if answer.is_ok() { 1 } else { 2 };
                if self.last_ready.swap(now, Ordering::Relaxed) != now {
                    match answer {
                        Ok(()) => tracing::info!("database answers: ready"),
                        Err(err) => tracing::warn!(cause = %err, "database unreachable: not ready"),
                    }
                }
                now == 1
            })
            .await;
        ready
    }

    /// `load` within the load deadline; a failure is logged.
    async fn within<T>(&self, load: impl std::future::Future<Output = Result<T, DbError>>) -> Result<T, DbError> {
        let answer =
            tokio::time::timeout(self.load_within, load).await.unwrap_or(Err(DbError::Timeout(self.load_within)));
        if let Err(err) = &answer {
            tracing::warn!(cause = %err, "reading the archive failed");
        }
        answer
    }
}
