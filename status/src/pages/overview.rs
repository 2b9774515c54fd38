//! `/`: every shown site, trouble first. `?group=` keeps one group, `?q=` the sites whose name or
//! URL holds the text (case-insensitive); both from a GET form, answered by the server.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use askama::Template;
use axum::{
    body::Body,
    extract::{RawQuery, State},
    http::HeaderMap,
    response::Response,
};
use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, Semaphore};

use super::format::{self, Cell};
use crate::{
    encoding::{self, Coding, Kept},
    model::{Overview, Site, State as SiteState, Window},
    query::Params,
    reply::{self, Chrome, Failure},
    routes::App,
    svg,
};

/// One site's row.
pub struct Row<'a> {
    pub site: &'a Site,
    pub group: &'a str,
    pub shape: &'static str,
    pub down_at: String,
    pub locations: Vec<(&'a str, &'static str, &'static str)>,
    pub cells: Vec<Cell>,
    pub bar: String,
    pub p95: String,
    pub certificate: String,
    pub certificate_class: &'static str,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    chrome: &'a Chrome,
    rows: Vec<Row<'a>>,
    /// Each group, and whether it is the one shown.
    groups: Vec<(&'a str, bool)>,
    search: &'a str,
    filtered: bool,
    total: usize,
    down: usize,
    unknown: usize,
    up: usize,
    generated: String,
    cache_seconds: u64,
    windows: [&'static str; 4],
}

/// The pages rendered from one overview: without a search, the page is the same for every request
/// within a cache period, so it is rendered once per period and group, not per request (1,000
/// sites are 3 MB of HTML), and compressed once per coding a browser asks for (see `encoding`).
/// The requests that come while it is rendered wait for that one rendering. Only the known groups
/// are kept, so a query cannot grow it.
#[derive(Debug)]
pub struct Rendered {
    /// The overview they were rendered from (a weak reference keeps its address from being
    /// reused), and the page of each group ("" for all).
    pages: Mutex<(Weak<Overview>, Pages)>,
    /// Pages rendered at once, kept or searches: one per CPU. (Rendered on the async threads, as
    /// they were until 2026-12-07, at most as many rendered at once, but held up every other
    /// request meanwhile; on blocking threads without a bound, a flood of searches would each
    /// hold a page of up to 3 MB in memory at the same time.) A turn is held by the rendering
    /// itself, until it ends even when its request was given up.
    renders: Arc<Semaphore>,
}

impl Default for Rendered {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Rendered { pages: Mutex::default(), renders: Arc::new(Semaphore::new(cpus)) }
    }
}

/// The kept page of each group, once rendered.
type Pages = HashMap<String, Arc<OnceCell<Arc<Kept>>>>;

impl Rendered {
    /// Where the page of `group` rendered from `overview` is kept (the pages of an older overview
    /// are let go).
    fn slot(&self, overview: &Arc<Overview>, group: &str) -> Arc<OnceCell<Arc<Kept>>> {
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if !std::ptr::eq(pages.0.as_ptr(), Arc::as_ptr(overview)) {
            *pages = (Arc::downgrade(overview), HashMap::new());
        }
        Arc::clone(pages.1.entry(group.to_owned()).or_default())
    }
}

/// A kept page, in the coding the client weighs most (as it is when it accepts none, or when
/// compressing failed: the compression layer then does what it does for any answer).
async fn kept_page(app: &App, kept: &Kept, coding: Option<Coding>) -> Response {
    let encoded = match coding {
        Some(coding) => {
            kept.encoded(coding, || app.metrics.count_made(coding.made())).await.map(|bytes| (coding, bytes))
        }
        None => None,
    };
    let (sent, body) = match encoded {
        Some((coding, bytes)) => (Some(coding), bytes),
        None => (None, kept.plain()),
    };
    let mut response = reply::with_type(Body::from(body), reply::HTML);
    encoding::mark(response.headers_mut(), sent);
    reply::cached_for(response, app.cache_seconds)
}

/// Days left under which a certificate is flagged.
const CERTIFICATE_WARNING_DAYS: i64 = 14;

pub async fn page(State(app): State<App>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let params = match Params::parse(raw.as_deref(), &["group", "q"]) {
        Ok(params) => params,
        Err(failure) => return failure.page(&app.chrome),
    };
    let Ok(overview) = app.answers.overview().await else { return Failure::Unavailable.page(&app.chrome) };
    let group = params.get("group").unwrap_or_default().to_owned();
    let search = params.get("q").unwrap_or_default().to_owned();
    let kept = search.is_empty() && (group.is_empty() || overview.groups().contains(&group.as_str()));
    if kept {
        let slot = app.rendered.slot(&overview, &group);
        let rendered = slot
            .get_or_try_init(|| async {
                app.metrics.count_made("page");
                let html = render_off(&app, &overview, group, search).await?;
                Ok::<_, ()>(Arc::new(Kept::new(Bytes::from(html))))
            })
            .await;
        return match rendered {
            Ok(kept) => kept_page(&app, kept, Coding::accepted(&headers)).await,
            Err(()) => Failure::Unavailable.page(&app.chrome),
        };
    }
    match render_off(&app, &overview, group, search).await {
        Ok(html) => reply::cached_for(reply::with_type(Body::from(html), reply::HTML), app.cache_seconds),
        Err(()) => Failure::Unavailable.page(&app.chrome),
    }
}

/// The page of `group` ("" for all) and `search` ("" for none), rendered on a blocking thread: a
/// thousand sites take tens of milliseconds, which would hold up the other requests of an async
/// thread. It waits for its turn among the renderings ([`Rendered::renders`]). Failing, it is
/// logged.
async fn render_off(app: &App, overview: &Arc<Overview>, group: String, search: String) -> Result<String, ()> {
    let Ok(turn) = Arc::clone(&app.rendered.renders).acquire_owned().await else { return Err(()) };
    let (chrome, overview, cache_seconds) = (Arc::clone(&app.chrome), Arc::clone(overview), app.cache_seconds);
    let rendered = tokio::task::spawn_blocking(move || {
        let page = render(&chrome, &overview, &group, &search, cache_seconds);
        drop(turn);
        page
    })
    .await;
    match rendered {
        Ok(Ok(html)) => Ok(html),
        Ok(Err(err)) => {
            tracing::error!(cause = %err, "rendering the overview failed");
            Err(())
        }
        Err(err) => {
            tracing::error!(cause = %err, "rendering the overview failed");
            Err(())
        }
    }
}

fn render(
    chrome: &Chrome,
    overview: &Overview,
    group: &str,
    search_text: &str,
    cache_seconds: u64,
) -> Result<String, askama::Error> {
    // As of the overview's load, so that a page is the same for every request of a period.
    let now = overview.generated_at.unwrap_or_else(OffsetDateTime::now_utc);
    let search = search_text.to_lowercase();
    let groups = overview.groups();
    let rows: Vec<Row> = overview
        .sites
        .iter()
        .filter(|site| (group.is_empty() || site.group.as_deref() == Some(group)) && site.matches(&search))
        .map(|site| row(site, now))
        .collect();
    let [down, unknown, up] = overview.counts();
    let page = OverviewPage {
        chrome,
        groups: groups.iter().map(|name| (*name, *name == group)).collect(),
        search: search_text,
        filtered: rows.len() != overview.sites.len(),
        rows,
        total: overview.sites.len(),
        down,
        unknown,
        up,
        generated: format::time_seconds(now),
        cache_seconds,
        windows: Window::ALL.map(Window::label),
    };
    page.render()
}

fn row(site: &Site, now: OffsetDateTime) -> Row<'_> {
    let down_at: Vec<&str> = site.down_locations().map(|l| l.probe.as_str()).collect();
    let (certificate, certificate_class) = match site.certificate_days(now) {
        None => ("–".to_owned(), "none"),
        Some(days) if days < 0 => ("expired".to_owned(), "expired"),
        Some(days) if days < CERTIFICATE_WARNING_DAYS => (format!("{days} d"), "soon"),
        Some(days) => (format!("{days} d"), "fine"),
    };
    Row {
        site,
        group: site.group.as_deref().unwrap_or("–"),
        shape: svg::shape(site.state),
        down_at: if site.state == SiteState::Down { down_at.join(", ") } else { String::new() },
        locations: site.locations.iter().map(|l| (l.probe.as_str(), l.state.word(), svg::shape(l.state))).collect(),
        cells: Window::ALL.iter().map(|w| Cell::of(site.figures(*w), w.label())).collect(),
        bar: svg::day_bar(&site.days, true),
        p95: format::ms(site.latency.p95_ms),
        certificate,
        certificate_class,
    }
}
