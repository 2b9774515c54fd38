//! `/sites/{id}`: one site: its state per location, its windows, its 90 days one by one, its
//! latency per hour (7 days) and per day (90 days), its outages, its last reports and its
//! certificate.

use std::collections::BTreeMap;

use askama::Template;
use axum::{
    extract::{rejection::PathRejection, Path, RawQuery, State},
    response::Response,
};
use time::{Duration, OffsetDateTime};

use super::format::{self, Cell};
use crate::{
    db::{DetailRows, LatencyRow},
    model::{figures::duration, Site, Window},
    query::{self, Params},
    reply::{self, Chrome, Failure},
    routes::App,
    svg::{self, Point},
};

pub struct LocationRow<'a> {
    pub probe: &'a str,
    pub state: &'static str,
    pub shape: &'static str,
    pub checked: String,
    pub outcome: String,
    pub response: String,
    pub certificate: String,
}

pub struct WindowRow {
    pub label: &'static str,
    pub cell: Cell,
    pub measured: String,
    pub unknown: String,
    pub down: String,
}

pub struct OutageRow<'a> {
    pub probe: &'a str,
    pub started: String,
    pub ended: String,
    pub ongoing: bool,
    pub duration: String,
    pub failures: i64,
    pub kinds: String,
}

pub struct ReportRow<'a> {
    pub at: String,
    pub probe: &'a str,
    pub outcome: String,
    pub failed: bool,
    pub message: &'a str,
    pub inconclusive: bool,
    pub total: String,
    pub dns: String,
    pub connect: String,
    pub tls: String,
    pub ttfb: String,
    pub transfer: String,
}

#[derive(Template)]
#[template(path = "site.html")]
struct SitePage<'a> {
    chrome: &'a Chrome,
    site: &'a Site,
    shape: &'static str,
    down_at: String,
    group: &'a str,
    locations: Vec<LocationRow<'a>>,
    windows: Vec<WindowRow>,
    bar: String,
    hourly: Vec<(String, String)>,
    daily: Vec<(String, String)>,
    outages: Vec<OutageRow<'a>>,
    reports: Vec<ReportRow<'a>>,
    generated: String,
    cache_seconds: u64,
}

pub async fn page(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Ok(Path(id)) = id else { return Failure::NotFound.page(&app.chrome) };
    let found = async {
        let id = query::site_id(&id)?;
        Params::parse(raw.as_deref(), &[])?;
        let overview = app.answers.overview().await.map_err(|_| Failure::Unavailable)?;
        let site = overview.site(id).ok_or(Failure::NotFound)?;
        let detail = app.answers.detail(&site.url).await.map_err(|_| Failure::Unavailable)?;
        let now = OffsetDateTime::now_utc();
        let page = SitePage {
            chrome: &app.chrome,
            site,
            shape: svg::shape(site.state),
            down_at: site.down_locations().map(|l| l.probe.as_str()).collect::<Vec<_>>().join(", "),
            group: site.group.as_deref().unwrap_or("–"),
            locations: locations(site),
            windows: Window::ALL
                .iter()
                .map(|w| {
                    let figures = site.figures(*w);
                    let seconds = |s: Option<f64>| s.map_or_else(|| "–".to_owned(), duration);
                    WindowRow {
                        label: w.label(),
                        cell: Cell::of(figures, w.label()),
                        measured: seconds(figures.measured_s),
                        unknown: seconds(figures.unknown_s),
                        down: seconds(figures.down_s),
                    }
                })
                .collect(),
            bar: svg::day_bar(&site.days, false),
            hourly: charts(&detail.hourly_latency, now - Duration::days(7), now, Duration::HOUR, "per hour, 7 days"),
            daily: charts(&detail.daily_latency, now - Duration::days(90), now, Duration::DAY, "per day, 90 days"),
            outages: outages(&detail),
            reports: reports(&detail),
            generated: format::time_seconds(overview.generated_at.unwrap_or(now)),
            cache_seconds: app.cache_seconds,
        };
        page.render().map_err(|err| {
            tracing::error!(cause = %err, "rendering a site's page failed");
            Failure::Unavailable
        })
    };
    match found.await {
        Ok(html) => reply::cached_for(reply::html(html), app.cache_seconds),
        Err(failure) => failure.page(&app.chrome),
    }
}

