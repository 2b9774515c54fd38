//! The consumer's HTTP endpoint under slow clients: while a thousand connections trickle their
//! request heads (each opened again as soon as the server drops it), `/healthz` answers the
//! kubelet's probes within a second, and the daemon's memory stays bounded.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::oneshot,
};
use websentry_tests::{eventually, Running, Stack};

/// Connections that send a request head a byte a second and never finish it, each opened again
/// as soon as the server drops it (a "slowloris"), on a thread of their own.
struct Flood {
    stop: Option<oneshot::Sender<()>>,
    opened: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    fn start(address: SocketAddr, connections: usize) -> Flood {
        let opened = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        let counter = Arc::clone(&opened);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let clients = (0..connections).map(|_| trickle(address, Arc::clone(&counter)));
                tokio::select! {
                    _ = stopped => {}
                    _ = futures::future::join_all(clients) => {}
                }
            });
        });
        Flood { stop: Some(stop), opened, thread: Some(thread) }
    }

    /// Connections opened so far, the re-opened ones included.
    fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One slow client, for ever: connect, send the request line, then a byte a second of a header
/// that never ends; when the server drops the connection, connect again.
async fn trickle(address: SocketAddr, opened: Arc<AtomicU64>) {
    let mut buf = [0u8; 256];
    loop {
        let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.is_err() {
            continue;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => if stream.write_all(b"x").await.is_err() { break },
                read = stream.read(&mut buf) => if !matches!(read, Ok(1..)) { break },
            }
        }
    }
}

/// `GET path` as the kubelet sends it, with its 2 s timeout: the status (None when nothing came
/// in time) and how long the answer took.
fn probe(address: SocketAddr, path: &str) -> (Option<u16>, Duration) {
    use std::io::{Read, Write};
    let started = Instant::now();
    let status = (|| {
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
        let left = Duration::from_secs(2).checked_sub(started.elapsed())?;
        stream.set_read_timeout(Some(left)).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kube-probe/1.31\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.split_whitespace().nth(1)?.parse().ok()
    })();
    (status, started.elapsed())
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

fn daemon(stack: &Stack) -> (Running, SocketAddr) {
    let topic = stack.create_topic(1);
    let db = stack.create_database();
    let running = stack.consumer_daemon(&topic, &db).env("WEBSENTRY_LISTEN", "127.0.0.1:0").spawn();
    let address = running.log_field("http endpoint listening", "address", Duration::from_secs(30));
    (running, address.parse().expect("a socket address"))
}

/// The bound the issue states for a probe's answer: the kubelet gives up after 2 s, the endpoint
/// must answer within half of that. Typical answers take a few milliseconds (printed), so the
/// bound is asserted as it is: it is the feature, with a hundredfold margin over what it measures.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

#[test]
fn healthz_answers_within_a_second_while_a_thousand_slow_clients_trickle_their_heads() {
    let stack = Stack::get();
    let (running, address) = daemon(stack);
    eventually("/healthz answers", Duration::from_secs(10), || probe(address, "/healthz").0 == Some(200));
    let rss_before = rss_kib(running.id());

    let flood = Flood::start(address, 1000);
    // Until a thousand are open, or for 10 s: a server that does not accept them fails below, on
    // its probes, which is what the kubelet would see.
    let settling = Instant::now();
    while flood.opened() < 1000 && settling.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
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
