//! Every shown site, computed from the overview's rows: its state per location, its figures over
//! the four windows, its 90 days, trouble first.

use std::collections::{BTreeMap, HashMap, HashSet};

use time::{Duration, OffsetDateTime};

use crate::{
    db::{LatencyRow, LatestRow, OverviewRows, TimelineRow},
    model::{
        figures::Figures,
        id::site_id,
        state::{site_state, State},
        Window,
    },
    settings::Groups,
};

/// Days in a site's bar.
pub const BAR_DAYS: usize = 90;

/// Latency percentiles in ms.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Latency {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Latency {
    /// The worst of two locations' (percentiles do not add up: the site shows its slowest place's).
    pub fn worst(self, other: Latency) -> Latency {
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Latency {
            p50_ms: max(self.p50_ms, other.p50_ms),
            p95_ms: max(self.p95_ms, other.p95_ms),
            p99_ms: max(self.p99_ms, other.p99_ms),
        }
    }
}

/// One place a site is probed from (a producer's `probe` name) and what it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub probe: String,
    pub state: State,
    pub latest: LatestRow,
    /// Per window, in [`Window::ALL`]'s order.
    pub windows: [Figures; 4],
    /// Over the last 24 hours.
    pub latency: Latency,
}

/// One UTC day of a site's bar, all its locations together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    pub date: time::Date,
    pub figures: Figures,
}

/// One site, all its locations together.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: String,
    pub url: String,
    /// Its `name`, else its URL as stored.
    pub name: String,
    pub named: bool,
    pub group: Option<String>,
    pub state: State,
    pub locations: Vec<Location>,
    pub windows: [Figures; 4],
    /// The last [`BAR_DAYS`] UTC days, oldest first, today last.
    pub days: Vec<Day>,
    /// Over the last 24 hours, the slowest location's.
    pub latency: Latency,
    /// The soonest expiry any location saw.
    pub tls_expires_at: Option<OffsetDateTime>,
    pub last_checked_at: OffsetDateTime,
}

impl Site {
    /// Its figures over `window`.
    pub fn figures(&self, window: Window) -> &Figures {
        &self.windows[window.index()]
    }

    /// The locations that say down.
    pub fn down_locations(&self) -> impl Iterator<Item = &Location> {
        self.locations.iter().filter(|l| l.state == State::Down)
    }

    /// Whole days until its certificate expires (negative once expired).
    pub fn certificate_days(&self, now: OffsetDateTime) -> Option<i64> {
        self.tls_expires_at.map(|at| (at - now).whole_days())
    }

    /// Whether `search` (lowercase) is in its name or its URL.
    pub fn matches(&self, search: &str) -> bool {
        search.is_empty() || self.name.to_lowercase().contains(search) || self.url.to_lowercase().contains(search)
    }
}

/// Every shown site, trouble first (down, then unknown, then up; by name within each).
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub generated_at: Option<OffsetDateTime>,
    pub sites: Vec<Site>,
    by_id: HashMap<String, usize>,
}

impl Overview {
    /// The overview of `rows` at `now`, showing only the sites of `groups`.
    pub fn build(rows: &OverviewRows, groups: &Groups, now: OffsetDateTime) -> Overview {
        let mut latest: BTreeMap<&str, Vec<&LatestRow>> = BTreeMap::new();
        for row in &rows.latest {
            latest.entry(row.url.as_str()).or_default().push(row);
        }
        let days = by_url(&rows.days);
        let hours = by_url(&rows.hours);
        let latency: HashMap<(&str, &str), &LatencyRow> =
            rows.latency.iter().map(|row| ((row.url.as_str(), row.probe.as_str()), row)).collect();
        let mut sites: Vec<Site> = latest
            .into_iter()
            .filter_map(|(url, reports)| {
                let newest = reports.iter().max_by_key(|r| r.checked_at)?;
                if !groups.shows(newest.site_group.as_deref()) {
                    return None;
                }
                let days = days.get(url).map_or(&[][..], Vec::as_slice);
                let hours = hours.get(url).map_or(&[][..], Vec::as_slice);
                Some(site(url, &reports, days, hours, &latency, now))
            })
            .collect();
        sites.sort_by(|a, b| (a.state, a.name.to_lowercase(), &a.url).cmp(&(b.state, b.name.to_lowercase(), &b.url)));
        let by_id = sites.iter().enumerate().map(|(at, site)| (site.id.clone(), at)).collect();
        Overview { generated_at: Some(now), sites, by_id }
    }

