//! The consumer's HTTP endpoint under slow clients: while a thousand connections trickle their
//! request heads (each opened again as soon as the server drops it), `/healthz` answers the
//! kubelet's probes within a second, and the daemon's memory stays bounded.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use websentry_tests::{eventually, probe, rss_kib, Flood, Running, Stack};

fn daemon(stack: &Stack) -> (Running, SocketAddr) {
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let running = stack.consumer_daemon(&topic, &db).env("WEBSENTRY_LISTEN", "127.0.0.1:0").spawn();
    let address = running.log_field("http endpoint listening", "address", Duration::from_secs(30));
    (running, address.parse().expect("a socket address"))
}

/// The bound the issue states for a probe's answer: the kubelet gives up after 2 s, the endpoint
/// must answer within half of that. Answers during the flood take a few to a few tens of
/// milliseconds (printed), so the bound is asserted as it is: it is the feature, with a tenfold
/// margin over the slowest measured.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

#[test]
fn healthz_answers_within_a_second_while_a_thousand_slow_clients_trickle_their_heads() {
    let stack = Stack::get();
    let (running, address) = daemon(stack);
    eventually("/healthz answers", Duration::from_secs(10), || probe(address, "/healthz").0 == Some(200));
    let rss_before = rss_kib(running.id());

    let flood = Flood::start(address, 1000, "/healthz");
    flood.wait_opened(1000, Duration::from_secs(10));
    // Probes at the Deployment's period (10 s) would take minutes; every 2 s over 30 s covers six
    // head timeouts of the slow clients, so that slots are freed and taken again meanwhile.
    let mut answers = Vec::new();
    let mut rss_during = rss_before;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let probed_at = Instant::now();
        answers.push(("/healthz", probe(address, "/healthz")));
        rss_during = rss_during.max(rss_kib(running.id()));
        if answers.len() == 5 {
            answers.push(("/readyz", probe(address, "/readyz")));
            answers.push(("/metrics", probe(address, "/metrics")));
        }
        std::thread::sleep(Duration::from_secs(2).saturating_sub(probed_at.elapsed()));
    }
    let opened = flood.opened();
    drop(flood);

    let mut took: Vec<Duration> = answers.iter().map(|(_, (_, took))| *took).collect();
    took.sort();
    println!(
        "{} probes during the flood ({opened} slow connections opened): median {:?}, slowest {:?}; \
         daemon RSS {rss_before} KiB before, at most {rss_during} KiB during",
        answers.len(),
        took[took.len() / 2],
        took[took.len() - 1]
    );
    for (path, (status, took)) in &answers {
        let ok = match *path {
            "/readyz" => matches!(status, Some(200 | 503)),
            _ => *status == Some(200),
        };
        assert!(
            ok && *took <= ANSWER_WITHIN,
            "{path} answered {status:?} after {took:?} during the flood: {answers:?}"
        );
    }
    assert!(opened >= 1000, "only {opened} slow connections were opened: the flood was not what it says");
    assert!(
        rss_during < rss_before + 64 * 1024,
        "the daemon's memory grew from {rss_before} KiB to {rss_during} KiB with slow clients"
    );
    running.terminate();
    let output = running.finish(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert_eq!(
        output.stderr.matches("http connections at the cap").count(),
        1,
        "said once, not per connection closed:\n{}",
        output.stderr
    );
}
