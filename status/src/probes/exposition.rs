//! The per-site metrics as Prometheus exposition text (the official `prometheus-client`, in the
//! OpenMetrics text format): blackbox_exporter's names, units and meanings where one exists,
//! Websentry's own beside them (docs/metrics.md lists both). A pure function of the rows: a fresh
//! registry per exposition, so a site that is no longer read is no longer exported.
//!
//! The registry holds one [`Collector`] that writes every series straight from the rows as it is
//! encoded, rather than a family of gauges per metric: for 10,000 sites (about 200,000 series)
//! that keeps no label set per series in memory, only the rows and the text.

use std::collections::HashMap;

use prometheus_client::{
    collector::Collector,
    encoding::{text::encode, DescriptorEncoder},
    metrics::MetricType,
    registry::{Registry, Unit},
};
use time::OffsetDateTime;

use super::rows::{ProbeRow, ProbeRows, WINDOWS};
use crate::settings::Groups;

/// Reads one phase's time (ms) from a row.
type Timing = fn(&ProbeRow) -> Option<f64>;

/// The phases of `probe_http_duration_seconds`, as blackbox_exporter names them, each with the
/// report's timing it is read from.
const PHASES: [(&str, Timing); 5] = [
    ("resolve", |row| row.timing_dns_ms),
    ("connect", |row| row.timing_connect_ms),
    ("tls", |row| row.timing_tls_ms),
    ("processing", |row| row.timing_ttfb_ms),
    ("transfer", |row| row.timing_transfer_ms),
];

/// The text of one site takes about 3 KB (measured: 30.4 MB for 10,000 sites).
const BYTES_PER_SITE: usize = 3_200;

/// Uptime and coverage of one site over one window.
type Figures = (Option<f64>, Option<f64>);
/// A label of one series beside the site's own (`phase`, `window`).
type Extra = Option<(&'static str, &'static str)>;
/// The samples of one site in one family.
type Samples = Vec<(Extra, f64)>;

/// One metric: its name (without the unit's suffix), help, unit, and its samples for a site.
struct Metric {
    name: &'static str,
    help: &'static str,
    seconds: bool,
    samples: fn(&Site, &mut Samples),
}

/// Every metric, in the order of the exposition.
const METRICS: [Metric; 14] = [
    Metric {
        name: "probe_success",
        help: "1 when the latest conclusive probe succeeded, 0 when it failed",
        seconds: false,
        // An inconclusive failure (its round's canaries failed too) says nothing of the site: unknown.
        samples: |site, out| {
            if site.row.state != "unknown" {
                out.push((None, if site.row.error_kind.is_none() { 1.0 } else { 0.0 }));
            }
        },
    },
    Metric {
        name: "probe_duration",
        help: "The latest probe's whole time",
        seconds: true,
        samples: |site, out| out.push((None, site.row.response_ms / 1000.0)),
    },
    Metric {
        name: "probe_http_status_code",
        help: "The final HTTP status of the latest probe, 0 without one",
        seconds: false,
        samples: |site, out| out.push((None, f64::from(site.row.code))),
    },
    Metric {
        name: "probe_http_duration",
        help: "The latest probe's final request by phase (resolve, connect, tls, processing, transfer), 0 when it did not happen",
        seconds: true,
        samples: |site, out| {
            for (phase, timing) in PHASES {
                out.push((Some(("phase", phase)), timing(&site.row).unwrap_or(0.0) / 1000.0));
            }
        },
    },
    Metric {
        name: "probe_http_redirects",
        help: "Redirects the latest probe followed",
        seconds: false,
        samples: |site, out| out.push((None, f64::from(site.row.redirects))),
    },
    Metric {
        name: "probe_http_version",
        help: "The HTTP version of the latest probe's final response, 0 without one",
        seconds: false,
        samples: |site, out| out.push((None, http_version(site.row.http_version.as_deref()))),
    },
    Metric {
        name: "probe_failed_due_to_regex",
        help: "1 when the latest probe's body could not be searched in time (regex_limit), else 0",
        seconds: false,
        samples: |site, out| {
            out.push((None, if site.row.error_kind.as_deref() == Some("regex_limit") { 1.0 } else { 0.0 }));
        },
    },
    Metric {
        name: "probe_ssl_earliest_cert_expiry",
        help: "Unix time of the earliest notAfter of the certificate chain the site presented",
        seconds: false,
        samples: |site, out| {
            if let Some(chain) = site.row.tls_chain_expires_at.or(site.row.tls_expires_at) {
                out.push((None, unix(chain)));
            }
        },
    },
    Metric {
        name: "websentry_ssl_leaf_cert_expiry_timestamp",
        help: "Unix time of the leaf certificate's notAfter",
        seconds: true,
        samples: |site, out| out.extend(site.row.tls_expires_at.map(|leaf| (None, unix(leaf)))),
    },
    Metric {
        name: "websentry_site_uptime_ratio",
        help: "Up time over the measured time of the window",
        seconds: false,
        samples: |site, out| site.windows(out, |(uptime, _)| uptime),
    },
    Metric {
        name: "websentry_site_coverage_ratio",
        help: "Measured time over the window",
        seconds: false,
        samples: |site, out| site.windows(out, |(_, coverage)| coverage),
    },
    Metric {
        name: "websentry_site_last_checked_timestamp",
        help: "Unix time of the latest report",
        seconds: true,
        samples: |site, out| out.push((None, unix(site.row.checked_at))),
    },
    Metric {
        name: "websentry_site_consecutive_failures",
        help: "Conclusive failures in a row up to the latest report",
        seconds: false,
        // Counted in SQL, at most the reports kept: exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        samples: |site, out| out.push((None, site.row.consecutive_failures as f64)),
    },
    Metric {
        name: "websentry_site_interval",
        help: "The cadence the latest report states",
        seconds: true,
        samples: |site, out| out.extend(site.row.interval_s.map(|interval| (None, f64::from(interval)))),
    },
];

