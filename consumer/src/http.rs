//! The daemon's HTTP endpoint: `/healthz`, `/readyz` and `/metrics`, for Kubernetes probes and
//! Prometheus. Three fixed GET routes do not justify an HTTP server crate: this is a small HTTP/1.1
//! responder (one request per connection, `Connection: close`) on the consumer's Tokio runtime. It
//! never touches the database, which lives on its own thread.
//!
//! Slow clients cannot starve the kubelet's probes: connections are accepted as they come, at most
//! [`MAX_CONNECTIONS`] are open, and at the cap the oldest one whose request head is still
//! incomplete is closed to make room (see [`websentry_shared::connections`]). (An HTTP server crate would not do this for
//! us: hyper bounds the time to read a head, not the connections that are reading one, and
//! accepting is left to the caller.)

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use websentry_shared::{
    connections::{Connections, Slot},
    shutdown::Shutdown,
};

use crate::metrics::Metrics;

/// A request head larger than this is refused with 431: the routes take no headers we need.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A request line longer than this is refused with 414.
const MAX_REQUEST_LINE_BYTES: usize = 2 * 1024;
/// Connections open at once at most: below the usual limit of 1,024 file descriptors, with room
/// for the rest of the process. The daemon's memory grew by about 6 MiB with all of them taken by
/// slow clients (tests/tests/e2e/http_slow_clients.rs).
pub const MAX_CONNECTIONS: usize = 512;
/// A client that does not send its request head within this time is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A client that does not take its answer within this time is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers requests until `shutdown`, with at most [`MAX_CONNECTIONS`] open.
pub async fn serve_until_stopped(listener: TcpListener, metrics: Arc<Metrics>, shutdown: Shutdown) {
    serve_at_most(listener, metrics, shutdown, MAX_CONNECTIONS).await;
}

async fn serve_at_most(listener: TcpListener, metrics: Arc<Metrics>, mut shutdown: Shutdown, connections: usize) {
    let mut open = Connections::new(connections, Arc::clone(&metrics) as _);
    while let Some((stream, slot)) = open.next(&listener, &mut shutdown).await {
        let id = slot.id();
        let task = tokio::spawn(answer(stream, slot, Arc::clone(&metrics)));
        open.started(id, task.abort_handle());
    }
}

/// What came of reading a request head.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    Complete(String),
    LineTooLong,
    TooLarge,
}

/// Reads a request head and answers it; `slot` is freed when this ends (or the task is aborted).
async fn answer(mut stream: TcpStream, slot: Slot, metrics: Arc<Metrics>) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &slot)).await;
    let (head, (status, content_type, body)) = match head {
        Ok(Some(Head::Complete(head))) => {
            let answer = route(&head, &metrics);
            (head, answer)
        }
        Ok(Some(Head::LineTooLong)) => (String::new(), ("414 URI Too Long", TEXT, "request line too long\n".into())),
        Ok(Some(Head::TooLarge)) => {
            (String::new(), ("431 Request Header Fields Too Large", TEXT, "request head too large\n".into()))
        }
        Ok(None) | Err(_) => return,
    };
    slot.head_complete();
    let allow = if status.starts_with("405") { "Allow: GET, HEAD\r\n" } else { "" };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    // HEAD: the same head as GET, and no body.
    if !head.starts_with("HEAD ") {
        response.push_str(&body);
    }
    let write = async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    if tokio::time::timeout(WRITE_TIMEOUT, write).await.is_err() {
        return;
    }
    if head.is_empty() {
        // The rest of an oversized request is still coming: read it away for a moment, so that
        // closing with unread bytes does not reset the connection before the client reads the answer.
        let mut sink = [0u8; 4096];
        let drain = async { while matches!(stream.read(&mut sink).await, Ok(1..)) {} };
        let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
    }
}

