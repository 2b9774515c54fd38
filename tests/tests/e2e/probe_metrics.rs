//! The per-site metrics of `websentry-status` (`/probes/metrics`) after a real producer → Kafka →
//! consumer run: blackbox_exporter's names and types with the values the reports say, the labels,
//! sites not measured lately left out, and the answer cached.

use std::time::Duration;

use websentry_shared::report::{ErrorKind, ProbeError};
use websentry_tests::{
    eventually,
    probe_sites::{unix_midnight, ProbedSites, CADENCE_S, CHAIN_NOT_AFTER, LEAF_NOT_AFTER, PROBE_NAME},
    sample_report, Exposition, Stack, StatusServer,
};

const GAUGES: [&str; 14] = [
    "probe_success",
    "probe_duration_seconds",
    "probe_http_status_code",
    "probe_http_duration_seconds",
    "probe_http_redirects",
    "probe_http_version",
    "probe_failed_due_to_regex",
    "probe_ssl_earliest_cert_expiry",
    "websentry_ssl_leaf_cert_expiry_timestamp_seconds",
    "websentry_site_uptime_ratio",
    "websentry_site_coverage_ratio",
    "websentry_site_last_checked_timestamp_seconds",
    "websentry_site_consecutive_failures",
    "websentry_site_interval_seconds",
];

/// The labels of `url` probed from [`PROBE_NAME`].
fn at(url: &str) -> [(&'static str, &str); 2] {
    [("instance", url), ("probe", PROBE_NAME)]
}

fn scrape(status: &StatusServer) -> Exposition {
    let answer = status.get("/probes/metrics");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        answer.headers
    );
    Exposition::parse(&answer.text()).unwrap_or_else(|err| panic!("{err}\n{}", answer.text()))
}

/// Sites probed twice, plus a report an hour old (not measured lately), one fresh (its control)
/// and an inconclusive failure, all three straight into the topic.
fn sites() -> (ProbedSites, [String; 3]) {
    let mut stale = sample_report("http://stale.test/");
    stale.checked_at -= time::Duration::hours(1);
    let fresh = sample_report("http://fresh.test/");
    let mut inconclusive = sample_report("http://flaky.test/");
    inconclusive.error = Some(ProbeError { kind: ErrorKind::Timeout, message: "timed out".into() });
    inconclusive.inconclusive = true;
    inconclusive.code = 0;
    let urls = [stale.url.clone(), fresh.url.clone(), inconclusive.url.clone()];
    (Stack::get().archive_probed_sites(2, &[stale, fresh, inconclusive]), urls)
}