    /// The shown site of id `id`.
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.by_id.get(id).map(|at| &self.sites[*at])
    }

    /// The groups of the shown sites, sorted (the sites without one left out).
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self.sites.iter().filter_map(|s| s.group.as_deref()).collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    /// How many shown sites are in each state: down, unknown, up.
    pub fn counts(&self) -> [usize; 3] {
        let count = |state| self.sites.iter().filter(|s| s.state == state).count();
        [count(State::Down), count(State::Unknown), count(State::Up)]
    }
}

fn by_url(rows: &[TimelineRow]) -> HashMap<&str, Vec<&TimelineRow>> {
    let mut map: HashMap<&str, Vec<&TimelineRow>> = HashMap::new();
    for row in rows {
        map.entry(row.url.as_str()).or_default().push(row);
    }
    map
}

/// The figures of each window from the day buckets (7, 30, 90 days: the UTC days that overlap the
/// window, so each is rounded out to whole days) and the one bucket of the last 24 hours.
///
/// With several locations, pooled as `site_summary_pooled` pools (docs/archive.md): each location's
/// time counts once, over the locations with a row in the window. A location whose rows are all
/// older than the window (one retired last month, in a week's figures) is left out, not counted as
/// a location that measured nothing.
fn windows(days: &[&TimelineRow], hours: &[&TimelineRow], now: OffsetDateTime) -> [Figures; 4] {
    Window::ALL.map(|window| {
        let seconds = window.duration().as_seconds_f64();
        let since = now - window.duration();
        let rows: Vec<&TimelineRow> = match window {
            Window::Day => hours.to_vec(),
            _ => days.iter().filter(|row| row.bucket_start + Duration::DAY > since).copied().collect(),
        };
        let counted: HashSet<&str> = rows.iter().filter(|row| row.reached).map(|row| row.probe.as_str()).collect();
        Figures::over(rows.iter().filter(|row| counted.contains(row.probe.as_str())).map(|row| &row.bucket), seconds)
    })
}

