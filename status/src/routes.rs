//! The routes and what every answer goes through: the security headers, compression, a deadline,
//! no request body, and the request metrics. `GET` routes answer `HEAD` too (axum strips the
//! body); another method on a known path is answered 405 with `Allow`.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderName, HeaderValue, StatusCode, Uri},
    middleware::{self, Next},
    response::Response,
    routing::get,
    Router,
};
use tokio::time::Instant;
use tower_http::{
    compression::CompressionLayer, limit::RequestBodyLimitLayer, set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
};

use crate::{
    cache::Answers,
    metrics::Metrics,
    reply::{self, Chrome, Failure},
};

/// The Content-Security-Policy of every answer: nothing but our own stylesheet and images, no
/// script, no inline style, no framing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The stylesheet of every page.
pub const STYLESHEET: &str = include_str!("../static/status.css");

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct App {
    pub answers: Arc<Answers>,
    pub probes: Arc<crate::probes::Exporter>,
    pub metrics: Arc<Metrics>,
    pub chrome: Arc<Chrome>,
    /// The overview's pages as rendered from the cached overview.
    pub rendered: Arc<crate::pages::Rendered>,
    /// The cache period, said in `Cache-Control: max-age`.
    pub cache_seconds: u64,
}

/// The stylesheet's path: named by its content, so that it can be cached for a year.
pub fn stylesheet_path() -> String {
    let hash = crate::model::id::site_id(STYLESHEET);
    format!("/static/status-{}.css", &hash[..8])
}

/// The router of `app`; `request_timeout` bounds every answer (then 503).
pub fn router(app: App, request_timeout: Duration) -> Router {
    let metrics = Arc::clone(&app.metrics);
    let css = app.chrome.css.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route(&css, get(stylesheet))
        .merge(crate::pages::routes())
        .merge(crate::api::routes())
        .merge(crate::badges::routes())
        .merge(crate::probes::routes())
        .fallback(not_found)
        .with_state(app)
        .layer(middleware::from_fn_with_state(metrics, measured))
        .layer(CompressionLayer::new().gzip(true).br(true))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout))
        .layer(RequestBodyLimitLayer::new(0))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
}

/// Counts the request by its route's pattern and status, with its time.
async fn measured(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.count_request(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// The process answers.
async fn healthz() -> Response {
    reply::text(StatusCode::OK, "ok\n")
}

/// The database answered within the last second or so.
async fn readyz(State(app): State<App>) -> Response {
    match app.answers.ready().await {
        true => reply::text(StatusCode::OK, "ready\n"),
        false => reply::text(StatusCode::SERVICE_UNAVAILABLE, "not ready: the database does not answer\n"),
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let mut response =
        reply::with_type(app.metrics.render().into(), "application/openmetrics-text; version=1.0.0; charset=utf-8");
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> Response {
    let mut response = reply::with_type(STYLESHEET.into(), "text/css; charset=utf-8");
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}

/// No such route: a page, or JSON under `/api/`.
async fn not_found(State(app): State<App>, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        Failure::NotFound.json()
    } else {
        Failure::NotFound.page(&app.chrome)
    }
}
