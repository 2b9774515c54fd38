//! Per-site Prometheus metrics at `/probes/metrics`, apart from the process's own `/metrics`: one
//! series per (site, location) measured lately, named like blackbox_exporter's (`probe_success`,
//! `probe_http_status_code`, …) so that the rules and dashboards written for it apply, with
//! Websentry's own beside them (docs/metrics.md).
//!
//! - [`rows`]: what they are read from, through the SQL interface (`site_states`, `site_uptime`).
//! - [`exposition`]: the text, from the rows (a pure function).
//!
//! The exposition is computed at most once per cache period and shared by concurrent scrapes
//! (moka's `try_get_with`, as [`crate::cache`] does for the pages): any number of Prometheus
//! servers and replicas cost the database one load per period each.

pub mod exposition;
pub mod rows;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::Response,
    routing::get,
    Router,
};
use moka::future::Cache;

use crate::{
    cache::LoadError,
    db::{Database, DbError},
    metrics::Metrics,
    reply,
    routes::App,
    settings::Groups,
};

/// The path of the per-site metrics.
pub const PATH: &str = "/probes/metrics";

/// The per-site exposition, cached.
#[derive(Debug)]
pub struct Exporter {
    db: Database,
    metrics: Arc<Metrics>,
    groups: Groups,
    load_within: Duration,
    text: Cache<(), bytes::Bytes>,
    windows: Cache<(), Arc<Vec<rows::WindowRow>>>,
}

/// How long uptime and coverage over 24 h, 7 d and 30 d are kept (the cache period when longer):
/// they are taken from the rollups in whole hours and move by a fraction of a percent in this
/// time, while computing them for 10,000 sites takes ~0.2 s of the database's time from the answers
/// the consumer keeps ahead, and ~1.4 s from the rollups alone (docs/benchmarks.md).
pub const WINDOWS_KEPT: Duration = Duration::from_secs(300);

impl Exporter {
    pub fn new(db: Database, metrics: Arc<Metrics>, groups: Groups, period: Duration, load_within: Duration) -> Self {
        Exporter {
            db,
            metrics,
            groups,
            load_within,
            text: Cache::builder().time_to_live(period).build(),
            windows: Cache::builder().time_to_live(WINDOWS_KEPT.max(period)).build(),
        }
    }

    /// The exposition of every shown site measured lately.
    ///
    /// # Errors
    /// The database could not be read within the load deadline (not kept: the next scrape tries
    /// again).
    pub async fn exposition(&self) -> Result<bytes::Bytes, LoadError> {
        let loaded = AtomicBool::new(false);
        let answer = self
            .text
            .try_get_with((), async {
                loaded.store(true, Ordering::Relaxed);
                // The windows are kept longer than the text: loaded here only when they expired,
                // so a cached text never waits for them.
                let windows = self
                    .windows
                    .try_get_with((), async { self.within(rows::load_windows(&self.db)).await.map(Arc::new) })
                    .await?;
                let states = self.within(rows::load_states(&self.db)).await.map_err(Arc::new)?;
                let rows = rows::ProbeRows { states, windows };
                Ok::<_, LoadError>(bytes::Bytes::from(exposition::render(rows, &self.groups)))
            })
            .await;
        self.metrics.count_cache("probes", !loaded.load(Ordering::Relaxed));
        answer.map_err(|err| Arc::clone(&*err))
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

/// The route of the per-site metrics.
pub fn routes() -> Router<App> {
    Router::new().route(PATH, get(probe_metrics))
}

/// 200 with the exposition; 503 while the archive cannot be read, so that Prometheus's `up` says
/// so (and `WebsentryExporterDown` fires) instead of every site vanishing.
async fn probe_metrics(State(app): State<App>) -> Response {
    match app.probes.exposition().await {
        Ok(text) => {
            let mut response =
                reply::with_type(text.into(), "application/openmetrics-text; version=1.0.0; charset=utf-8");
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => reply::text(StatusCode::SERVICE_UNAVAILABLE, "the archive cannot be read right now\n"),
    }
}
