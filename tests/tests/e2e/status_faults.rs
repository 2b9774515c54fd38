//! The status page when things go wrong around it: its database stopped or hanging (a relay in
//! front of the stack's PostgreSQL, so the other tests keep theirs), and a flood of slow clients.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use websentry_tests::{eventually, probe, rss_kib, status_site_id, Flood, HttpAnswer, Relay, Stack, StatusServer};

/// The rows of sites on the overview.
fn site_rows(answer: &HttpAnswer) -> usize {
    answer.text().matches(r#"<tr class="site""#).count()
}

/// The failure page every route but `/api/` gives while the archive cannot be read: a 503 that
/// says so in words, with the security headers, and no error chain (the log has it).
fn assert_clear_failure_page(answer: &HttpAnswer, address: &SocketAddr, password: &str) {
    let page = answer.text();
    assert_eq!(answer.status, 503, "{page}");
    assert!(answer.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{:?}", answer.headers);
    assert!(answer.header("content-security-policy").is_some(), "{:?}", answer.headers);
    assert!(page.contains("The archive cannot be read right now"), "{page}");
    for leak in ["refused", "timed out", "db error", "deadpool", "tokio", &address.port().to_string(), password] {
        assert!(!page.to_lowercase().contains(&leak.to_lowercase()), "the page shows {leak:?}: {page}");
    }
}

#[test]
fn a_stopped_or_hanging_database_gives_503_and_a_clear_page_and_the_page_recovers() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let relay = Relay::start(stack.database_address());
    let status = StatusServer::start(
        stack
            .status(&sites.db)
            .env("WEBSENTRY_DATABASE_PORT", relay.address().port().to_string())
            .env("WEBSENTRY_DATABASE_TIMEOUT", "2")
            .env("WEBSENTRY_STATUS_STATEMENT_TIMEOUT", "2")
            .env("WEBSENTRY_STATUS_CACHE_SECONDS", "1"),
    );
    let badge = format!("/api/v1/sites/{}/health/badge.svg", status_site_id(&sites.up));
    let password = stack.var("WEBSENTRY_DATABASE_PASSWORD");
    eventually("ready through the relay", Duration::from_secs(20), || status.get("/readyz").status == 200);
    assert_eq!(site_rows(&status.get("/")), 3);

    // Stopped: connections closed, new ones refused.
    relay.stop();
    let stopped = Instant::now();
    eventually("/readyz says 503 once the database is stopped", Duration::from_secs(10), || {
        status.get("/readyz").status == 503
    });
    println!("/readyz said 503 {:?} after the database stopped", stopped.elapsed());
    assert_eq!(status.get("/readyz").text(), "not ready: the database does not answer\n");
    eventually(
        "the overview is a 503 once its cached answer is older than its period",
        Duration::from_secs(10),
        || status.get("/").status == 503,
    );
    assert_clear_failure_page(&status.get("/"), &relay.address(), password);
    assert_clear_failure_page(
        &status.get(&format!("/sites/{}", status_site_id(&sites.down))),
        &relay.address(),
        password,
    );
    let api = status.get("/api/v1/sites");
    assert_eq!(api.status, 503, "{}", api.text());
    let error: serde_json::Value = serde_json::from_slice(&api.body).expect("a JSON failure");
    assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{error}");
    assert_eq!(status.get(&badge).status, 503);
    assert_eq!(status.get("/healthz").status, 200, "the process itself is fine");

    // Hanging: connections accepted, nothing answered. Every answer is still bounded: a 503 once
    // connecting and querying have had their time (2 s + 2 s), and /healthz at once.
    // No answer is cached now (a failed load is not kept), so the next request loads again.
    relay.hang();
    let asked = Instant::now();
    let answer = status.get("/api/v1/sites");
    let took = asked.elapsed();
    println!("with the database hanging, /api/v1/sites answered {} after {took:?}", answer.status);
    assert_eq!(answer.status, 503);
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Connecting waits for its 2 s deadline: an answer sooner would not have asked the database.
    assert!(took >= Duration::from_secs(2), "{took:?}: the hanging database was not asked");
    let (healthz, healthz_took) = probe(status.address.parse().expect("an address"), "/healthz");
    assert_eq!(healthz, Some(200));
    assert!(healthz_took < Duration::from_secs(1), "{healthz_took:?}");
    assert_eq!(status.get("/readyz").status, 503);

    // Back: every page answers again, with no restart.
    relay.open();
    let reopened = Instant::now();
    eventually("ready again once the database is back", Duration::from_secs(30), || {
        status.get("/readyz").status == 200
    });
    eventually("the overview again once the database is back", Duration::from_secs(30), || {
        let answer = status.get("/");
        answer.status == 200 && site_rows(&answer) == 3
    });
    println!("pages answered again {:?} after the database came back", reopened.elapsed());
    assert_eq!(status.get("/api/v1/sites").status, 200);
    assert_eq!(status.get(&badge).status, 200);

    status.running.terminate();
    let output = status.running.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert!(output.stderr.contains("database unreachable: not ready"), "{}", output.stderr);
    assert!(output.stderr.contains("database answers: ready"), "{}", output.stderr);
    assert!(!output.stderr.contains(password), "the log holds the database password");
}

/// As the consumer's endpoint (`http_slow_clients`): a thousand connections that trickle their
/// heads, twice the status page's cap, each opened again when it is closed.
#[test]
fn pages_and_probes_answer_while_a_thousand_slow_clients_trickle_their_heads() {
    let stack = Stack::get();
    let sites = stack.archive_three_sites();
    let status = StatusServer::start(stack.status(&sites.db));
    let address: SocketAddr = status.address.parse().expect("an address");
    eventually("ready", Duration::from_secs(20), || probe(address, "/readyz").0 == Some(200));
    let rss_before = rss_kib(status.running.id());
    let badge = format!("/api/v1/sites/{}/uptime/7d/badge.svg", status_site_id(&sites.up));

    let flood = Flood::start(address, 1000, "/");
    flood.wait_opened(1000, Duration::from_secs(10));
    // Every second for 20 s: four head timeouts of the slow clients (5 s), so that slots are
    // freed and taken again meanwhile.
    let targets = ["/healthz", "/readyz", "/", badge.as_str()];
    let mut answers = Vec::new();
    let mut rss_during = rss_before;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let asked = Instant::now();
        let target = targets[answers.len() % targets.len()];
        answers.push((target, probe(address, target)));
        rss_during = rss_during.max(rss_kib(status.running.id()));
        std::thread::sleep(Duration::from_secs(1).saturating_sub(asked.elapsed()));
    }
    let opened = flood.opened();
    drop(flood);

    let mut took: Vec<Duration> = answers.iter().map(|(_, (_, took))| *took).collect();
    took.sort();
    println!(
        "{} requests during the flood ({opened} slow connections opened): median {:?}, slowest {:?}; \
         RSS {rss_before} KiB before, at most {rss_during} KiB during",
        answers.len(),
        took[took.len() / 2],
        took[took.len() - 1]
    );
    // The kubelet's probes within a second, as the consumer's; pages and badges within the 2 s of
    // `probe` (a page may be a load from the database, on a machine busy with the flood).
    for (target, (code, took)) in &answers {
        let within = if target.ends_with("z") { Duration::from_secs(1) } else { Duration::from_secs(2) };
        assert!(
            *code == Some(200) && *took <= within,
            "{target} answered {code:?} after {took:?} during the flood: {answers:?}"
        );
    }
    assert!(opened >= 1000, "only {opened} slow connections were opened: the flood was not what it says");
    assert!(status.metric("websentry_status_http_connections_shed_total") >= 488.0, "the cap of 512 was reached");
    assert!(
        rss_during < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB with slow clients"
    );
    status.running.terminate();
    let output = status.running.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert_eq!(
        output.stderr.matches("http connections at the cap").count(),
        1,
        "said once, not per connection closed:\n{}",
        output.stderr
    );
}
