//! The probe's transport: a new connection for each request (resolve, connect, TLS), one HTTP/1.1
//! or HTTP/2 exchange over it with hyper, and the connection kept alive as long as the response
//! body is being read.
//!
//! No pool and no session cache: each probe measures what a new visitor gets, a full TLS handshake
//! included. Each step fails with its own [`ErrorKind`], so that the report tells them apart.

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{client::Resumption, pki_types::ServerName, RootCertStore};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{client::TlsStream, TlsConnector};
use websentry_shared::report::{ErrorKind, ProbeError};

use super::errors::{describe_hyper, failure};

/// Response headers larger than this end the probe with an `http` error.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The TLS side of every probe: trusts `roots`, offers HTTP/2 and HTTP/1.1 (ALPN), and makes a
/// full handshake each time.
pub(super) fn tls_connector(roots: RootCertStore) -> TlsConnector {
    let mut config = websentry_shared::tls::builder_trusting(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Each probe is a new visitor: a full handshake, never a session kept from an earlier
    // probe (no session cache, no tickets) and so no early data either.
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    TlsConnector::from(Arc::new(config))
}

/// The addresses of `host`.
pub(super) async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ProbeError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| failure(ErrorKind::Dns, format!("resolving {host}: {err}")))?
        .collect();
    if addrs.is_empty() {
        return Err(failure(ErrorKind::Dns, format!("{host} resolved to no address")));
    }
    Ok(addrs)
}

/// Connects to the first of `addrs` that accepts.
pub(super) async fn connect(host: &str, addrs: &[SocketAddr]) -> Result<TcpStream, ProbeError> {
    let mut last = String::new();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(err) => last = format!("connecting to {host} ({addr}): {err}"),
        }
    }
    Err(failure(ErrorKind::Connect, last))
}

/// The TLS handshake with `host` over `tcp`.
pub(super) async fn tls_handshake(
    connector: &TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ProbeError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|err| failure(ErrorKind::InvalidUrl, format!("{host}: {err}")))?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|err| failure(ErrorKind::Tls, format!("TLS handshake with {host}: {err}")))
}

/// Aborts the connection task when the exchange is over, whatever way it ends.
struct ConnectionTask(tokio::task::JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `request` over `io` and waits for the response head. HTTP/2 takes the absolute URI;
/// HTTP/1.1 takes the path and a Host header.
pub(super) async fn send<IO>(
    io: IO,
    h2: bool,
    mut request: Request<Empty<Bytes>>,
) -> Result<ResponseWithConnection, ProbeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |err: hyper::Error| failure(ErrorKind::Http, describe_hyper(&err));
    let io = TokioIo::new(io);
    if !h2 {
        let uri = request.uri().clone();
        if let Some(authority) = uri.authority() {
            let host = http::HeaderValue::from_str(authority.as_str())
                .map_err(|err| failure(ErrorKind::InvalidUrl, format!("{uri}: {err}")))?;
            request.headers_mut().entry(header::HOST).or_insert(host);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = path.parse().map_err(|err| failure(ErrorKind::InvalidUrl, format!("{uri}: {err}")))?;
    }
    let (response, task) = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .handshake(io)
            .await
            .map_err(http)?;
        let task = ConnectionTask(tokio::spawn(async move {
            let _ = conn.await;
        }));
        (sender.send_request(request).await.map_err(http)?, task)
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_HEADER_BYTES)
            .handshake(io)
            .await
            .map_err(http)?;
        let task = ConnectionTask(tokio::spawn(async move {
            let _ = conn.await;
        }));
        (sender.send_request(request).await.map_err(http)?, task)
    };
    Ok(ResponseWithConnection { response, _task: task })
}

/// A response whose connection lives as long as it does.
pub(super) struct ResponseWithConnection {
    response: hyper::Response<Incoming>,
    _task: ConnectionTask,
}

impl ResponseWithConnection {
    pub(super) fn status(&self) -> StatusCode {
        self.response.status()
    }

    pub(super) fn version(&self) -> http::Version {
        self.response.version()
    }

    pub(super) fn headers(&self) -> &http::HeaderMap {
        self.response.headers()
    }

    pub(super) fn into_body(self) -> BodyWithConnection {
        BodyWithConnection { body: self.response.into_body(), _task: self._task }
    }
}

/// A response body whose connection lives as long as it does.
pub(super) struct BodyWithConnection {
    pub(super) body: Incoming,
    _task: ConnectionTask,
}

#[cfg(test)]
mod tests {
    use super::{super::test_server::serve, *};

    /// An address on this machine where nothing listens.
    fn refusing() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_naming_the_host_and_address() {
        let addr = refusing();

        let error = connect("example.test", &[addr]).await.expect_err("refused");

        assert_eq!(error.kind, ErrorKind::Connect);
        assert!(error.message.starts_with(&format!("connecting to example.test ({addr}): ")), "{}", error.message);
    }

    #[tokio::test]
    async fn the_first_address_that_accepts_is_taken() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let accepting = listener.local_addr().unwrap();

        let stream = connect("example.test", &[refusing(), accepting]).await.expect("connected");

        assert_eq!(stream.peer_addr().unwrap(), accepting);
    }

    #[tokio::test]
    async fn garbage_instead_of_http_is_an_http_error_in_hyper_s_words() {
        let url = serve(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let addr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
        let tcp = connect("127.0.0.1", &[addr]).await.unwrap();
        let request = Request::get(url.as_str()).body(Empty::new()).unwrap();

        let Err(error) = send(tcp, false, request).await else { panic!("an answer from garbage") };

        assert_eq!(error.kind, ErrorKind::Http);
        assert!(error.message.contains("invalid HTTP"), "{}", error.message);
    }
}
