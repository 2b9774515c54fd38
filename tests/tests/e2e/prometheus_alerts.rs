//! A real Prometheus (Debian's `prometheus` 2.42) scraping a real `websentry-status` after a real
//! producer → Kafka → consumer run, with the scrape config of docs/metrics.md (`honor_labels:
//! true`) and the rules of `deploy/prometheus/`: `SiteDown` fires for the down site only, and the
//! PromQL examples of docs/metrics.md and the Prometheus panels of the Grafana dashboard answer
//! what the archive says.
//!
//! One override, so that the test takes seconds and not minutes: the rules are loaded from a copy
//! whose `SiteDown` waits `for: 5s` instead of `1m` (every other line as shipped); scrapes and
//! evaluations run every second.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use websentry_tests::{
    eventually_ok,
    probe_sites::{unix_midnight, ProbedSites, CHAIN_NOT_AFTER, LEAF_NOT_AFTER, PROBE_NAME},
    prometheus::{Point, Prometheus},
    Stack, StatusServer,
};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The shipped rules with `SiteDown`'s `for` shortened to 5 s.
fn rules_for_the_test() -> String {
    let rules = std::fs::read_to_string(repo_file("deploy/prometheus/websentry.rules.yml")).expect("the rules");
    let site_down = rules.find("- alert: SiteDown").expect("SiteDown");
    let for_at = site_down + rules[site_down..].find("        for: 1m\n").expect("SiteDown's for: 1m");
    assert!(!rules[site_down + 1..for_at].contains("- alert:"), "the for: 1m of SiteDown itself");
    format!("{}        for: 5s\n{}", &rules[..for_at], &rules[for_at + "        for: 1m\n".len()..])
}

fn prometheus_scraping(status: &StatusServer) -> Prometheus {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: [websentry.rules.yml]\n\
         scrape_configs:\n  - job_name: websentry-probes\n    metrics_path: /probes/metrics\n    honor_labels: true\n\
         \x20   static_configs:\n      - targets: [\"{}\"]\n",
        status.address
    );
    Prometheus::start(&config, &[("websentry.rules.yml", rules_for_the_test())])
}

/// The instances of `points`.
fn instances(points: &[Point]) -> BTreeSet<String> {
    points.iter().map(|p| p.labels.get("instance").cloned().unwrap_or_default()).collect()
}

/// The value of each instance of `points`.
fn by_instance(points: &[Point]) -> BTreeMap<String, f64> {
    points.iter().map(|p| (p.labels.get("instance").cloned().unwrap_or_default(), p.value)).collect()
}

