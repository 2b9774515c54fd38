//! The JSON API: `/api/v1/sites` and `/api/v1/sites/{id}`, each over a window (`?window=24h|7d|
//! 30d|90d`, 24 hours by default), with stable snake_case fields (docs/status.md lists them).
//! Fractions are 0..1, durations seconds, times RFC 3339 in UTC; a figure that is not known is
//! `null`, never 0.

use axum::{
    extract::{rejection::PathRejection, Path, RawQuery, State},
    response::Response,
    routing::get,
    Router,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{
    cache::LatencyByLocation,
    model::{overview::Latency, Figures, Location, Site, State as SiteState, Window},
    query::{self, Params},
    reply::{self, Failure},
    routes::App,
};

pub fn routes() -> Router<App> {
    Router::new().route("/api/v1/sites", get(list)).route("/api/v1/sites/{id}", get(one))
}

/// One place a site is probed from.
#[derive(Debug, Serialize)]
pub struct LocationDoc<'a> {
    pub probe: &'a str,
    pub state: SiteState,
    /// Conclusive failures since the last success.
    pub consecutive_failures: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub last_checked_at: OffsetDateTime,
    pub code: i32,
    pub response_ms: f64,
    pub error_kind: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub inconclusive: bool,
    pub interval_s: Option<i32>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub tls_expires_at: Option<OffsetDateTime>,
    /// The earliest expiry in the chain the site sent.
    #[serde(with = "time::serde::rfc3339::option")]
    pub tls_chain_expires_at: Option<OffsetDateTime>,
    #[serde(flatten)]
    pub figures: Figures,
    #[serde(flatten)]
    pub latency: Latency,
}

/// One site over a window, all its locations together, and each of them.
#[derive(Debug, Serialize)]
pub struct SiteDoc<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub name: &'a str,
    pub group: Option<&'a str>,
    pub state: SiteState,
    pub window: &'static str,
    #[serde(flatten)]
    pub figures: Figures,
    /// The slowest location's.
    #[serde(flatten)]
    pub latency: Latency,
    #[serde(with = "time::serde::rfc3339::option")]
    pub tls_expires_at: Option<OffsetDateTime>,
    pub certificate_days_left: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_checked_at: OffsetDateTime,
    pub locations: Vec<LocationDoc<'a>>,
}

#[derive(Debug, Serialize)]
struct SitesDoc<'a> {
    #[serde(with = "time::serde::rfc3339")]
    generated_at: OffsetDateTime,
    window: &'static str,
    sites: Vec<SiteDoc<'a>>,
}

#[derive(Debug, Serialize)]
struct OneDoc<'a> {
    #[serde(with = "time::serde::rfc3339")]
    generated_at: OffsetDateTime,
    #[serde(flatten)]
    site: SiteDoc<'a>,
}

/// `site` over `window`; `latency` is the window's when it is not the overview's 24 hours.
pub fn site_doc<'a>(
    site: &'a Site,
    window: Window,
    latency: Option<&LatencyByLocation>,
    now: OffsetDateTime,
) -> SiteDoc<'a> {
    let location_latency = |location: &Location| match latency {
        None => location.latency,
        Some(map) => map.get(&(site.url.clone(), location.probe.clone())).copied().unwrap_or_default(),
    };
    let locations: Vec<LocationDoc<'a>> = site
        .locations
        .iter()
        .map(|location| LocationDoc {
            probe: &location.probe,
            state: location.state,
            consecutive_failures: location.latest.consecutive_failures,
            last_checked_at: location.latest.checked_at,
            code: location.latest.code,
            response_ms: location.latest.response_ms,
            error_kind: location.latest.error_kind.as_deref(),
            error_message: location.latest.error_message.as_deref(),
            inconclusive: location.latest.inconclusive,
            interval_s: location.latest.interval_s,
            tls_expires_at: location.latest.tls_expires_at,
            tls_chain_expires_at: location.latest.tls_chain_expires_at,
            figures: location.windows[window.index()],
            latency: location_latency(location),
        })
        .collect();
    SiteDoc {
        id: &site.id,
        url: &site.url,
        name: &site.name,
        group: site.group.as_deref(),
        state: site.state,
        window: window.label(),
        figures: *site.figures(window),
        latency: locations.iter().fold(Latency::default(), |worst, l| worst.worst(l.latency)),
        tls_expires_at: site.tls_expires_at,
        certificate_days_left: site.certificate_days(now),
        last_checked_at: site.last_checked_at,
        locations,
    }
}

/// Every shown site over the window, trouble first; `group=` and `q=` filter as on the page.
async fn list(State(app): State<App>, RawQuery(raw): RawQuery) -> Response {
    let params = match Params::parse(raw.as_deref(), &["window", "group", "q"]) {
        Ok(params) => params,
        Err(failure) => return failure.json(),
    };
    let window = match params.window() {
        Ok(window) => window,
        Err(failure) => return failure.json(),
    };
    let Ok(overview) = app.answers.overview().await else { return Failure::Unavailable.json() };
    let latency = match window {
        Window::Day => None,
        _ => match app.answers.latency(window).await {
            Ok(latency) => Some(latency),
            Err(_) => return Failure::Unavailable.json(),
        },
    };
    let now = OffsetDateTime::now_utc();
    let (group, search) = (params.get("group"), params.search());
    let sites = overview
        .sites
        .iter()
        .filter(|site| group.is_none_or(|g| site.group.as_deref() == Some(g)) && site.matches(&search))
        .map(|site| site_doc(site, window, latency.as_deref(), now))
        .collect();
    let doc = SitesDoc { generated_at: overview.generated_at.unwrap_or(now), window: window.label(), sites };
    json(&doc, app.cache_seconds)
}

/// One shown site over the window.
async fn one(State(app): State<App>, id: Result<Path<String>, PathRejection>, RawQuery(raw): RawQuery) -> Response {
    let Ok(Path(id)) = id else { return Failure::NotFound.json() };
    let found = async {
        let id = query::site_id(&id)?;
        let window = Params::parse(raw.as_deref(), &["window"])?.window()?;
        let overview = app.answers.overview().await.map_err(|_| Failure::Unavailable)?;
        let site = overview.site(id).ok_or(Failure::NotFound)?;
        let latency = match window {
            Window::Day => None,
            _ => Some(app.answers.latency(window).await.map_err(|_| Failure::Unavailable)?),
        };
        let now = OffsetDateTime::now_utc();
        let doc = OneDoc {
            generated_at: overview.generated_at.unwrap_or(now),
            site: site_doc(site, window, latency.as_deref(), now),
        };
        Ok::<_, Failure>(json(&doc, app.cache_seconds))
    };
    found.await.unwrap_or_else(|failure| failure.json())
}

fn json(doc: &impl Serialize, cache_seconds: u64) -> Response {
    match serde_json::to_vec(doc) {
        Ok(body) => reply::cached_for(reply::json_bytes(body), cache_seconds),
        Err(_) => Failure::Unavailable.json(),
    }
}
