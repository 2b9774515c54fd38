//! One probe of one site: resolve, connect, TLS, HTTP exchange, body, pattern, all under one deadline.
//!
//! We drive the connection ourselves instead of using a pooled client: each probe is a fresh
//! connection (so the report measures what a new visitor gets), and every phase can be told apart in
//! the report's `error.kind`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{pki_types::ServerName, RootCertStore};
use time::OffsetDateTime;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    time::Instant,
};
use tokio_rustls::TlsConnector;
use url::Url;
use uuid::Uuid;
use websentry_shared::report::{ErrorKind, ProbeError, Report, Timings, SCHEMA_VERSION};

use crate::{certificate::not_after, site::Site};

/// Response headers larger than this end the probe with an `http` error.
const MAX_HEADER_BYTES: usize = 64 * 1024;

const USER_AGENT: &str = concat!("websentry/", env!("CARGO_PKG_VERSION"));

/// How every probe behaves unless its site says otherwise.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// One deadline across all phases and redirects.
    pub timeout: Duration,
    /// Body bytes read at most; the pattern is matched on what was read.
    pub body_limit: usize,
    /// Redirects followed at most; one more is an `http` error.
    pub max_redirects: u32,
    /// Written into each report's `probe` field.
    pub probe_name: String,
}

/// Probes sites; cheap to share between tasks.
pub struct Prober {
    tls: TlsConnector,
    settings: ProbeSettings,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// What a probe learned before it ended, kept even when the deadline cuts it short.
#[derive(Debug, Default)]
struct Progress {
    code: u16,
    http_version: Option<String>,
    final_url: Option<String>,
    redirects: u32,
    timings: Timings,
    tls_expires_at: Option<OffsetDateTime>,
    body: Vec<u8>,
    /// Body bytes read, kept when the body moves to the pattern search.
    body_len: u64,
}

fn failure(kind: ErrorKind, message: impl Into<String>) -> ProbeError {
    ProbeError { kind, message: message.into() }
}

/// Milliseconds, rounded to the microsecond.
fn ms(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Prober {
    /// A prober that trusts `roots` for `https` sites.
    pub fn new(roots: RootCertStore, settings: ProbeSettings) -> Self {
        let mut config = websentry_shared::tls::builder_trusting(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self { tls: TlsConnector::from(Arc::new(config)), settings }
    }

    /// Probes `site` once. Never fails: a site that is down is a report with an `error`.
    #[tracing::instrument(skip_all, fields(url = site.url.as_str()))]
    pub async fn probe(&self, site: &Site) -> Report {
        let checked_at = OffsetDateTime::now_utc();
        let started = Instant::now();
        let timeout = site.timeout.unwrap_or(self.settings.timeout);
        let mut progress = Progress::default();
        let fetched = tokio::time::timeout(timeout, self.fetch(site, &mut progress)).await;
        let mut error = match fetched {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err),
            Err(_) => Some(failure(ErrorKind::Timeout, format!("no complete answer within {timeout:?}"))),
        };
        let response_ms = ms(started.elapsed());
        let answered = progress.code != 0;
        if let (Some(expected), true, None) = (&site.expect_status, answered, &error) {
            if !expected.contains(progress.code) {
                let message = format!("status {} is not one of the expected {expected}", progress.code);
                error = Some(failure(ErrorKind::Http, message));
            }
        }
        let mut regexp_match = None;
        if let (Some(matcher), true) = (&site.matcher, answered) {
            // A body of a megabyte can take a while to search: keep it off the I/O threads.
            let body = std::mem::take(&mut progress.body);
            let matcher = matcher.clone();
            let found = tokio::task::spawn_blocking(move || matcher.find(&String::from_utf8_lossy(&body))).await;
            match found {
                Ok(Ok(found)) => regexp_match = found,
                Ok(Err(limit)) => {
                    error.get_or_insert(failure(ErrorKind::RegexLimit, limit.to_string()));
                }
                Err(join) => {
                    error.get_or_insert(failure(ErrorKind::RegexLimit, format!("pattern search failed: {join}")));
                }
            }
        }
        if let Some(err) = &error {
            tracing::debug!(kind = err.kind.as_str(), message = %err.message, "probe failed");
        }
        Report {
            v: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            url: site.url.as_str().to_owned(),
            code: progress.code,
            response_ms,
            regexp_match,
            checked_at,
            probe: self.settings.probe_name.clone(),
            error,
            timings_ms: progress.timings,
            http_version: progress.http_version,
            final_url: progress.final_url,
            redirects: progress.redirects,
            body_bytes: answered.then_some(progress.body_len),
            tls_expires_at: progress.tls_expires_at,
        }
    }

    /// Follows redirects up to the limit; the final response's body ends up in `progress`.
    async fn fetch(&self, site: &Site, progress: &mut Progress) -> Result<(), ProbeError> {
        let mut url = site.url.url().clone();
        loop {
            match self.exchange(site, &url, progress).await? {
                Some(_) if progress.redirects >= self.settings.max_redirects => {
                    let limit = self.settings.max_redirects;
                    return Err(failure(ErrorKind::Http, format!("more than {limit} redirects (last to {url})")));
                }
                Some(next) => {
                    progress.redirects += 1;
                    url = next;
                }
                None => return Ok(()),
            }
        }
    }

    /// One request on a new connection. Returns where a redirect points, if the answer is one.
    async fn exchange(&self, site: &Site, url: &Url, progress: &mut Progress) -> Result<Option<Url>, ProbeError> {
        progress.timings = Timings::default();
        progress.tls_expires_at = None;
        progress.final_url = Some(url.to_string());
        let (host, resolves) = match url.host() {
            Some(url::Host::Domain(name)) => (name.to_owned(), true),
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), false),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), false),
            None => return Err(failure(ErrorKind::InvalidUrl, format!("{url} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let phase = Instant::now();
        let addrs = resolve(&host, port).await?;
        if resolves {
            progress.timings.dns = Some(ms(phase.elapsed()));
        }
        let phase = Instant::now();
        let tcp = connect(&host, &addrs).await?;
        progress.timings.connect = Some(ms(phase.elapsed()));
        let request = request(site, url)?;
        let response = if url.scheme() == "https" {
            let name = ServerName::try_from(host.clone())
                .map_err(|err| failure(ErrorKind::InvalidUrl, format!("{host}: {err}")))?;
            let phase = Instant::now();
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|err| failure(ErrorKind::Tls, format!("TLS handshake with {host}: {err}")))?;
            progress.timings.tls = Some(ms(phase.elapsed()));
            let session = tls.get_ref().1;
            progress.tls_expires_at =
                session.peer_certificates().and_then(|chain| chain.first()).and_then(|leaf| not_after(leaf));
            let h2 = session.alpn_protocol() == Some(b"h2");
            let phase = Instant::now();
            let response = send(tls, h2, request).await?;
            progress.timings.ttfb = Some(ms(phase.elapsed()));
            response
        } else {
            let phase = Instant::now();
            let response = send(tcp, false, request).await?;
            progress.timings.ttfb = Some(ms(phase.elapsed()));
            response
        };
        progress.code = response.status().as_u16();
        progress.http_version = Some(format!("{:?}", response.version()));
        progress.body.clear();
        progress.body_len = 0;
        if let Some(next) = redirect_target(url, &response)? {
            return Ok(Some(next));
        }
        let phase = Instant::now();
        let read = read_body(response.into_body(), self.settings.body_limit, &mut progress.body).await;
        progress.body_len = progress.body.len() as u64;
        progress.timings.transfer = Some(ms(phase.elapsed()));
        read.map(|()| None)
    }
}

/// The request for `url` with the site's method and headers.
fn request(site: &Site, url: &Url) -> Result<Request<Empty<Bytes>>, ProbeError> {
    let mut builder = Request::builder()
        .method(site.method.clone())
        .uri(url.as_str())
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*");
    if let Some(headers) = builder.headers_mut() {
        for (name, value) in &site.headers {
            headers.insert(name, value.clone());
        }
    }
    builder.body(Empty::new()).map_err(|err| failure(ErrorKind::InvalidUrl, format!("{url}: {err}")))
}

/// The addresses of `host`.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ProbeError> {
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
async fn connect(host: &str, addrs: &[SocketAddr]) -> Result<TcpStream, ProbeError> {
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

/// Aborts the connection task when the exchange is over, whatever way it ends.
struct ConnectionTask(tokio::task::JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `request` over `io` and waits for the response head. HTTP/2 takes the absolute URI;
/// HTTP/1.1 takes the path and a Host header.
async fn send<IO>(io: IO, h2: bool, mut request: Request<Empty<Bytes>>) -> Result<ResponseWithConnection, ProbeError>
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
struct ResponseWithConnection {
    response: hyper::Response<Incoming>,
    _task: ConnectionTask,
}

impl ResponseWithConnection {
    fn status(&self) -> StatusCode {
        self.response.status()
    }

    fn version(&self) -> http::Version {
        self.response.version()
    }

    fn headers(&self) -> &http::HeaderMap {
        self.response.headers()
    }

    fn into_body(self) -> BodyWithConnection {
        BodyWithConnection { body: self.response.into_body(), _task: self._task }
    }
}

struct BodyWithConnection {
    body: Incoming,
    _task: ConnectionTask,
}

/// Reads the body into `out`, at most `limit` bytes.
async fn read_body(mut body: BodyWithConnection, limit: usize, out: &mut Vec<u8>) -> Result<(), ProbeError> {
    while let Some(frame) = body.body.frame().await {
        let frame =
            frame.map_err(|err| failure(ErrorKind::Http, format!("reading the body: {}", describe_hyper(&err))))?;
        let Ok(data) = frame.into_data() else { continue };
        let room = limit - out.len();
        if data.len() > room {
            out.extend_from_slice(&data[..room]);
            return Err(failure(
                ErrorKind::BodyLimit,
                format!("body larger than {limit} bytes; matched on the first {limit}"),
            ));
        }
        out.extend_from_slice(&data);
    }
    Ok(())
}

/// Where a redirect response points, resolved against the URL that answered.
fn redirect_target(url: &Url, response: &ResponseWithConnection) -> Result<Option<Url>, ProbeError> {
    let status = response.status();
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| failure(ErrorKind::Http, format!("{status} with a Location that is not text")))?;
    let next =
        url.join(location).map_err(|err| failure(ErrorKind::Http, format!("{status} to '{location}': {err}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(failure(ErrorKind::Http, format!("{status} to '{next}': not http or https")));
    }
    Ok(Some(next))
}

/// hyper's own text plus its source, which says what actually happened (reset, parse error…).
fn describe_hyper(err: &hyper::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{matcher::Matcher, site::SiteUrl};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    /// A server that answers every connection with `response`, then closes.
    async fn serve(response: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(response).await;
                });
            }
        });
        format!("http://{addr}/")
    }

    fn prober(body_limit: usize) -> Prober {
        let settings =
            ProbeSettings { timeout: Duration::from_secs(5), body_limit, max_redirects: 3, probe_name: "test".into() };
        Prober::new(RootCertStore::empty(), settings)
    }

    fn site(url: &str, pattern: Option<&str>) -> Site {
        Site::simple(SiteUrl::parse(url).unwrap(), pattern.map(|p| Matcher::parse(p).unwrap()))
    }

    #[tokio::test]
    async fn a_page_gives_its_status_and_match() {
        let url = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nversion=1.2.3\n").await;
        let report = prober(1024).probe(&site(&url, Some(r"version=(\d+)\.(\d+)"))).await;
        assert_eq!(report.code, 200);
        assert_eq!(report.regexp_match.as_deref(), Some("12"));
        assert_eq!(report.error, None);
        assert_eq!(report.body_bytes, Some(14));
        assert_eq!(report.http_version.as_deref(), Some("HTTP/1.1"));
        assert_eq!(report.final_url.as_deref(), Some(url.as_str()));
        let t = report.timings_ms;
        assert_eq!(t.dns, None, "an IP address is not resolved");
        assert_eq!(t.tls, None, "http has no TLS");
        assert!(t.connect.is_some() && t.ttfb.is_some() && t.transfer.is_some(), "{t:?}");
    }

    #[tokio::test]
    async fn an_unexpected_status_is_reported_as_an_http_error() {
        let url = serve(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").await;
        let mut site = site(&url, None);
        site.expect_status = Some(crate::site::StatusSet::parse("200-299").unwrap());
        let report = prober(1024).probe(&site).await;
        assert_eq!(report.code, 503);
        let error = report.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Http);
        assert!(error.message.contains("503 is not one of the expected 200-299"), "{}", error.message);
    }

    #[tokio::test]
    async fn a_redirect_loop_ends_as_an_http_error_after_the_limit() {
        let url = serve(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n").await;
        let report = prober(1024).probe(&site(&url, None)).await;
        assert_eq!(report.code, 302);
        assert_eq!(report.redirects, 3);
        assert_eq!(report.error.map(|e| e.kind), Some(ErrorKind::Http));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_with_code_0() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let report = prober(1024).probe(&site(&url, None)).await;
        assert_eq!(report.code, 0);
        assert_eq!(report.error.map(|e| e.kind), Some(ErrorKind::Connect));
        assert_eq!(report.regexp_match, None);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_matched_on_what_was_read() {
        let url =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\nabcdefghij0123456789").await;
        let report = prober(5).probe(&site(&url, Some("[a-z]+"))).await;
        assert_eq!(report.code, 200);
        assert_eq!(report.error.map(|e| e.kind), Some(ErrorKind::BodyLimit));
        assert_eq!(report.regexp_match.as_deref(), Some("abcde"));
    }

    #[tokio::test]
    async fn garbage_instead_of_http_is_an_http_error() {
        let url = serve(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let report = prober(1024).probe(&site(&url, None)).await;
        assert_eq!(report.error.map(|e| e.kind), Some(ErrorKind::Http));
    }
}
