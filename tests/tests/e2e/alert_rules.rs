//! The alert rules of `deploy/prometheus/` under Prometheus's own tool: `promtool check rules` and
//! `promtool test rules` (Debian's `prometheus` package; scripts/test installs it) pass, each
//! control (a copy of the rules with one threshold moved) makes a unit test fail, so the unit tests
//! do pin the thresholds; the optional PrometheusRule of `k8s/` holds exactly the same groups; and
//! the Grafana dashboard's "Firing alerts" panel lists every alert. No stack needed.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use websentry_tests::Scratch;

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

const RULES: &str = "deploy/prometheus/websentry.rules.yml";

/// The unit test files, by name, in a stable order.
fn unit_tests(folder: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(folder.join("tests"))
        .expect("deploy/prometheus/tests")
        .map(|entry| entry.expect("a test file").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yml"))
        .map(|name| format!("tests/{name}"))
        .collect();
    files.sort();
    files
}

/// `promtool ARGS` in `folder`: whether it passed, and what it printed.
fn promtool(folder: &Path, args: &[String]) -> (bool, String) {
    let output = Command::new("promtool").args(args).current_dir(folder).output().unwrap_or_else(|err| {
        panic!("promtool: {err}: install Debian's prometheus package (apt-get install prometheus; scripts/test does)")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn test_rules(folder: &Path) -> (bool, String) {
    let mut args = vec!["test".to_owned(), "rules".to_owned()];
    args.extend(unit_tests(folder));
    promtool(folder, &args)
}

#[test]
fn the_rules_are_valid_and_pass_their_unit_tests() {
    let folder = repo_file("deploy/prometheus");
    let (version, _) = promtool(&folder, &["--version".to_owned()]);
    assert!(version, "promtool --version");

    let (checked, check_output) = promtool(&folder, &["check".into(), "rules".into(), "websentry.rules.yml".into()]);
    let (tested, test_output) = test_rules(&folder);

    assert!(checked, "promtool check rules:\n{check_output}");
    assert!(check_output.contains("SUCCESS: 17 rules found"), "{check_output}");
    let files = unit_tests(&folder);
    assert!(files.len() >= 5, "the unit test files: {files:?}");
    assert!(tested, "promtool test rules:\n{test_output}");
    assert_eq!(test_output.matches("SUCCESS").count(), files.len(), "{test_output}");
}

/// A copy of the rules with `from` replaced by `to` (once; `from` must occur exactly once), and
/// the alert whose unit test must then fail.
struct Control {
    alert: &'static str,
    from: &'static str,
    to: &'static str,
}

const CONTROLS: &[Control] = &[
    Control {
        alert: "SiteDown",
        from: "clamp_max(count by (instance) (websentry_site_consecutive_failures), 2)",
        to: "clamp_max(count by (instance) (websentry_site_consecutive_failures), 1)",
    },
    Control {
        alert: "SiteDown",
        from: "websentry_site_consecutive_failures >= 2\n          and on (instance)",
        to: "websentry_site_consecutive_failures >= 1\n          and on (instance)",
    },
    Control {
        alert: "UptimeBelowObjective",
        from: "websentry_site_uptime_ratio{window=\"30d\"} < 0.999",
        to: "websentry_site_uptime_ratio{window=\"30d\"} < 0.99",
    },
    Control {
        alert: "UptimeBelowObjective",
        from: "websentry_site_coverage_ratio{window=\"30d\"} >= 0.9",
        to: "websentry_site_coverage_ratio{window=\"30d\"} >= 0.8",
    },
    Control { alert: "CertificateExpiringSoon", from: "< 21 * 86400", to: "< 20 * 86400" },
    Control { alert: "CertificateExpiring", from: "< 3 * 86400", to: "< 2 * 86400" },
    Control {
        alert: "SiteNoData",
        from: "websentry_site_coverage_ratio{window=\"24h\"} < 0.5",
        to: "websentry_site_coverage_ratio{window=\"24h\"} <= 0.5",
    },
    Control { alert: "SiteNoData", from: "\n          unless on () (up{job=\"websentry-probes\"} == 0)", to: "" },
    Control { alert: "SiteSlow", from: "probe_duration_seconds[30m]) > 2", to: "probe_duration_seconds[30m]) > 3" },
    Control {
        alert: "WebsentryExporterDown",
        from: "up{job=\"websentry-probes\"} == 0\n        for: 5m",
        to: "up{job=\"websentry-probes\"} == 0\n        for: 15m",
    },
    Control {
        alert: "WebsentryConsumerDown",
        from: "up{job=\"websentry-consumer\"} == 0\n        for: 5m",
        to: "up{job=\"websentry-consumer\"} == 0\n        for: 15m",
    },
    Control { alert: "WebsentryConsumerDown", from: "expr: up{job=\"websentry-consumer\"} == 0", to: "expr: up == 0" },
    Control { alert: "WebsentryArchiveInterrupted", from: "[5m]) >= 3", to: "[5m]) >= 2" },
    Control { alert: "WebsentryArchiveInterrupted", from: "[5m]) >= 3", to: "[5m]) >= 4" },
    Control {
        alert: "WebsentryArchiveInterrupted",
        from: "\n          or\n          max_over_time(websentry_connected[5m]) == 0",
        to: "",
    },
    Control {
        alert: "WebsentryArchiveInterrupted",
        from: "max_over_time(websentry_connected[5m]) == 0",
        to: "max_over_time(websentry_connected[7m]) == 0",
    },
    Control {
        alert: "WebsentryArchiveInterrupted",
        from: "max_over_time(websentry_connected[5m]) == 0\n        for: 5m",
        to: "max_over_time(websentry_connected[5m]) == 0\n        for: 10m",
    },
    Control { alert: "WebsentryRecordsRejected", from: "[1h]) > 0", to: "[1h]) > 1" },
    Control { alert: "WebsentryRecordsRejected", from: "[1h]) > 0", to: "[30m]) > 0" },
    Control { alert: "WebsentryRecordsRejected", from: "[1h]) > 0", to: "[61m]) > 0" },
    Control { alert: "WebsentryArchiveUpkeepFailing", from: "[3h]) >= 2", to: "[3h]) >= 3" },
    Control { alert: "WebsentryArchiveUpkeepFailing", from: "[3h]) >= 2", to: "[4h]) >= 2" },
    Control { alert: "WebsentryArchiveUpkeepFailing", from: "[3h]) >= 2", to: "[150m]) >= 2" },
    Control { alert: "WebsentryKeptWindowsFailing", from: "[1h]) >= 6", to: "[1h]) >= 7" },
    Control { alert: "WebsentryKeptWindowsFailing", from: "[1h]) >= 6", to: "[2h]) >= 6" },
    Control { alert: "WebsentryKeptWindowsFailing", from: "[1h]) >= 6", to: "[70m]) >= 6" },
    Control {
        alert: "WebsentryArchiveStalled",
        from: "websentry_session_stalled_seconds > 300\n        for: 1m",
        to: "websentry_session_stalled_seconds > 400\n        for: 1m",
    },
    Control {
        alert: "WebsentryArchiveStalled",
        from: "websentry_session_stalled_seconds > 300\n        for: 1m",
        to: "websentry_session_stalled_seconds > 200\n        for: 1m",
    },
    Control {
        alert: "WebsentryArchiveStalled",
        from: "websentry_session_stalled_seconds > 300\n        for: 1m",
        to: "websentry_session_stalled_seconds > 300\n        for: 3m",
    },
    Control { alert: "WebsentryArchiveBehind", from: "> 600\n        for: 15m", to: "> 700\n        for: 15m" },
    Control { alert: "WebsentryArchiveBehind", from: "> 600\n        for: 15m", to: "> 500\n        for: 15m" },
    Control { alert: "WebsentryArchiveBehind", from: "> 600\n        for: 15m", to: "> 600\n        for: 10m" },
    Control {
        alert: "WebsentryArchiveBehind",
        from: "rate(websentry_reports_archived_total[10m])",
        to: "rate(websentry_reports_archived_total[5m])",
    },
    Control {
        alert: "WebsentryArchiveBehind",
        from: "rate(websentry_reports_archived_total[10m])",
        to: "rate(websentry_reports_archived_total[15m])",
    },
    Control { alert: "WebsentryArchiveBehind", from: " + rate(websentry_records_rejected_total[10m])", to: "" },
    Control {
        alert: "WebsentryArchiveBehind",
        from: "sum by (job, namespace) (websentry_partition_lag)",
        to: "sum by (job, namespace, instance) (websentry_partition_lag)",
    },
];

#[test]
fn a_rule_with_a_threshold_moved_fails_its_unit_tests() {
    let rules = std::fs::read_to_string(repo_file(RULES)).expect("the rules file");
    let source = repo_file("deploy/prometheus");

    for control in CONTROLS {
        let case = format!("{}: {:?} → {:?}", control.alert, control.from, control.to);
        assert_eq!(rules.matches(control.from).count(), 1, "{case}: the text to change occurs once");
        let scratch = Scratch::new();
        std::fs::create_dir(scratch.path().join("tests")).expect("the copy's tests folder");
        scratch.write("websentry.rules.yml", rules.replacen(control.from, control.to, 1));
        for file in unit_tests(&source) {
            std::fs::copy(source.join(&file), scratch.path().join(&file)).expect("copying a unit test");
        }

        let (checked, check_output) =
            promtool(scratch.path(), &["check".into(), "rules".into(), "websentry.rules.yml".into()]);
        let (tested, output) = test_rules(scratch.path());

        assert!(checked, "{case}: the changed rules are still valid:\n{check_output}");
        assert!(!tested, "{case}: promtool test rules passed with the threshold moved:\n{output}");
        assert!(output.contains(&format!("alertname: {},", control.alert)), "{case}: another alert failed:\n{output}");
        println!("control {case}: promtool test rules failed, as it must");
    }
}

#[test]
fn the_optional_prometheus_rule_holds_the_same_groups_as_the_rules_file() {
    let rules = std::fs::read_to_string(repo_file(RULES)).expect("the rules file");
    let resource = std::fs::read_to_string(repo_file("k8s/optional/prometheus-rule.yaml")).expect("the PrometheusRule");
    let kustomization = std::fs::read_to_string(repo_file("k8s/kustomization.yaml")).expect("the kustomization");

    let groups = &rules[rules.find("\ngroups:").expect("the rules file's groups") + 1..];
    let spec = resource.split_once("\nspec:\n").expect("the PrometheusRule's spec").1;
    let dedented: String = spec
        .lines()
        .map(|line| match line {
            "" => "",
            _ => line.strip_prefix("  ").unwrap_or_else(|| panic!("a line of the spec not indented: {line:?}")),
        })
        .flat_map(|line| [line, "\n"])
        .collect();

    assert!(resource.contains("\nkind: PrometheusRule\n"), "{resource}");
    assert_eq!(dedented, groups, "the PrometheusRule's spec, dedented, against deploy/prometheus/websentry.rules.yml");
    let resources: Vec<&str> = kustomization
        .split_once("\nresources:\n")
        .expect("the kustomization's resources")
        .1
        .lines()
        .take_while(|line| line.starts_with("  - "))
        .map(|line| line.trim_start_matches("  - "))
        .collect();
    assert!(resources.contains(&"namespace.yaml"), "{resources:?}");
    assert!(
        resources.iter().all(|resource| !resource.starts_with("optional")),
        "the PrometheusRule is not part of the kustomize base: {resources:?}"
    );
    let scratch = Scratch::new();
    scratch.write("spec.yml", &dedented);
    let (checked, output) = promtool(scratch.path(), &["check".into(), "rules".into(), "spec.yml".into()]);
    assert!(checked && output.contains("SUCCESS: 17 rules found"), "{output}");
}

#[test]
fn the_dashboards_firing_alerts_panel_lists_every_alert_of_the_rules() {
    let rules = std::fs::read_to_string(repo_file(RULES)).expect("the rules file");
    let alerts: std::collections::BTreeSet<&str> =
        rules.lines().filter_map(|line| line.trim_start().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 13, "{alerts:?}");
    let expr = crate::grafana_dashboard::panel_query("Firing alerts");
    let listed: std::collections::BTreeSet<&str> = expr
        .split_once("alertname=~\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .expect("an alertname regex")
        .0
        .split('|')
        .collect();
    assert_eq!(listed, alerts, "{expr}");
}