/// Reads up to the blank line ending the request head; `None` if the client stops first. Reads
/// straight into the head, which starts small: a probe's head is a hundred bytes or so. Once part
/// of a head is read and more must come, `slot` is told: the connection then gives way to
/// newcomers at the cap.
async fn read_head(stream: &mut TcpStream, slot: &Slot) -> Option<Head> {
    let mut head = Vec::with_capacity(256);
    let (mut searched, mut line_end): (usize, Option<usize>) = (0, None);
    loop {
        if stream.read_buf(&mut head).await.ok()? == 0 {
            return None;
        }
        // Only the new bytes (and the few before them) can end the line or the head: a head
        // trickled a byte at a time costs no more to read than one sent at once.
        let from = searched.saturating_sub(3);
        let ends = head[from..].windows(4).any(|w| w == b"\r\n\r\n");
        line_end = line_end.or_else(|| head[from..].windows(2).position(|w| w == b"\r\n").map(|at| from + at));
        searched = head.len();
        if line_end.unwrap_or(head.len()) > MAX_REQUEST_LINE_BYTES {
            return Some(Head::LineTooLong);
        }
        if head.len() > MAX_HEAD_BYTES {
            return Some(Head::TooLarge);
        }
        if ends {
            return Some(Head::Complete(String::from_utf8_lossy(&head).into_owned()));
        }
        slot.head_waiting();
    }
}