fn locations(site: &Site) -> Vec<LocationRow<'_>> {
    site.locations
        .iter()
        .map(|l| LocationRow {
            probe: &l.probe,
            state: l.state.word(),
            shape: svg::shape(l.state),
            checked: format::time(l.latest.checked_at),
            outcome: outcome(
                l.latest.code,
                l.latest.error_kind.as_deref(),
                l.latest.error_message.as_deref(),
                l.latest.inconclusive,
            ),
            response: format::ms(Some(l.latest.response_ms)),
            certificate: l.latest.tls_expires_at.map_or_else(
                || "–".to_owned(),
                |at| format!("expires {} ({} days)", format::time(at), (at - OffsetDateTime::now_utc()).whole_days()),
            ),
        })
        .collect()
}

/// What a report says: its HTTP status, or its error.
fn outcome(code: i32, error_kind: Option<&str>, message: Option<&str>, inconclusive: bool) -> String {
    match (error_kind, inconclusive) {
        (None, _) => format!("HTTP {code}"),
        (Some(kind), false) => format!("{kind}: {}", message.unwrap_or_default()),
        (Some(kind), true) => format!("{kind} (inconclusive: the producer's own network failed too)"),
    }
}

/// One chart per location of `rows` (`site_latency`), from `from` to `to`.
fn charts(
    rows: &[LatencyRow],
    from: OffsetDateTime,
    to: OffsetDateTime,
    step: Duration,
    what: &str,
) -> Vec<(String, String)> {
    let mut by_probe: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for row in rows {
        if let Some(at) = row.at {
            by_probe.entry(&row.probe).or_default().push(Point { at, p50_ms: row.p50_ms, p95_ms: row.p95_ms });
        }
    }
    if by_probe.is_empty() {
        return vec![(String::new(), svg::latency_chart(&[], from, to, step, &format!("Latency {what}: no data")))];
    }
    by_probe
        .into_iter()
        .map(|(probe, points)| {
            let title = format!("Latency p50 and p95 at {probe}, {what}");
            (probe.to_owned(), svg::latency_chart(&points, from, to, step, &title))
        })
        .collect()
}

fn outages(detail: &DetailRows) -> Vec<OutageRow<'_>> {
    detail
        .outages
        .iter()
        .map(|o| OutageRow {
            probe: &o.probe,
            started: format::time_seconds(o.started_at),
            ended: o.ended_at.map_or_else(|| "ongoing".to_owned(), format::time_seconds),
            ongoing: o.ended_at.is_none(),
            duration: duration(o.duration_s),
            failures: o.failures,
            kinds: o.error_kinds.join(", "),
        })
        .collect()
}

fn reports(detail: &DetailRows) -> Vec<ReportRow<'_>> {
    detail
        .reports
        .iter()
        .map(|r| ReportRow {
            at: format::time_seconds(r.checked_at),
            probe: &r.probe,
            outcome: match &r.error_kind {
                None => format!("HTTP {}", r.code),
                Some(kind) => kind.clone(),
            },
            failed: r.error_kind.is_some(),
            message: r.error_message.as_deref().unwrap_or_default(),
            inconclusive: r.inconclusive,
            total: format::ms(Some(r.response_ms)),
            dns: format::ms(r.timing_dns_ms),
            connect: format::ms(r.timing_connect_ms),
            tls: format::ms(r.timing_tls_ms),
            ttfb: format::ms(r.timing_ttfb_ms),
            transfer: format::ms(r.timing_transfer_ms),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_a_status_or_an_error_said_plainly() {
        assert_eq!(outcome(200, None, None, false), "HTTP 200");
        assert_eq!(outcome(0, Some("timeout"), Some("no answer in 10 s"), false), "timeout: no answer in 10 s");
        assert!(outcome(0, Some("dns"), None, true).contains("inconclusive"));
    }

    #[test]
    fn a_site_without_latency_gets_one_empty_chart_that_says_so() {
        let now = OffsetDateTime::now_utc();
        let charts = charts(&[], now - Duration::days(7), now, Duration::HOUR, "per hour, 7 days");
        assert_eq!(charts.len(), 1);
        assert!(charts[0].1.contains("no successful probe"), "{}", charts[0].1);
    }
}
