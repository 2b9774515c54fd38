//! The archive's health alerts (group `websentry-archive` of `deploy/prometheus/`) in a real
//! Prometheus (Debian's 2.42) scraping a real consumer daemon with the scrape job of
//! docs/metrics.md (`websentry-consumer`): while it archives, every series the rules read is there
//! and nothing fires (`WebsentryArchiveBehind`'s measure reads no work waiting); a record it keeps
//! as rejected fires `WebsentryRecordsRejected`; a backlog that takes longer to archive than the
//! threshold fires `WebsentryArchiveBehind`; PostgreSQL hanging (a relay in front of the
//! stack's that holds the connection) fires `WebsentryArchiveStalled`; PostgreSQL stopped (the
//! relay closed) fires `WebsentryArchiveInterrupted` for `postgresql`; the daemon killed fires
//! `WebsentryConsumerDown`.
//!
//! Overrides, so that the test takes seconds and not minutes: the rules are loaded from a copy
//! whose `WebsentryArchiveInterrupted` and `WebsentryConsumerDown` wait `for: 5s` instead of `5m`,
//! whose `WebsentryArchiveStalled` fires past 2 s for 1 s instead of 300 s for 1 minute, and whose
//! `WebsentryArchiveBehind` past 1 s of work for 1 s instead of 600 s for 15 minutes (every other
//! line as shipped); scrapes and evaluations run every second. The daemon writes a report per
//! transaction and fetches at most 1 KiB at once (a record batch, 200 reports here), so that a
//! backlog lasts some seconds and its lag, set after each fetch is written, follows it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::{Duration, Instant},
};

use websentry_tests::{eventually, eventually_ok, prometheus::Prometheus, Relay, Stack};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `rules` with the `for: 5m` of `alert` made `for: 5s`.
fn waiting_5s(rules: &str, alert: &str) -> String {
    let at = rules.find(&format!("- alert: {alert}\n")).unwrap_or_else(|| panic!("{alert} in the rules"));
    let line = "        for: 5m\n";
    let for_at = at + rules[at..].find(line).unwrap_or_else(|| panic!("{alert}'s for: 5m"));
    assert!(!rules[at + 1..for_at].contains("- alert:"), "the for: 5m of {alert} itself");
    format!("{}        for: 5s\n{}", &rules[..for_at], &rules[for_at + line.len()..])
}

/// `rules` with `from`, which occurs once, changed to `to`.
fn changed_once(rules: &str, from: &str, to: &str) -> String {
    assert_eq!(rules.matches(from).count(), 1, "{from:?} once in the rules");
    rules.replacen(from, to, 1)
}

/// The expression of `WebsentryArchiveBehind` in `rules` without its threshold: the seconds of
/// work waiting in Kafka.
fn behind_expression(rules: &str) -> String {
    let at = rules.find("- alert: WebsentryArchiveBehind\n        expr: |\n").expect("WebsentryArchiveBehind");
    let expr = &rules[at..].split_once("expr: |\n").expect("its expr").1;
    let expr = expr.split_once("        for:").expect("its for").0;
    let expr = expr.trim_end().strip_suffix("> 600").expect("its threshold, > 600");
    assert!(!expr.contains("alert:"), "{expr}");
    expr.to_owned()
}