/// One (site, location) exported, with its figures per window (uptime, coverage), in the order
/// of [`WINDOWS`].
#[derive(Debug)]
struct Site {
    row: ProbeRow,
    windows: [Figures; 3],
}

impl Site {
    fn windows(&self, out: &mut Samples, figure: fn(Figures) -> Option<f64>) {
        for (window, figures) in WINDOWS.iter().zip(self.windows) {
            if let Some(value) = figure(figures) {
                out.push((Some(("window", window.label())), value));
            }
        }
    }
}

/// Every series of the shown sites, written as the registry is encoded.
#[derive(Debug)]
struct Sites(Vec<Site>);

impl Collector for Sites {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut samples = Samples::with_capacity(PHASES.len());
        for metric in &METRICS {
            let unit = metric.seconds.then_some(Unit::Seconds);
            let mut family = encoder.encode_descriptor(metric.name, metric.help, unit.as_ref(), MetricType::Gauge)?;
            for site in &self.0 {
                samples.clear();
                (metric.samples)(site, &mut samples);
                for (extra, value) in &samples {
                    let row = &site.row;
                    // instance (the URL as stored), probe (the location), name (the URL when the
                    // site has none), group (left out when none), then the metric's own.
                    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(5);
                    labels.push(("instance", &row.url));
                    labels.push(("probe", &row.probe));
                    labels.push(("name", row.site_name.as_deref().unwrap_or(&row.url)));
                    if let Some(group) = row.site_group.as_deref().filter(|group| !group.is_empty()) {
                        labels.push(("group", group));
                    }
                    labels.extend(*extra);
                    family.encode_family(&labels)?.encode_gauge(value)?;
                }
            }
        }
        Ok(())
    }
}

/// The exposition of `rows`, for the sites of `groups`.
pub fn render(rows: ProbeRows, groups: &Groups) -> String {
    let mut windows: HashMap<(&str, &str), [Figures; 3]> = HashMap::new();
    for window in rows.windows.iter() {
        if let Some(at) = WINDOWS.iter().position(|w| *w == window.window) {
            windows.entry((&window.url, &window.probe)).or_default()[at] = (window.uptime, window.coverage);
        }
    }
    let sites: Vec<Site> = rows
        .states
        .into_iter()
        .filter(|row| groups.shows(row.site_group.as_deref()))
        .map(|row| {
            let figures = windows.get(&(row.url.as_str(), row.probe.as_str())).copied().unwrap_or_default();
            Site { row, windows: figures }
        })
        .collect();
    let mut out = String::with_capacity(sites.len() * BYTES_PER_SITE + 4_096);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Sites(sites)));
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

/// `HTTP/1.1` → 1.1, `HTTP/2.0` → 2, as blackbox_exporter says it; 0 without a response.
fn http_version(version: Option<&str>) -> f64 {
    version.and_then(|v| v.strip_prefix("HTTP/").unwrap_or(v).parse().ok()).unwrap_or(0.0)
}

