//! The daemon's HTTP endpoint: `/healthz`, `/readyz` and `/metrics`, for Kubernetes probes and
//! Prometheus. Three fixed GET routes do not justify an HTTP server crate: this is a small HTTP/1.1
//! responder (one request per connection, `Connection: close`) on the consumer's Tokio runtime. It
//! never touches the database, which lives on its own thread.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use websentry_shared::shutdown::Shutdown;

use crate::metrics::Metrics;

/// A request head larger than this is refused with 431: the routes take no headers we need.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A request line longer than this is refused with 414.
const MAX_REQUEST_LINE_BYTES: usize = 2 * 1024;
/// Connections served at once at most; a further one waits to be accepted (mini-redis's
/// `limit_connections`), so a flood of idle connections costs bounded memory and file descriptors.
pub const MAX_CONNECTIONS: usize = 64;
/// A client that does not send its request head within this time is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers requests until `shutdown`, [`MAX_CONNECTIONS`] at a time.
pub async fn serve_until_stopped(listener: TcpListener, metrics: Arc<Metrics>, shutdown: Shutdown) {
    serve_at_most(listener, metrics, shutdown, MAX_CONNECTIONS).await;
}

async fn serve_at_most(listener: TcpListener, metrics: Arc<Metrics>, mut shutdown: Shutdown, connections: usize) {
    let permits = Arc::new(Semaphore::new(connections));
    loop {
        let permit = tokio::select! {
            () = shutdown.requested() => return,
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        tokio::select! {
            () = shutdown.requested() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let metrics = Arc::clone(&metrics);
                    tokio::spawn(async move {
                        answer(stream, &metrics).await;
                        drop(permit);
                    });
                }
                Err(err) => {
                    tracing::warn!(cause = %err, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// What came of reading a request head.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    Complete(String),
    LineTooLong,
    TooLarge,
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let (head, (status, content_type, body)) = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(Head::Complete(head))) => {
            let answer = route(&head, metrics);
            (head, answer)
        }
        Ok(Some(Head::LineTooLong)) => (String::new(), ("414 URI Too Long", TEXT, "request line too long\n".into())),
        Ok(Some(Head::TooLarge)) => {
            (String::new(), ("431 Request Header Fields Too Large", TEXT, "request head too large\n".into()))
        }
        Ok(None) | Err(_) => return,
    };
    let allow = if status.starts_with("405") { "Allow: GET, HEAD\r\n" } else { "" };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    // HEAD: the same head as GET, and no body.
    if !head.starts_with("HEAD ") {
        response.push_str(&body);
    }
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    if head.is_empty() {
        // The rest of an oversized request is still coming: read it away for a moment, so that
        // closing with unread bytes does not reset the connection before the client reads the answer.
        let mut sink = [0u8; 4096];
        let drain = async { while matches!(stream.read(&mut sink).await, Ok(1..)) {} };
        let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
    }
}

/// Reads up to the blank line ending the request head; `None` if the client stops first.
async fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        let line_end = head.windows(2).position(|w| w == b"\r\n");
        if line_end.unwrap_or(head.len()) > MAX_REQUEST_LINE_BYTES {
            return Some(Head::LineTooLong);
        }
        if head.len() > MAX_HEAD_BYTES {
            return Some(Head::TooLarge);
        }
    }
    Some(Head::Complete(String::from_utf8_lossy(&head).into_owned()))
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
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
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

    /// A server on a free port, `connections` at a time; its address and its stop switch.
    async fn server(connections: usize) -> (std::net::SocketAddr, ShutdownTrigger) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let address = listener.local_addr().expect("address");
        let (trigger, shutdown) = Shutdown::manual();
        tokio::spawn(serve_at_most(listener, Arc::new(Metrics::default()), shutdown, connections));
        (address, trigger)
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
    async fn connections_over_the_cap_wait_for_a_free_one() {
        let (address, shutdown) = server(2).await;
        let idle: Vec<TcpStream> = futures::future::join_all((0..2).map(|_| TcpStream::connect(address)))
            .await
            .into_iter()
            .map(|s| s.expect("connecting"))
            .collect();
        let third = exchange(address, b"GET /healthz HTTP/1.1\r\n\r\n");
        tokio::pin!(third);
        let early = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
        assert!(early.is_err(), "a third connection is not served while two are open: {early:?}");
        drop(idle);
        let answer = tokio::time::timeout(Duration::from_secs(5), third).await.expect("served once one closed");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
        shutdown.trigger();
    }
}