#[test]
fn prometheus_fires_site_down_for_the_down_site_only_and_answers_the_documented_queries() {
    let stack = Stack::get();
    let sites = stack.archive_probed_sites(2, &[]);
    let status = StatusServer::start(stack.status(&sites.db).env("WEBSENTRY_STATUS_CACHE_SECONDS", "1"));
    let prometheus = prometheus_scraping(&status);
    let started = Instant::now();

    eventually_ok("Prometheus has scraped the four sites", Duration::from_secs(30), || {
        let points = prometheus.query("probe_success")?;
        if points.len() == 4 {
            Ok(())
        } else {
            Err(format!("{points:?}"))
        }
    });
    let firing = eventually_ok("SiteDown fires", Duration::from_secs(60), || {
        let points = prometheus.query(r#"ALERTS{alertname="SiteDown", alertstate="firing"}"#)?;
        if points.is_empty() {
            Err("not yet".to_owned())
        } else {
            Ok(points)
        }
    });

    assert!(started.elapsed() >= Duration::from_secs(5), "not before its for: {:?}", started.elapsed());
    assert_eq!(instances(&firing), [sites.down.clone()].into(), "the down site only: {firing:?}");
    let labels = &firing[0].labels;
    assert_eq!(
        (labels["probe"].as_str(), labels["severity"].as_str(), labels["group"].as_str()),
        (PROBE_NAME, "critical", "Internal")
    );
    let up = prometheus.query(r#"up{job="websentry-probes"}"#).expect("up");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!((up[0].value, up[0].labels["instance"].as_str()), (1.0, status.address.as_str()), "the target's own");
    let other = prometheus.query(r#"ALERTS{alertname!="SiteDown"}"#).expect("ALERTS");
    assert!(other.is_empty(), "no other alert: {other:?}");

    documented_queries_answer_what_the_archive_says(&prometheus, &sites);
    dashboard_queries_answer(&prometheus, &sites);
}

/// Every example of docs/metrics.md's PromQL block, with what it must answer here. An example
/// without an expectation fails: the docs and this test move together.
fn documented_queries_answer_what_the_archive_says(prometheus: &Prometheus, sites: &ProbedSites) {
    let doc = std::fs::read_to_string(repo_file("docs/metrics.md")).expect("docs/metrics.md");
    let block = doc.split("```promql\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a promql block");
    let examples: Vec<&str> = block.lines().filter(|line| !line.starts_with('#') && !line.trim().is_empty()).collect();
    assert!(examples.len() >= 5, "{examples:?}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let all: BTreeSet<String> = [&sites.up, &sites.down, &sites.redirected, &sites.https].map(|s| s.to_string()).into();
    for example in examples {
        let points = prometheus.query(example).unwrap_or_else(|err| panic!("{example}: {err}"));
        let values = by_instance(&points);
        match example {
            "probe_success == 0" => assert_eq!(values, [(sites.down.clone(), 0.0)].into(), "{example}"),
            "avg(probe_success)" => assert_eq!(values, [(String::new(), 0.75)].into(), "{example}"),
            "count by (instance) (websentry_site_consecutive_failures >= 2)" => {
                assert_eq!(values, [(sites.down.clone(), 1.0)].into(), "{example}");
            }
            "(probe_ssl_earliest_cert_expiry - time()) / 86400" => {
                let days = (unix_midnight(CHAIN_NOT_AFTER) - now) / 86_400.0;
                assert_eq!(instances(&points), [sites.https.clone()].into(), "{example}");
                assert!((points[0].value - days).abs() < 0.01, "{example}: {} against {days}", points[0].value);
            }
            "websentry_ssl_leaf_cert_expiry_timestamp_seconds > probe_ssl_earliest_cert_expiry" => {
                assert_eq!(values, [(sites.https.clone(), unix_midnight(LEAF_NOT_AFTER))].into(), "{example}");
            }
            r#"sort(websentry_site_uptime_ratio{window="30d"})"#
            | r#"sort(instance:websentry_site_uptime_ratio:pooled{window="30d"})"# => {
                assert_eq!(instances(&points), all, "{example}");
                assert_eq!((points[0].labels["instance"].as_str(), points[0].value), (sites.down.as_str(), 0.0));
                assert!(points[1..].iter().all(|p| p.value == 1.0), "{example}: {points:?}");
            }
            "probe_http_redirects > 0" => assert_eq!(values, [(sites.redirected.clone(), 1.0)].into(), "{example}"),
            other => panic!("docs/metrics.md has the example {other:?}: add what it must answer here"),
        }
    }
}

/// The Prometheus panels of the Grafana dashboard, run as Grafana would (`$site`: the up site).
fn dashboard_queries_answer(prometheus: &Prometheus, sites: &ProbedSites) {
    let json = std::fs::read_to_string(repo_file("deploy/grafana/dashboards/websentry.json")).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let mut expressions = Vec::new();
    collect_expressions(&dashboard, &mut expressions);
    assert!(expressions.len() >= 5, "{expressions:?}");
    for expr in expressions {
        let promql = expr.replace("$site", &sites.up);
        let points = prometheus.query(&promql).unwrap_or_else(|err| panic!("{promql}: {err}"));
        // One number (the sites down), one alert (SiteDown), one https site; five phases of one
        // site; else one series per site.
        let one = promql.starts_with("count(") || promql.starts_with("ALERTS") || promql.contains("probe_ssl_");
        let expected = if one {
            1
        } else if promql.contains("probe_http_duration_seconds") {
            5
        } else {
            4
        };
        assert_eq!(points.len(), expected, "{promql}: {points:?}");
        if promql.starts_with("count(") {
            assert_eq!(points[0].value, 1.0, "{promql}");
        }
        if promql.starts_with("ALERTS") {
            assert_eq!(points[0].labels["alertname"], "SiteDown", "{promql}");
        }
    }
}

fn collect_expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_str()) {
                    ("expr", Some(expr)) => out.push(expr.to_owned()),
                    _ => collect_expressions(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_expressions(item, out)),
        _ => {}
    }
}
