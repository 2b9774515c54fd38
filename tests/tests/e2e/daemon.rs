//! Daemon mode: rounds at a fixed rate, and SIGTERM finishes the round in flight before exiting 0.

use std::time::Duration;

use websentry_shared::report::{ErrorKind, Report};
use websentry_tests::{
    eventually,
    hostile::{serve, Behaviour},
    Run, SiteServer, Stack,
};

#[test]
fn a_daemon_left_running_by_a_failed_test_is_killed_when_its_handle_is_dropped() {
    let server = SiteServer::start();
    let running = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES", server.url("/ok"))
        .env("WEBSENTRY_INTERVAL", "3600")
        .spawn();
    running.wait_for_log("probing at a fixed rate", Duration::from_secs(30));
    let process = std::path::PathBuf::from(format!("/proc/{}", running.id()));
    assert!(process.exists());
    // What unwinding from a failed assertion does to every value in scope.
    drop(running);
    eventually("the daemon killed and reaped", Duration::from_secs(10), || !process.exists());
}

#[test]
fn sigterm_during_a_round_publishes_that_round_and_exits_0() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let silent = serve(Behaviour::Silent);
    let running = stack
        .producer(&topic)
        .env("WEBSENTRY_SITES", silent.clone())
        .env("WEBSENTRY_INTERVAL", "60")
        .env("WEBSENTRY_TIMEOUT", "2")
        .spawn();
    running.wait_for_log("round started", Duration::from_secs(30));

    running.terminate();
    let output = running.finish(Duration::from_secs(20));

    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let values = stack.read_topic(&topic);
    assert_eq!(values.len(), 1, "the round in flight was published");
    let report = Report::decode(&values[0].1).expect("a report");
    assert_eq!(report.url, silent);
    assert_eq!(report.error.map(|e| e.kind), Some(ErrorKind::Timeout));
}

#[test]
fn a_daemon_probes_again_at_each_interval() {
    let server = SiteServer::start();
    let running = Run::new("websentry-producer")
        .arg("--dry-run")
        .env("WEBSENTRY_SITES", server.url("/ok"))
        .env("WEBSENTRY_INTERVAL", "1")
        .spawn();
    // Three rounds are done once the third "round done" line is logged.
    running.wait_for_log_times("round done", 3, Duration::from_secs(20));
    running.terminate();
    let output = running.finish(Duration::from_secs(10));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let reports: Vec<Report> = output.stdout.lines().map(|l| Report::decode(l.as_bytes()).expect("report")).collect();
    assert!(reports.len() >= 3, "{} reports", reports.len());
    assert!(reports.iter().all(|r| r.code == 200), "every round probed the site");
}

#[test]
fn a_one_off_run_whose_reports_kafka_does_not_acknowledge_exits_1() {
    let stack = Stack::get();
    let topic = stack.create_topic(1);
    let running = stack
        .producer(&topic)
        .env("WEBSENTRY_SITES", serve(Behaviour::Silent))
        .env("WEBSENTRY_TIMEOUT", "2")
        .env("WEBSENTRY_KAFKA_TIMEOUT", "3")
        .spawn();
    running.wait_for_log("round started", Duration::from_secs(30));

    stack.delete_topic(&topic);
    let output = running.finish(Duration::from_secs(60));

    assert_eq!(output.code, Some(1), "{}", output.stderr);
    let errors = output.error_lines();
    assert_eq!(errors.len(), 1, "{}", output.stderr);
    assert!(errors[0].contains("1 reports were not acknowledged by Kafka"), "{}", errors[0]);
}