/// Status line, content type and body for a request head.
fn route(head: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "only GET and HEAD\n".into());
    }
    match path {
        "/healthz" if metrics.alive() => ("200 OK", TEXT, "ok\n".into()),
        "/healthz" => (
            "503 Service Unavailable",
            TEXT,
            format!(
                "stalled: the archiving session has been in one turn for {} s (a service that holds a request without answering)\n",
                metrics.stalled().as_secs()
            ),
        ),
        "/readyz" if metrics.ready() => ("200 OK", TEXT, "ready\n".into()),
        "/readyz" => ("503 Service Unavailable", TEXT, "not ready: needs Kafka, PostgreSQL and a partition\n".into()),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        _ => ("404 Not Found", TEXT, "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use websentry_shared::shutdown::ShutdownTrigger;

    #[test]
    fn routes_answer_by_path_and_readiness() {
        let metrics = Metrics::default();
        let get = |path: &str| route(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"), &metrics);
        assert_eq!(get("/healthz").0, "200 OK");
        assert_eq!(get("/readyz").0, "503 Service Unavailable");
        metrics.set_connected(true, true);
        metrics.hold("t", 0, None);
        assert_eq!(get("/readyz?verbose").0, "200 OK");
        assert!(get("/metrics").2.contains("websentry_reports_archived_total 0"));
        assert_eq!(get("/nope").0, "404 Not Found");
        assert_eq!(route("POST /healthz HTTP/1.1\r\n\r\n", &metrics).0, "405 Method Not Allowed");
    }

    #[test]
    fn healthz_fails_once_the_session_is_stalled_in_one_turn_for_the_limit() {
        let metrics = Metrics::default();
        let get = |path: &str| route(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"), &metrics);
        metrics.session_turned_at(std::time::SystemTime::now() - crate::metrics::STALL_LIMIT + Duration::from_secs(5));
        assert_eq!(get("/healthz").0, "200 OK", "not yet");
        metrics.session_turned_at(std::time::SystemTime::now() - crate::metrics::STALL_LIMIT);
        let (status, _, body) = get("/healthz");
        assert_eq!(status, "503 Service Unavailable");
        assert!(body.starts_with("stalled: the archiving session has been in one turn for 600 s"), "{body}");
        metrics.session_turned();
        assert_eq!(get("/healthz").0, "200 OK", "a new turn");
    }

    /// A server on a free port with at most `connections` open; its address and its stop switch.
    async fn server(connections: usize) -> (std::net::SocketAddr, ShutdownTrigger) {
        let (address, trigger, _) = server_with_metrics(connections).await;
        (address, trigger)
    }

    async fn server_with_metrics(connections: usize) -> (std::net::SocketAddr, ShutdownTrigger, Arc<Metrics>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let address = listener.local_addr().expect("address");
        let (trigger, shutdown) = Shutdown::manual();
        let metrics = Arc::new(Metrics::default());
        tokio::spawn(serve_at_most(listener, Arc::clone(&metrics), shutdown, connections));
        (address, trigger, metrics)
    }

    /// The value of a sample of the exposition.
    fn sample(metrics: &Metrics, name: &str) -> Option<u64> {
        metrics.render().lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Sends `request` and reads the whole answer (the server closes the connection).
    async fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connecting");
        stream.write_all(request).await.expect("sending");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn head_answers_the_get_head_without_a_body() {
        let (address, shutdown) = server(4).await;
        let answer = exchange(address, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
        assert!(answer.contains("Content-Length: 3\r\n") && answer.ends_with("\r\n\r\n"), "{answer:?}");
        let refused = exchange(address, b"DELETE /healthz HTTP/1.1\r\n\r\n").await;
        assert!(refused.starts_with("HTTP/1.1 405") && refused.contains("Allow: GET, HEAD\r\n"), "{refused:?}");
        shutdown.trigger();
    }

    #[tokio::test]
    async fn an_oversized_request_is_answered_414_or_431() {
        let (address, shutdown) = server(4).await;
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE_BYTES));
        assert!(exchange(address, long_line.as_bytes()).await.starts_with("HTTP/1.1 414 "));
        let big_head = format!("GET /healthz HTTP/1.1\r\nX-Filler: {}\r\n\r\n", "b".repeat(MAX_HEAD_BYTES));
        assert!(exchange(address, big_head.as_bytes()).await.starts_with("HTTP/1.1 431 "));
        shutdown.trigger();
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_slow_client_gives_way_to_a_probe() {
        let (address, shutdown, metrics) = server_with_metrics(2).await;
        let mut slow = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(address).await.expect("connecting");
            stream.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.expect("a head begun");
            slow.push(stream);
        }
        let open = async {
            while sample(&metrics, "websentry_http_connections") != Some(2) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), open).await.expect("both slow clients have a slot");

        let answer = tokio::time::timeout(Duration::from_secs(1), exchange(address, b"GET /healthz HTTP/1.1\r\n\r\n"))
            .await
            .expect("answered within a second at the cap");

        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
        let mut byte = [0u8; 1];
        let first = tokio::time::timeout(Duration::from_secs(1), slow[0].read(&mut byte)).await;
        assert!(matches!(first, Ok(Ok(0) | Err(_))), "the oldest slow client was closed: {first:?}");
        let second = tokio::time::timeout(Duration::from_millis(300), slow[1].read(&mut byte)).await;
        assert!(second.is_err(), "the newer slow client keeps its slot: {second:?}");
        assert_eq!(sample(&metrics, "websentry_http_connections_shed_total"), Some(1));
        shutdown.trigger();
    }

    /// One slow client, until the test ends: a head a byte every 100 ms, connecting again when
    /// the server closes it.
    async fn trickle(address: std::net::SocketAddr) {
        let mut buf = [0u8; 64];
        loop {
            let Ok(mut stream) = TcpStream::connect(address).await else { continue };
            if stream.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.is_err() {
                continue;
            }
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = tick.tick() => if stream.write_all(b"x").await.is_err() { break },
                    read = stream.read(&mut buf) => if !matches!(read, Ok(1..)) { break },
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probes_are_answered_within_a_second_while_five_times_more_slow_clients_than_slots_trickle() {
        let (address, shutdown, metrics) = server_with_metrics(8).await;
        let flood: Vec<_> = (0..40).map(|_| tokio::spawn(trickle(address))).collect();
        let full = async {
            while sample(&metrics, "websentry_http_connections_shed_total").unwrap_or(0) < 40 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), full).await.expect("the slow clients fill every slot");

        for n in 0..20 {
            let probe = exchange(address, b"GET /healthz HTTP/1.1\r\nUser-Agent: kube-probe\r\n\r\n");
            let answer = tokio::time::timeout(Duration::from_secs(1), probe).await;
            assert!(
                answer.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200 OK")),
                "probe {n} within a second: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(sample(&metrics, "websentry_http_connections").is_some_and(|open| open <= 8), "{}", metrics.render());
        flood.iter().for_each(tokio::task::JoinHandle::abort);
        shutdown.trigger();
    }
}