fn unix(at: OffsetDateTime) -> f64 {
    // Seconds since 1970 and a fraction: exact to the microsecond for centuries.
    #[allow(clippy::cast_precision_loss)]
    let whole = at.unix_timestamp() as f64;
    whole + f64::from(at.nanosecond()) / 1e9
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::{model::Window, probes::rows::WindowRow};

    fn up(url: &str) -> ProbeRow {
        ProbeRow {
            url: url.into(),
            probe: "eu".into(),
            site_name: None,
            site_group: None,
            state: "up".into(),
            consecutive_failures: 0,
            checked_at: datetime!(2026-12-05 07:00:00.5 UTC),
            interval_s: Some(60),
            code: 200,
            response_ms: 48.5,
            error_kind: None,
            http_version: Some("HTTP/2.0".into()),
            redirects: 1,
            timing_dns_ms: None,
            timing_connect_ms: Some(10.0),
            timing_tls_ms: Some(20.0),
            timing_ttfb_ms: Some(15.0),
            timing_transfer_ms: Some(3.5),
            tls_expires_at: Some(datetime!(2040-06-30 0:00 UTC)),
            tls_chain_expires_at: Some(datetime!(2031-01-15 0:00 UTC)),
        }
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn a_site_up_is_exported_with_blackbox_names_and_units() {
        let rows = ProbeRows {
            states: vec![up("https://a.example/")],
            windows: std::sync::Arc::new(vec![WindowRow {
                url: "https://a.example/".into(),
                probe: "eu".into(),
                window: Window::Week,
                uptime: Some(0.99),
                coverage: None,
            }]),
        };
        let text = render(rows, &Groups::All);
        let site = r#"instance="https://a.example/",probe="eu",name="https://a.example/""#;
        for (series, value) in [
            (format!("probe_success{{{site}}}"), "1.0"),
            (format!("probe_duration_seconds{{{site}}}"), "0.0485"),
            (format!("probe_http_status_code{{{site}}}"), "200.0"),
            (format!("probe_http_duration_seconds{{{site},phase=\"resolve\"}}"), "0.0"),
            (format!("probe_http_duration_seconds{{{site},phase=\"transfer\"}}"), "0.0035"),
            (format!("probe_http_redirects{{{site}}}"), "1.0"),
            (format!("probe_http_version{{{site}}}"), "2.0"),
            (format!("probe_failed_due_to_regex{{{site}}}"), "0.0"),
            (format!("probe_ssl_earliest_cert_expiry{{{site}}}"), "1926201600.0"),
            (format!("websentry_ssl_leaf_cert_expiry_timestamp_seconds{{{site}}}"), "2224627200.0"),
            (format!("websentry_site_last_checked_timestamp_seconds{{{site}}}"), "1796454000.5"),
            (format!("websentry_site_uptime_ratio{{{site},window=\"7d\"}}"), "0.99"),
            (format!("websentry_site_interval_seconds{{{site}}}"), "60.0"),
        ] {
            assert_eq!(sample(&text, &series), Some(value), "{series} in:\n{text}");
        }
        assert!(!text.contains("websentry_site_coverage_ratio{"), "no coverage without a cadence:\n{text}");
        assert!(text.contains("# TYPE probe_success gauge"), "{text}");
        assert!(text.contains("# UNIT probe_duration_seconds seconds"), "{text}");
    }

    #[test]
    fn a_failure_is_0_an_inconclusive_one_unknown_and_hidden_groups_are_not_exported() {
        let down = ProbeRow {
            state: "down".into(),
            error_kind: Some("connect".into()),
            code: 0,
            http_version: None,
            tls_expires_at: None,
            tls_chain_expires_at: None,
            site_group: Some("Public".into()),
            site_name: Some("Shop".into()),
            ..up("http://down.example/")
        };
        let unknown = ProbeRow { state: "unknown".into(), error_kind: Some("timeout".into()), ..down.clone() };
        let unknown = ProbeRow { probe: "us".into(), ..unknown };
        let hidden = ProbeRow { site_group: Some("Internal".into()), ..up("http://hidden.example/") };
        let rows = ProbeRows { states: vec![down, unknown, hidden], windows: Default::default() };

        let text = render(rows, &Groups::Only(["Public".to_owned()].into()));

        let site = r#"instance="http://down.example/",probe="eu",name="Shop",group="Public""#;
        assert_eq!(sample(&text, &format!("probe_success{{{site}}}")), Some("0.0"), "{text}");
        assert_eq!(sample(&text, &format!("probe_http_version{{{site}}}")), Some("0.0"), "{text}");
        assert!(!text.contains(r#"probe_success{instance="http://down.example/",probe="us""#), "{text}");
        assert!(text.contains(r#"probe_duration_seconds{instance="http://down.example/",probe="us""#), "{text}");
        assert!(!text.contains("hidden.example"), "{text}");
        assert!(!text.contains("probe_ssl_earliest_cert_expiry{"), "{text}");
    }

    #[test]
    fn versions_read_as_blackbox_says_them() {
        for (given, expected) in
            [(Some("HTTP/1.1"), 1.1), (Some("HTTP/2.0"), 2.0), (Some("HTTP/1.0"), 1.0), (None, 0.0)]
        {
            assert!((http_version(given) - expected).abs() < 1e-9, "{given:?}");
        }
    }
}