/// The labels of `alert` once it fires (one series), waiting up to a minute.
fn fired(prometheus: &Prometheus, alert: &str) -> BTreeMap<String, String> {
    let query = format!(r#"ALERTS{{alertname="{alert}", alertstate="firing"}}"#);
    eventually_ok(&format!("{alert} fires"), Duration::from_secs(60), || match prometheus.query(&query)?.as_slice() {
        [point] => Ok(point.labels.clone()),
        other => Err(format!("{other:?}")),
    })
}

/// The names of the archive alerts firing now.
fn firing(prometheus: &Prometheus) -> Result<BTreeSet<String>, String> {
    let points = prometheus.query(r#"ALERTS{alertstate="firing", job="websentry-consumer"}"#)?;
    Ok(points.iter().map(|p| p.labels.get("alertname").cloned().unwrap_or_default()).collect())
}

#[test]
fn prometheus_fires_the_archive_alerts_from_a_real_consumer() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let relay = Relay::start(stack.database_address());
    let consumer = stack
        .consumer_daemon(&topic, &db)
        .env("WEBSENTRY_DATABASE_PORT", relay.address().port().to_string())
        .env("WEBSENTRY_LISTEN", "127.0.0.1:0")
        .env("WEBSENTRY_BATCH_BYTES", "1024")
        .env("WEBSENTRY_BATCH_MAX", "1")
        .spawn();
    let address = consumer.log_field("http endpoint listening", "address", Duration::from_secs(30));
    consumer.wait_for_log("archiving", Duration::from_secs(30));
    let shipped = std::fs::read_to_string(repo_file("deploy/prometheus/websentry.rules.yml")).expect("the rules");
    let rules = waiting_5s(&waiting_5s(&shipped, "WebsentryArchiveInterrupted"), "WebsentryConsumerDown");
    let rules = changed_once(
        &rules,
        "websentry_session_stalled_seconds > 300\n        for: 1m",
        "websentry_session_stalled_seconds > 2\n        for: 1s",
    );
    let rules = changed_once(&rules, "> 600\n        for: 15m", "> 1\n        for: 1s");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: [websentry.rules.yml]\n\
         scrape_configs:\n  - job_name: websentry-consumer\n\
         \x20   static_configs:\n      - targets: [\"{address}\"]\n"
    );
    let prometheus = Prometheus::start(&config, &[("websentry.rules.yml", rules)]);
    let started = Instant::now();

    // Every counter the rules read, scraped at least twice before anything happens: an increase
    // needs a sample from before it.
    for series in [
        "websentry_records_rejected_total",
        r#"websentry_service_interruptions_total{service="postgresql"}"#,
        r#"websentry_service_interruptions_total{service="kafka"}"#,
        "websentry_archive_upkeep_failures_total",
        "websentry_archive_kept_windows_failures_total",
    ] {
        eventually_ok(&format!("{series} scraped twice"), Duration::from_secs(30), || {
            match prometheus.query(&format!("count_over_time({series}[1m])"))?.as_slice() {
                [point] if point.value >= 2.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
    assert_eq!(
        prometheus.query(r#"up{job="websentry-consumer"}"#).expect("up").iter().map(|p| p.value).collect::<Vec<_>>(),
        [1.0]
    );

    println!("the counters scraped twice after {:?}", started.elapsed());

    // Archiving: reports and one record that is not a report.
    stack.produce_reports(&topic, 1, 20, 20);
    stack.produce_raw(&topic, 0, vec![(None, Some(b"not a report".to_vec()))]);
    eventually("20 reports archived", Duration::from_secs(30), || db.count("SELECT count(*) FROM reports") == 20);
    let alerts = eventually_ok("WebsentryRecordsRejected fires", Duration::from_secs(30), || {
        let alerts = firing(&prometheus)?;
        if alerts.contains("WebsentryRecordsRejected") {
            Ok(alerts)
        } else {
            Err(format!("{alerts:?}"))
        }
    });
    assert_eq!(alerts, BTreeSet::from(["WebsentryRecordsRejected".to_owned()]), "nothing else fires while it archives");
    let rejected =
        prometheus.query(r#"ALERTS{alertname="WebsentryRecordsRejected", alertstate="firing"}"#).expect("the alert");
    assert_eq!(rejected[0].labels.get("instance"), Some(&address), "{rejected:?}");
    assert_eq!(rejected[0].labels.get("severity").map(String::as_str), Some("warning"), "{rejected:?}");
    // The Grafana dashboard's "Firing alerts" panel shows it.
    let panel = crate::grafana_dashboard::panel_query("Firing alerts");
    let shown = prometheus.query(&panel).unwrap_or_else(|err| panic!("{panel}: {err}"));
    assert!(
        shown.iter().any(|p| p.labels.get("alertname").map(String::as_str) == Some("WebsentryRecordsRejected")),
        "{panel}: {shown:?}"
    );

    println!("WebsentryRecordsRejected fired after {:?}", started.elapsed());

    // WebsentryArchiveBehind's measure, as shipped, reads the daemon's series: caught up, what
    // waits is no work at all (an empty answer would mean the rule reads series that are not there).
    let behind = behind_expression(&shipped);
    let caught_up = eventually_ok("the seconds of work waiting", Duration::from_secs(30), || {
        match prometheus.query(&behind)?.as_slice() {
            [point] if point.value.is_finite() => Ok(point.clone()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(caught_up.labels.get("job").map(String::as_str), Some("websentry-consumer"), "{caught_up:?}");
    assert!(caught_up.value == 0.0, "nothing waits once the 20 reports are archived: {caught_up:?}");

    // A backlog: 2,000 reports at once, more than a second of work at the pace of the last
    // 10 minutes. It fires while they wait, and nothing is lost on the way.
    stack.produce_reports(&topic, 1, 2_000, 200);
    let backlog = Instant::now();
    let behind = fired(&prometheus, "WebsentryArchiveBehind");
    println!("WebsentryArchiveBehind fired {:?} after the backlog was produced", backlog.elapsed());
    assert_eq!(behind.get("job").map(String::as_str), Some("websentry-consumer"), "{behind:?}");
    assert_eq!(behind.get("severity").map(String::as_str), Some("warning"), "{behind:?}");
    assert!(db.count("SELECT count(*) FROM reports") < 2_020, "it fired while reports still waited");
    eventually("the backlog archived", Duration::from_secs(180), || db.count("SELECT count(*) FROM reports") == 2_020);
    eventually_ok("WebsentryArchiveBehind resolved", Duration::from_secs(30), || {
        let alerts = firing(&prometheus)?;
        match alerts.contains("WebsentryArchiveBehind") {
            false => Ok(()),
            true => Err(format!("{alerts:?}")),
        }
    });

    // PostgreSQL hangs: the daemon stays connected and counts nothing lost, but its session
    // stalls in one turn.
    relay.hang();
    let hung = Instant::now();
    let stalled = fired(&prometheus, "WebsentryArchiveStalled");
    println!("WebsentryArchiveStalled fired {:?} after PostgreSQL hung", hung.elapsed());
    assert_eq!(stalled.get("instance"), Some(&address), "{stalled:?}");
    assert_eq!(stalled.get("severity").map(String::as_str), Some("critical"), "{stalled:?}");
    assert!(
        !firing(&prometheus).expect("alerts").contains("WebsentryArchiveInterrupted"),
        "nothing was lost: only the stall shows"
    );
    relay.open();

    // PostgreSQL stopped: the daemon loses its sessions again and again.
    relay.stop();
    let stopped = Instant::now();
    let interrupted = fired(&prometheus, "WebsentryArchiveInterrupted");
    println!("WebsentryArchiveInterrupted fired {:?} after PostgreSQL stopped", stopped.elapsed());
    assert_eq!(interrupted.get("service").map(String::as_str), Some("postgresql"), "{interrupted:?}");
    assert_eq!(interrupted.get("instance"), Some(&address), "{interrupted:?}");
    assert_eq!(interrupted.get("severity").map(String::as_str), Some("critical"), "{interrupted:?}");
    assert!(!firing(&prometheus).expect("alerts").contains("WebsentryConsumerDown"), "it still answers its scrapes");

    // The daemon gone.
    consumer.kill_hard();
    let killed = Instant::now();
    let down = fired(&prometheus, "WebsentryConsumerDown");
    println!("WebsentryConsumerDown fired {:?} after the daemon was killed", killed.elapsed());
    assert_eq!(down.get("instance"), Some(&address), "{down:?}");
    let _ = consumer.finish(Duration::from_secs(10));
    relay.open();
}
