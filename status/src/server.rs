//! The listener: hyper's HTTP/1.1 connections serving the router, safe to put in front of the
//! public.
//!
//! - At most [`MAX_CONNECTIONS`] connections are open; at the cap, the oldest one whose request
//!   head is still incomplete is closed to make room (see [`websentry_shared::connections`]), so a flood of slow clients
//!   cannot keep `/healthz` from answering.
//! - A request head must arrive within [`HEAD_TIMEOUT`] (hyper's header read timeout, which also
//!   bounds a kept-alive connection's silence), hold at most [`MAX_HEADERS`] headers and
//!   [`MAX_HEAD_BYTES`] bytes (else 431), and an answer must be taken within
//!   [`stream::WRITE_TIMEOUT`].
//! - On shutdown, no connection is accepted any more, open ones finish their request (hyper's
//!   graceful shutdown) for [`SHUTDOWN_GRACE`] at most.

mod stream;

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::Router;
use hyper::{body::Incoming, server::conn::http1, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, time::Instant};
use tower::ServiceExt;
use websentry_shared::{
    connections::{Connections, Slot},
    shutdown::Shutdown,
};

use crate::metrics::Metrics;
use stream::Tracked;

/// Connections open at once at most: below the usual limit of 1,024 file descriptors, with room
/// for the pool and the rest of the process.
pub const MAX_CONNECTIONS: usize = 512;
/// A request head that has not fully arrived within this time closes its connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of a request head at most (hyper's read buffer): a larger one is answered 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Headers of a request at most: more are answered 431.
pub const MAX_HEADERS: usize = 64;
/// How long open connections may finish their requests after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown`, with at most [`MAX_CONNECTIONS`] open; returns
/// once the open connections have finished (or [`SHUTDOWN_GRACE`] has passed).
pub async fn serve_until_stopped(listener: TcpListener, app: Router, metrics: Arc<Metrics>, shutdown: Shutdown) {
    serve_at_most(listener, app, metrics, shutdown, MAX_CONNECTIONS).await;
}

async fn serve_at_most(
    listener: TcpListener,
    app: Router,
    metrics: Arc<Metrics>,
    mut shutdown: Shutdown,
    connections: usize,
) {
    let mut open = Connections::new(connections, metrics);
    while let Some((stream, slot)) = open.next(&listener, &mut shutdown).await {
        let id = slot.id();
        let task = tokio::spawn(connection(stream, slot, app.clone(), shutdown.clone()));
        open.started(id, task.abort_handle());
    }
    drop(listener);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while open.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One connection: HTTP/1.1 requests, kept alive, until the client leaves, a limit is crossed or
/// shutdown is requested (then the request in flight is finished first).
async fn connection(stream: tokio::net::TcpStream, slot: Slot, app: Router, mut shutdown: Shutdown) {
    let _ = stream.set_nodelay(true);
    let slot = Arc::new(slot);
    let io = TokioIo::new(Tracked::new(stream, Arc::clone(&slot)));
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        slot.head_complete();
        let (app, slot) = (app.clone(), Arc::clone(&slot));
        async move {
            let response = app.oneshot(request).await;
            slot.answered(Instant::now());
            Ok::<_, Infallible>(match response {
                Ok(response) => response,
                Err(never) => match never {},
            })
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = shutdown.requested() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };
    use websentry_shared::shutdown::ShutdownTrigger;

    use super::*;

    fn app() -> Router {
        Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }))
    }

    async fn server(connections: usize) -> (std::net::SocketAddr, ShutdownTrigger, Arc<Metrics>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let address = listener.local_addr().expect("address");
        let (trigger, shutdown) = Shutdown::manual();
        let metrics = Arc::new(Metrics::default());
        tokio::spawn(serve_at_most(listener, app(), Arc::clone(&metrics), shutdown, connections));
        (address, trigger, metrics)
    }

    fn sample(metrics: &Metrics, name: &str) -> Option<u64> {
        metrics.render().lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    /// Sends `request` and reads the answer until the server closes the connection.
    async fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connecting");
        stream.write_all(request).await.expect("sending");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_head_too_large_or_with_too_many_headers_is_answered_431() {
        let (address, shutdown, _) = server(4).await;
        let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n", "b".repeat(MAX_HEAD_BYTES));
        let many: String = (0..=MAX_HEADERS).map(|n| format!("X-{n}: y\r\n")).collect();
        let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");

        for (what, request) in [("too large", big), ("too many headers", many)] {
            let answer = exchange(address, request.as_bytes()).await;
            assert!(answer.starts_with("HTTP/1.1 431 "), "{what}: {answer:?}");
        }
        let fine = exchange(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(fine.starts_with("HTTP/1.1 200 OK") && fine.ends_with("ok\n"), "{fine:?}");
        shutdown.trigger();
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_slow_client_gives_way_to_a_probe() {
        let (address, shutdown, metrics) = server(2).await;
        let mut slow = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(address).await.expect("connecting");
            stream.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.expect("a head begun");
            slow.push(stream);
        }
        let open = async {
            while sample(&metrics, "websentry_status_http_connections") != Some(2) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), open).await.expect("both slow clients have a slot");
        // Their heads are read (so they wait) once hyper polls them.
        tokio::time::sleep(Duration::from_millis(50)).await;

        let probe = exchange(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let answer = tokio::time::timeout(Duration::from_secs(1), probe).await.expect("answered within a second");

        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
        let mut byte = [0u8; 1];
        let first = tokio::time::timeout(Duration::from_secs(1), slow[0].read(&mut byte)).await;
        assert!(matches!(first, Ok(Ok(0) | Err(_))), "the oldest slow client was closed: {first:?}");
        assert_eq!(sample(&metrics, "websentry_status_http_connections_shed_total"), Some(1));
        shutdown.trigger();
    }

    #[tokio::test]
    async fn a_kept_alive_connection_answers_several_requests_and_shutdown_ends_it() {
        let (address, shutdown, metrics) = server(4).await;
        let mut stream = TcpStream::connect(address).await.expect("connecting");
        let mut answers = String::new();
        for _ in 0..3 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("sending");
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).await.expect("an answer");
            answers.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 3, "{answers}");

        shutdown.trigger();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "an idle kept-alive connection is closed on shutdown");
        let gone = async {
            while sample(&metrics, "websentry_status_http_connections") != Some(0) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), gone).await.expect("its slot is freed");
    }
}