#[test]
fn every_site_measured_lately_is_exported_with_blackbox_names_types_and_values() {
    let (sites, [stale, fresh, flaky]) = sites();
    let status = StatusServer::start(Stack::get().status(&sites.db));

    let m = scrape(&status);

    for name in GAUGES {
        assert_eq!(m.type_of(name), Some("gauge"), "{name}: {:?}", m.types);
    }
    for name in ["probe_duration_seconds", "probe_http_duration_seconds", "websentry_site_interval_seconds"] {
        assert_eq!(m.units.get(name).map(String::as_str), Some("seconds"), "{name}");
    }
    let (up, down, redirected, https) = (at(&sites.up), at(&sites.down), at(&sites.redirected), at(&sites.https));

    // Up and down, from a real probe.
    assert_eq!(m.value("probe_success", &up), Some(1.0));
    assert_eq!(m.value("probe_success", &down), Some(0.0));
    assert_eq!(m.value("probe_http_status_code", &up), Some(200.0));
    assert_eq!(m.value("probe_http_status_code", &down), Some(0.0));
    assert_eq!(m.value("probe_http_version", &up), Some(1.1));
    assert_eq!(m.value("probe_http_version", &down), Some(0.0));
    assert_eq!(m.value("websentry_site_consecutive_failures", &down), Some(2.0), "two rounds, both failed");
    assert_eq!(m.value("websentry_site_consecutive_failures", &up), Some(0.0));
    let duration = m.value("probe_duration_seconds", &up).expect("a duration");
    assert!(duration > 0.0 && duration < 10.0, "seconds, not milliseconds: {duration}");
    let connect = m.value("probe_http_duration_seconds", &[up[0], up[1], ("phase", "connect")]).expect("connect");
    assert!(connect > 0.0 && connect <= duration, "connect {connect} within {duration}");
    assert_eq!(m.value("probe_http_duration_seconds", &[up[0], up[1], ("phase", "tls")]), Some(0.0), "http");
    assert_eq!(m.series("probe_http_duration_seconds", &up).len(), 5, "five phases");
    assert_eq!(m.value("probe_http_redirects", &redirected), Some(1.0));
    assert_eq!(m.value("probe_http_redirects", &up), Some(0.0));
    assert_eq!(m.value("probe_failed_due_to_regex", &up), Some(0.0));

    // Certificates: the chain's earliest as blackbox says it, the leaf's as Websentry's own.
    assert_eq!(m.value("probe_success", &https), Some(1.0));
    assert_eq!(m.value("probe_ssl_earliest_cert_expiry", &https), Some(unix_midnight(CHAIN_NOT_AFTER)));
    assert_eq!(
        m.value("websentry_ssl_leaf_cert_expiry_timestamp_seconds", &https),
        Some(unix_midnight(LEAF_NOT_AFTER))
    );
    assert!(m.value("probe_http_duration_seconds", &[https[0], https[1], ("phase", "tls")]).is_some_and(|t| t > 0.0));
    assert_eq!(m.value("probe_ssl_earliest_cert_expiry", &up), None, "no certificate for http");

    // Websentry's own: the cadence, the last report, uptime and coverage per window.
    assert_eq!(m.value("websentry_site_interval_seconds", &up), Some(f64::from(CADENCE_S)));
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let last = m.value("websentry_site_last_checked_timestamp_seconds", &up).expect("last checked");
    assert!(now - last < 300.0 && last <= now + 1.0, "last checked {last}, now {now}");
    for window in ["24h", "7d", "30d"] {
        assert_eq!(m.value("websentry_site_uptime_ratio", &[up[0], up[1], ("window", window)]), Some(1.0), "{window}");
        assert_eq!(m.value("websentry_site_uptime_ratio", &[down[0], down[1], ("window", window)]), Some(0.0));
        let coverage = m.value("websentry_site_coverage_ratio", &[up[0], up[1], ("window", window)]).expect(window);
        assert!(coverage > 0.0 && coverage < 1.0, "{window}: {coverage}");
    }

    // Labels: the name (the URL when none) and the group (absent when none).
    let shop = &m.series("probe_success", &up)[0].labels;
    assert_eq!((shop["name"].as_str(), shop.get("group").map(String::as_str)), ("Shop", Some("Public")));
    let plain = &m.series("probe_success", &redirected)[0].labels;
    assert_eq!((plain["name"].as_str(), plain.get("group")), (sites.redirected.as_str(), None));
    assert_eq!(m.series("probe_success", &down)[0].labels.get("group").map(String::as_str), Some("Internal"));

    // Measured lately or not; an inconclusive failure is unknown, not down.
    assert_eq!(m.value("probe_success", &[("instance", &fresh)]), Some(1.0), "the control: a fresh report");
    assert!(m.series("websentry_site_last_checked_timestamp_seconds", &[("instance", &stale)]).is_empty());
    assert!(!m.samples.iter().any(|s| s.labels.get("instance") == Some(&stale)), "an hour old: not exported");
    assert_eq!(m.value("probe_success", &[("instance", &flaky)]), None, "inconclusive: unknown");
    assert_eq!(m.value("probe_duration_seconds", &[("instance", &flaky)]), Some(0.0125));
    let sites_exported = m.series("websentry_site_last_checked_timestamp_seconds", &[]).len();
    assert_eq!(sites_exported, 6, "four probed, the fresh one and the inconclusive one");
}

#[test]
fn scrapes_within_the_cache_period_share_one_load_and_hidden_groups_are_not_exported() {
    let (sites, _) = sites();
    let status = StatusServer::start(
        Stack::get()
            .status(&sites.db)
            .env("WEBSENTRY_STATUS_CACHE_SECONDS", "60")
            .env("WEBSENTRY_STATUS_GROUPS", "Public"),
    );

    let first = status.get("/probes/metrics").text();
    let queries = status.metric("websentry_status_db_queries_total{query=\"site_states\"}");
    let second = status.get("/probes/metrics").text();

    assert_eq!(first, second, "the same answer within the cache period");
    assert_eq!(status.metric("websentry_status_db_queries_total{query=\"site_states\"}"), queries, "no new load");
    assert!(status.metric("websentry_status_cache_hits_total{answer=\"probes\"}") >= 1.0);
    let m = Exposition::parse(&first).expect("parses");
    let instances: std::collections::BTreeSet<_> =
        m.samples.iter().filter_map(|s| s.labels.get("instance").cloned()).collect();
    assert_eq!(instances, [sites.up.clone()].into(), "only the group Public");
    assert!(status.get("/metrics").text().contains("websentry_status_http_requests_total{route=\"/probes/metrics\""));
}

#[test]
fn the_windows_are_kept_longer_than_the_states() {
    let (sites, _) = sites();
    let status = StatusServer::start(Stack::get().status(&sites.db).env("WEBSENTRY_STATUS_CACHE_SECONDS", "1"));
    let count = |query: &str| status.metric(&format!("websentry_status_db_queries_total{{query=\"{query}\"}}"));
    let first = Exposition::parse(&status.get("/probes/metrics").text()).expect("parses");
    let (states, windows) = (count("site_states"), count("site_uptime"));
    assert_eq!(windows, 3.0, "24h, 7d and 30d");

    // The text expires after a second: the states are read again, the windows are not.
    eventually("the states read again", Duration::from_secs(10), || {
        status.get("/probes/metrics");
        count("site_states") > states
    });

    assert_eq!(count("site_uptime"), windows, "the windows kept (5 minutes)");
    let again = Exposition::parse(&status.get("/probes/metrics").text()).expect("parses");
    let at = at(&sites.up);
    let window = [at[0], at[1], ("window", "30d")];
    assert_eq!(
        again.value("websentry_site_uptime_ratio", &window),
        first.value("websentry_site_uptime_ratio", &window)
    );
    assert!(again.value("websentry_site_uptime_ratio", &window).is_some());
}
