//! `websentry-status`: the read side of Websentry. A stateless server that shows the archive as a
//! status page (server-rendered HTML with inline SVG, no JavaScript), a JSON API and SVG badges,
//! reading PostgreSQL only through the archive's SQL interface, as a read-only role.
//!
//! A tour, from the request to the database:
//!
//! - [`server`]: the listener (hyper, HTTP/1.1): a cap on connections that sheds slow clients,
//!   head and write timeouts, header limits, graceful shutdown.
//! - [`routes`]: the router (axum) and what every answer goes through: security headers,
//!   compression, a deadline, no request body, request metrics; `/healthz`, `/readyz`, `/metrics`.
//! - [`pages`] (askama templates in `templates/`, drawings from [`svg`]), [`api`] (JSON) and
//!   [`badges`] (SVG): the answers; [`query`] checks their query strings; [`reply`] holds what
//!   they share, failures included; [`probes`]: the per-site metrics at `/probes/metrics`.
//! - [`cache`]: each answer computed at most once per cache period and shared by concurrent
//!   requests.
//! - [`model`]: what is shown, computed from the rows by pure functions: states, windows,
//!   uptime and coverage.
//! - [`db`]: the read pool and the SQL interface's queries, with typed rows.
//! - [`settings`], [`metrics`].

pub mod api;
pub mod badges;
pub mod cache;
pub mod db;
pub mod encoding;
pub mod metrics;
pub mod model;
pub mod pages;
pub mod probes;
pub mod query;
pub mod reply;
pub mod routes;
pub mod server;
pub mod settings;
pub mod svg;

use std::sync::Arc;

use anyhow::Context;
use websentry_shared::{exit::Fatal, shutdown::Shutdown};

use crate::{cache::Answers, db::Database, metrics::Metrics, reply::Chrome, routes::App, settings::Config};

/// Serves the status page until `shutdown`.
///
/// # Errors
/// The database's TLS settings cannot be used (configuration), or the address cannot be listened
/// on (run time). An unreachable database is no error: the page says so, and `/readyz` answers 503
/// until it answers.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), Fatal> {
    let metrics = Arc::new(Metrics::default());
    let db = Database::new(&config, Arc::clone(&metrics)).map_err(Fatal::Config)?;
    let load_within = config.database.timeout + config.statement_timeout;
    let probes =
        probes::Exporter::new(db.clone(), Arc::clone(&metrics), config.groups.clone(), config.cache, load_within);
    let answers = Arc::new(Answers::new(db, Arc::clone(&metrics), config.groups.clone(), config.cache, load_within));
    let app = App {
        answers: Arc::clone(&answers),
        probes: Arc::new(probes),
        metrics: Arc::clone(&metrics),
        chrome: Arc::new(Chrome { title: config.title.clone(), css: routes::stylesheet_path() }),
        rendered: Arc::default(),
        cache_seconds: config.cache.as_secs(),
    };
    let router = routes::router(app, load_within + std::time::Duration::from_secs(5));
    let listener = websentry_shared::listen::listen(config.listen)
        .with_context(|| format!("listening on {} (WEBSENTRY_STATUS_LISTEN)", config.listen))
        .map_err(Fatal::Runtime)?;
    let address = listener.local_addr().map_err(|err| Fatal::Runtime(err.into()))?;
    tracing::info!(%address, database = %config.database.address(), "status page listening");
    // Says at start whether the database answers (logged once, then on every change).
    tokio::spawn(async move { answers.ready().await });
    server::serve_until_stopped(listener, router, metrics, shutdown).await;
    tracing::info!("status page stopped");
    Ok(())
}
