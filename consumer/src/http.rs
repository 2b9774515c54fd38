//! The daemon's HTTP endpoint: `/healthz`, `/readyz` and `/metrics`, for Kubernetes probes and
//! Prometheus. Three fixed GET routes do not justify an HTTP server crate: this is a small HTTP/1.1
//! responder (one request per connection, `Connection: close`) on the consumer's Tokio runtime. It
//! never touches the database, which lives on its own thread.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use websentry_shared::shutdown::Shutdown;

use crate::metrics::Metrics;

/// A request head larger than this is refused: the routes take no headers we need.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A client that does not send its request head within this time is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers requests until `shutdown`.
pub async fn serve_until_stopped(listener: TcpListener, metrics: Arc<Metrics>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.requested() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, Arc::clone(&metrics)));
                }
                Err(err) => {
                    tracing::warn!(cause = %err, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn answer(mut stream: TcpStream, metrics: Arc<Metrics>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return,
    };
    let (status, content_type, body) = route(&head, &metrics);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads up to the blank line ending the request head; `None` if the client stops or sends too much.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD_BYTES {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Status line, content type and body for a request head.
fn route(head: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut words = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".into());
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
}