fn site<'a>(
    url: &str,
    reports: &[&LatestRow],
    days: &[&'a TimelineRow],
    hours: &[&'a TimelineRow],
    latency: &HashMap<(&str, &str), &LatencyRow>,
    now: OffsetDateTime,
) -> Site {
    let newest = reports.iter().max_by_key(|r| r.checked_at).expect("a site has a latest report");
    let mut locations: Vec<Location> = reports
        .iter()
        .map(|report| {
            let of_probe = |rows: &[&'a TimelineRow]| -> Vec<&'a TimelineRow> {
                rows.iter().filter(|row| row.probe == report.probe).copied().collect()
            };
            let latency = latency.get(&(url, report.probe.as_str())).map_or_else(Latency::default, |row| Latency {
                p50_ms: row.p50_ms,
                p95_ms: row.p95_ms,
                p99_ms: row.p99_ms,
            });
            Location {
                probe: report.probe.clone(),
                state: report.state,
                latest: (*report).clone(),
                windows: windows(&of_probe(days), &of_probe(hours), now),
                latency,
            }
        })
        .collect();
    locations.sort_by(|a, b| (a.state, &a.probe).cmp(&(b.state, &b.probe)));
    let today = now.date();
    let bar = (0..BAR_DAYS)
        .rev()
        .map(|ago| {
            let date = today - Duration::days(ago as i64);
            let buckets = days.iter().filter(|row| row.bucket_start.date() == date).map(|row| &row.bucket);
            Day { date, figures: Figures::over(buckets, Duration::DAY.as_seconds_f64()) }
        })
        .collect();
    Site {
        id: site_id(url),
        url: url.to_owned(),
        name: newest.site_name.clone().unwrap_or_else(|| url.to_owned()),
        named: newest.site_name.is_some(),
        group: newest.site_group.clone(),
        state: site_state(locations.iter().map(|l| l.state)),
        windows: windows(days, hours, now),
        days: bar,
        latency: locations.iter().fold(Latency::default(), |worst, l| worst.worst(l.latency)),
        tls_expires_at: reports.iter().filter_map(|r| r.tls_expires_at).min(),
        last_checked_at: newest.checked_at,
        locations,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use time::macros::datetime;

    use super::*;
    use crate::model::figures::Bucket;

    fn now() -> OffsetDateTime {
        datetime!(2026-06-01 12:30 UTC)
    }

    /// A latest report every minute, with the state `site_states` gives it (unknown after 2 minutes).
    fn latest(url: &str, probe: &str, minutes_ago: i64, error: Option<&str>) -> LatestRow {
        let state = match (minutes_ago > 2, error) {
            (true, _) => State::Unknown,
            (false, Some(_)) => State::Down,
            (false, None) => State::Up,
        };
        LatestRow {
            url: url.into(),
            probe: probe.into(),
            state,
            consecutive_failures: i64::from(error.is_some()),
            checked_at: now() - Duration::minutes(minutes_ago),
            code: if error.is_some() { 0 } else { 200 },
            response_ms: 12.0,
            error_kind: error.map(str::to_owned),
            error_message: error.map(|e| format!("{e} failed")),
            inconclusive: false,
            interval_s: Some(60),
            tls_expires_at: None,
            tls_chain_expires_at: None,
            site_name: None,
            site_group: None,
        }
    }

    /// A whole day of `url` measured by `probe` with `down_s` of it down; `days_ago` 0 is today
    /// (measured up to now).
    fn day(url: &str, probe: &str, days_ago: i64, down_s: f64) -> TimelineRow {
        let start = now().replace_time(time::Time::MIDNIGHT) - Duration::days(days_ago);
        let span = if days_ago == 0 { (now() - start).as_seconds_f64() } else { 86_400.0 };
        TimelineRow {
            url: url.into(),
            probe: probe.into(),
            bucket_start: start,
            bucket: Bucket {
                probes: 1440,
                successes: 1440,
                measured_s: Some(span),
                unknown_s: Some(0.0),
                down_s: Some(down_s),
            },
            reached: true,
        }
    }

    fn unmeasured_day(url: &str, probe: &str, days_ago: i64) -> TimelineRow {
        let mut row = day(url, probe, days_ago, 0.0);
        row.bucket =
            Bucket { probes: 0, successes: 0, measured_s: Some(0.0), unknown_s: Some(86_400.0), down_s: Some(0.0) };
        row.reached = false;
        row
    }

    fn build(rows: &OverviewRows) -> Overview {
        Overview::build(rows, &Groups::All, now())
    }

    #[test]
    fn sites_in_trouble_come_first_then_by_name() {
        let mut named = latest("https://b.test/", "eu", 1, None);
        named.site_name = Some("Alpha".into());
        let rows = OverviewRows {
            latest: vec![
                latest("https://a.test/", "eu", 1, None),
                named,
                latest("https://c.test/", "eu", 1, Some("connect")),
                latest("https://d.test/", "eu", 60, None),
            ],
            ..OverviewRows::default()
        };

        let overview = build(&rows);

        let order: Vec<(&str, State)> = overview.sites.iter().map(|s| (s.name.as_str(), s.state)).collect();
        assert_eq!(
            order,
            [
                ("https://c.test/", State::Down),
                ("https://d.test/", State::Unknown),
                ("Alpha", State::Up),
                ("https://a.test/", State::Up)
            ]
        );
        assert_eq!(overview.counts(), [1, 1, 2]);
        let id = site_id("https://b.test/");
        assert_eq!(overview.site(&id).map(|s| s.url.as_str()), Some("https://b.test/"));
        assert!(overview.site("000000000000").is_none());
    }

    #[test]
    fn a_site_is_down_when_one_location_is_and_says_which() {
        let rows = OverviewRows {
            latest: vec![latest("https://a.test/", "eu", 1, None), latest("https://a.test/", "us", 1, Some("timeout"))],
            ..OverviewRows::default()
        };

        let overview = build(&rows);

        let site = &overview.sites[0];
        assert_eq!(site.state, State::Down);
        assert_eq!(site.down_locations().map(|l| l.probe.as_str()).collect::<Vec<_>>(), ["us"]);
        assert_eq!(site.locations.len(), 2);
    }

    #[test]
    fn windows_of_whole_days_and_a_grey_day_where_nobody_measured() {
        let url = "https://a.test/";
        let mut days = vec![day(url, "eu", 0, 0.0), day(url, "eu", 1, 864.0), unmeasured_day(url, "eu", 2)];
        days.extend((3..=90).map(|ago| day(url, "eu", ago, 0.0)));
        let rows = OverviewRows { latest: vec![latest(url, "eu", 1, None)], days, ..OverviewRows::default() };

        let site = build(&rows).sites.remove(0);

        let week = site.figures(Window::Week);
        // Today (12.5 h) and the 7 UTC days before it (the 7th overlaps the window's start), one unknown.
        assert_eq!(week.measured_s, Some(12.5 * 3600.0 + 6.0 * 86_400.0));
        assert_eq!(week.unknown_s, Some(86_400.0));
        assert_eq!(week.down_s, Some(864.0));
        let grey = &site.days[BAR_DAYS - 3];
        assert_eq!(grey.date, time::macros::date!(2026 - 05 - 30));
        assert_eq!((grey.figures.coverage, grey.figures.shown_uptime()), (Some(0.0), None), "no data that day");
        assert_eq!(site.days.len(), BAR_DAYS);
        assert_eq!(site.days[BAR_DAYS - 1].date, now().date(), "today last");
        assert_eq!(site.days[BAR_DAYS - 2].figures.measured_uptime, Some(0.99));
        let day_window = site.figures(Window::Day);
        assert_eq!((day_window.coverage, day_window.shown_uptime()), (Some(0.0), None), "no hourly rows: unknown");
    }

    #[test]
    fn a_location_counts_in_the_windows_where_it_has_a_row_and_stays_unknown_time_in_those() {
        // eu measures every day; us stopped 20 days ago (site_days still gives its 90 days, those
        // since it stopped as days nobody measured), so it has no latest report any more.
        let url = "https://a.test/";
        let mut days: Vec<TimelineRow> = (0..=90).map(|ago| day(url, "eu", ago, 0.0)).collect();
        days.extend((0..20).map(|ago| unmeasured_day(url, "us", ago)));
        days.extend((20..=90).map(|ago| day(url, "us", ago, 0.0)));
        let rows = OverviewRows { latest: vec![latest(url, "eu", 1, None)], days, ..OverviewRows::default() };

        let site = build(&rows).sites.remove(0);

        let week = site.figures(Window::Week);
        assert_eq!(week.coverage, Some(1.0), "us has no row in the week: eu alone counts");
        assert_eq!(week.probes, 8 * 1440);
        let month = site.figures(Window::Month);
        let coverage = month.coverage.expect("measured");
        assert!(coverage > 0.5 && coverage < 0.75, "us's last 20 days are unknown in the 30 days: {coverage}");
        assert_eq!(month.unknown_s, Some(20.0 * 86_400.0), "its 20 days since it stopped");
        assert_eq!(site.days[BAR_DAYS - 2].figures.coverage, Some(0.5), "yesterday: one of the 90 days' two locations");
    }

    #[test]
    fn only_the_shown_groups_are_listed_and_found() {
        let mut public = latest("https://p.test/", "eu", 1, None);
        public.site_group = Some("Public".into());
        let mut internal = latest("https://i.test/", "eu", 1, None);
        internal.site_group = Some("Internal".into());
        let rows = OverviewRows {
            latest: vec![public, internal, latest("https://n.test/", "eu", 1, None)],
            ..OverviewRows::default()
        };

        for (groups, shown) in [
            (Groups::All, vec!["https://i.test/", "https://n.test/", "https://p.test/"]),
            (Groups::Only(BTreeSet::from(["Public".to_owned()])), vec!["https://p.test/"]),
            (
                Groups::Only(BTreeSet::from(["Public".to_owned(), String::new()])),
                vec!["https://n.test/", "https://p.test/"],
            ),
        ] {
            let overview = Overview::build(&rows, &groups, now());
            let urls: Vec<&str> = overview.sites.iter().map(|s| s.url.as_str()).collect();
            assert_eq!(urls, shown, "{groups:?}");
            assert_eq!(overview.site(&site_id("https://i.test/")).is_some(), groups == Groups::All, "{groups:?}");
        }
    }

    #[test]
    fn the_site_shows_its_slowest_location_and_soonest_certificate() {
        let url = "https://a.test/";
        let mut eu = latest(url, "eu", 1, None);
        eu.tls_expires_at = Some(now() + Duration::days(40));
        let mut us = latest(url, "us", 2, None);
        us.tls_expires_at = Some(now() + Duration::days(10) + Duration::hours(3));
        let latency = |probe: &str, p95: f64| LatencyRow {
            url: url.into(),
            probe: probe.into(),
            at: None,
            p50_ms: Some(p95 / 2.0),
            p95_ms: Some(p95),
            p99_ms: None,
        };
        let rows = OverviewRows {
            latest: vec![eu, us],
            latency: vec![latency("eu", 120.0), latency("us", 340.0)],
            ..OverviewRows::default()
        };

        let site = build(&rows).sites.remove(0);

        assert_eq!(site.latency.p95_ms, Some(340.0));
        assert_eq!(site.certificate_days(now()), Some(10));
        assert_eq!(site.last_checked_at, now() - Duration::minutes(1));
    }
}
