//! One probe of one site: resolve, connect, TLS, HTTP exchange, body, pattern, all under one deadline.
//!
//! We drive the connection ourselves instead of using a pooled client: each probe is a fresh
//! connection (so the report measures what a new visitor gets), and every phase can be told apart in
//! the report's `error.kind`.
//!
//! This file is the orchestration: the deadline, the redirects, each phase timed into the report,
//! the status and pattern checks, the report itself. The steps are the other files: `transport`
//! (resolve, connect, TLS, one HTTP/1.1 or HTTP/2 exchange with hyper), [`body`] (the body under the
//! body limit and the round's memory budget), [`search`] (the pattern search under the deadline)
//! and `errors` (how a failed step is worded).
//!
//! The site's headers and the credentials of its URL go only to the site's origin (scheme, host and
//! port): a redirect to another origin drops them for the rest of the probe, even if a later
//! redirect comes back. Browsers and curl do so for `Authorization` and `Cookie`; here any site
//! header may be a key. A redirect's own userinfo is ignored.

pub mod body;
mod errors;
pub mod search;
#[cfg(test)]
mod test_server;
mod transport;

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Request, StatusCode};
use http_body_util::Empty;
use rustls::RootCertStore;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use url::Url;
use uuid::Uuid;
use websentry_shared::report::{ErrorKind, ProbeError, Report, Timings, SCHEMA_VERSION};

use self::{
    body::{Body, BodyBudget, BODY_BUDGET},
    errors::failure,
    search::{Search, SearchSlots, SEARCH_MARGIN},
};
use crate::{certificate::not_after, credentials::without_userinfo, site::Site};

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
    budget: BodyBudget,
    slots: SearchSlots,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("settings", &self.settings)
            .field("budget", &self.budget)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
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
    tls_chain_expires_at: Option<OffsetDateTime>,
    /// Kept here, with its share of the budget, when the deadline cuts the probe short.
    body: Body,
}

/// Milliseconds, rounded to the microsecond.
fn ms(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl Prober {
    /// A prober that trusts `roots` for `https` sites, its probes sharing a body budget of
    /// [`BODY_BUDGET`] (or the body limit, if larger) and a search slot per CPU for backtracking
    /// patterns.
    pub fn new(roots: RootCertStore, settings: ProbeSettings) -> Self {
        let budget = BodyBudget::new(BODY_BUDGET, settings.body_limit);
        Self { tls: transport::tls_connector(roots), settings, budget, slots: SearchSlots::per_cpu() }
    }

    /// The same prober with a body budget of `bytes` (or the body limit, if larger).
    #[must_use]
    pub fn with_body_budget(mut self, bytes: usize) -> Self {
        self.budget = BodyBudget::new(bytes, self.settings.body_limit);
        self
    }

    /// The body bytes its probes may keep at once.
    pub fn body_budget(&self) -> &BodyBudget {
        &self.budget
    }

    /// Probes `site` once. Never fails: a site that is down is a report with an `error`.
    // A span at DEBUG: at the usual levels it costs nothing, at DEBUG the probe's events carry the URL.
    #[tracing::instrument(level = "debug", skip_all, fields(url = site.url.as_str()))]
    pub async fn probe(&self, site: &Site) -> Report {
        let checked_at = OffsetDateTime::now_utc();
        let started = Instant::now();
        let timeout = site.timeout.unwrap_or(self.settings.timeout);
        let mut progress = Progress::default();
        let fetched = tokio::time::timeout(timeout, self.fetch(site, &mut progress)).await;
        let mut error = match fetched {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err),
            Err(_) if progress.body.is_waiting() => Some(failure(
                ErrorKind::Timeout,
                format!("no complete answer within {timeout:?}: the body waited for the memory budget"),
            )),
            Err(_) => Some(failure(ErrorKind::Timeout, format!("no complete answer within {timeout:?}"))),
        };
        let response_ms = ms(started.elapsed());
        let answered = progress.code != 0;
        // Only a final answer is judged: a probe that already failed keeps its own error.
        if answered && error.is_none() && !site.expect_status.contains(progress.code) {
            let message = format!("status {} is not one of the expected {}", progress.code, site.expect_status);
            error = Some(failure(ErrorKind::Http, message));
        }
        let mut regexp_match = None;
        let body = std::mem::take(&mut progress.body);
        let body_bytes = answered.then_some(body.len() as u64);
        if let (Some(matcher), true) = (&site.matcher, answered) {
            let deadline = started + timeout + SEARCH_MARGIN;
            let search = Search { matcher, budget: &self.budget, slots: &self.slots, timeout, deadline };
            match search.run(body).await {
                Ok(found) => regexp_match = found,
                Err(limit) => {
                    error.get_or_insert(limit);
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
            body_bytes,
            tls_expires_at: progress.tls_expires_at,
            tls_chain_expires_at: progress.tls_chain_expires_at,
            // The site's cadence: within a day, so it fits.
            interval_s: site.interval.map(|every| u32::try_from(every.as_secs()).unwrap_or(u32::MAX)),
            inconclusive: false,
            name: site.name.clone(),
            group: site.group.clone(),
        }
    }

    /// Follows redirects up to the limit; the final response's body ends up in `progress`. The
    /// site's headers and credentials go along while every hop stays on the site's origin.
    async fn fetch(&self, site: &Site, progress: &mut Progress) -> Result<(), ProbeError> {
        let mut url = site.url.url().clone();
        let origin = url.origin();
        let mut same_origin = true;
        loop {
            match self.exchange(site, &url, same_origin, progress).await? {
                Some(_) if progress.redirects >= self.settings.max_redirects => {
                    let limit = self.settings.max_redirects;
                    return Err(failure(ErrorKind::Http, format!("more than {limit} redirects (last to {url})")));
                }
                Some(next) => {
                    progress.redirects += 1;
                    url = without_userinfo(&next);
                    same_origin &= url.origin() == origin;
                }
                None => return Ok(()),
            }
        }
    }

    /// One request on a new connection, with the site's headers and credentials when
    /// `same_origin`. Returns where a redirect points, if the answer is one.
    async fn exchange(
        &self,
        site: &Site,
        url: &Url,
        same_origin: bool,
        progress: &mut Progress,
    ) -> Result<Option<Url>, ProbeError> {
        progress.timings = Timings::default();
        progress.tls_expires_at = None;
        progress.tls_chain_expires_at = None;
        progress.body = Body::default();
        let credentials = site.url.credentials().filter(|_| same_origin);
        progress.final_url = Some(credentials.map_or_else(|| url.to_string(), |c| c.show_with(url)));
        let (host, resolves) = match url.host() {
            Some(url::Host::Domain(name)) => (name.to_owned(), true),
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), false),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), false),
            None => return Err(failure(ErrorKind::InvalidUrl, format!("{url} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let phase = Instant::now();
        let addrs = transport::resolve(&host, port).await?;
        if resolves {
            progress.timings.dns = Some(ms(phase.elapsed()));
        }
        let phase = Instant::now();
        let tcp = transport::connect(&host, &addrs).await?;
        progress.timings.connect = Some(ms(phase.elapsed()));
        let request = request(site, url, same_origin)?;
        let response = if url.scheme() == "https" {
            let phase = Instant::now();
            let tls = transport::tls_handshake(&self.tls, &host, tcp).await?;
            progress.timings.tls = Some(ms(phase.elapsed()));
            let session = tls.get_ref().1;
            let chain = session.peer_certificates().unwrap_or_default();
            progress.tls_expires_at = chain.first().and_then(|leaf| not_after(leaf));
            progress.tls_chain_expires_at = chain.iter().filter_map(|der| not_after(der)).min();
            let h2 = session.alpn_protocol() == Some(b"h2");
            let phase = Instant::now();
            let response = transport::send(tls, h2, request).await?;
            progress.timings.ttfb = Some(ms(phase.elapsed()));
            response
        } else {
            let phase = Instant::now();
            let response = transport::send(tcp, false, request).await?;
            progress.timings.ttfb = Some(ms(phase.elapsed()));
            response
        };
        let status = response.status();
        progress.code = status.as_u16();
        progress.http_version = Some(format!("{:?}", response.version()));
        if status.is_informational() {
            // We ask for no upgrade: a 101 (the only 1xx hyper hands over) is not an answer.
            return Err(failure(ErrorKind::Http, format!("{status} is not a final answer")));
        }
        if let Some(next) = redirect_target(url, status, response.headers())? {
            return Ok(Some(next));
        }
        // A HEAD, 204 or 304 answer has no body whatever its Content-Length says.
        let bodiless = site.method == http::Method::HEAD || matches!(status.as_u16(), 204 | 304);
        let announced = (!bodiless)
            .then(|| response.headers().get(header::CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok())
            .flatten();
        let phase = Instant::now();
        let mut incoming = response.into_body();
        progress.body = Body::new(site.matcher.is_some());
        let read = progress.body.read(&mut incoming.body, announced, self.settings.body_limit, &self.budget).await;
        let waited = progress.body.waited();
        progress.timings.transfer = Some(ms(phase.elapsed().saturating_sub(waited)));
        if !waited.is_zero() {
            tracing::debug!(waited_ms = ms(waited), "waited for the body budget");
        }
        read.map(|()| None)
    }
}

/// The request for `url` with the site's method; with its headers and credentials when
/// `same_origin`. A header named `Authorization` in the site's settings wins over the URL's
/// credentials.
fn request(site: &Site, url: &Url, same_origin: bool) -> Result<Request<Empty<Bytes>>, ProbeError> {
    let mut builder = Request::builder()
        .method(site.method.clone())
        .uri(url.as_str())
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*");
    if let (Some(headers), true) = (builder.headers_mut(), same_origin) {
        if let Some(credentials) = site.url.credentials() {
            headers.insert(header::AUTHORIZATION, credentials.authorization().clone());
        }
        for (name, value) in &site.headers {
            headers.insert(name, value.clone());
        }
    }
    builder.body(Empty::new()).map_err(|err| failure(ErrorKind::InvalidUrl, format!("{url}: {err}")))
}

/// Where a redirect points, resolved against the URL that answered; `None` when the answer is not
/// a redirect (or one without a Location, which is then the final answer).
fn redirect_target(url: &Url, status: StatusCode, headers: &HeaderMap) -> Result<Option<Url>, ProbeError> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = headers.get(header::LOCATION) else {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{body::FREE_BYTES, test_server::serve, *};
    use crate::{
        matcher::Matcher,
        site::{SiteUrl, StatusSet},
    };

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
        site.expect_status = StatusSet::parse("200-299").unwrap();
        let report = prober(1024).probe(&site).await;
        assert_eq!(report.code, 503);
        let error = report.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Http);
        assert!(error.message.contains("503 is not one of the expected 200-299"), "{}", error.message);
    }

    #[tokio::test]
    async fn a_site_without_expect_status_is_up_for_200_to_399_and_an_http_error_otherwise() {
        // (case, response, error expected)
        let cases: [(&str, &'static [u8], bool); 7] = [
            ("200", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            ("204", b"HTTP/1.1 204 No Content\r\n\r\n", false),
            ("301 without Location", b"HTTP/1.1 301 Moved Permanently\r\nContent-Length: 0\r\n\r\n", false),
            ("304", b"HTTP/1.1 304 Not Modified\r\n\r\n", false),
            ("404", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", true),
            ("500", b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", true),
            ("503", b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", true),
        ];
        for (case, response, fails) in cases {
            let url = serve(response).await;

            let report = prober(1024).probe(&site(&url, None)).await;

            let code: u16 = case[..3].parse().unwrap();
            assert_eq!(report.code, code, "{case}: the code is kept");
            assert_eq!(report.redirects, 0, "{case}: the final answer");
            match report.error {
                None => assert!(!fails, "{case}: no error"),
                Some(error) => {
                    assert!(fails, "{case}: {}", error.message);
                    assert_eq!(error.kind, ErrorKind::Http, "{case}");
                    assert_eq!(error.message, format!("status {code} is not one of the expected 200-399"), "{case}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_site_with_expect_status_keeps_exactly_its_own_set() {
        // (case, response, error expected)
        let cases: [(&str, &'static [u8], bool); 2] = [
            ("404", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false),
            ("200", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        ];
        for (case, response, fails) in cases {
            let url = serve(response).await;
            let mut site = site(&url, None);
            site.expect_status = StatusSet::parse("404").unwrap();

            let report = prober(1024).probe(&site).await;

            assert_eq!(report.code.to_string(), case, "{case}: the code is kept");
            match report.error {
                None => assert!(!fails, "{case}: no error"),
                Some(error) => {
                    assert!(fails, "{case}: {}", error.message);
                    assert_eq!(error.kind, ErrorKind::Http, "{case}");
                    assert_eq!(error.message, "status 200 is not one of the expected 404", "{case}");
                }
            }
        }
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
    async fn a_101_switching_protocols_is_an_http_error_with_its_code() {
        let url = serve(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").await;
        let report = prober(1024).probe(&site(&url, Some("x"))).await;
        assert_eq!(report.code, 101);
        let error = report.error.expect("an error");
        assert_eq!(error.kind, ErrorKind::Http);
        assert!(error.message.contains("101 Switching Protocols is not a final answer"), "{}", error.message);
    }

    #[tokio::test]
    async fn probes_share_the_body_budget_and_all_finish_when_it_is_smaller_than_their_bodies() {
        // 12 bodies of 200 KiB at once against a budget of 300 KiB: at most one reservation fits
        // beside another's free bytes, and no probe may wait while holding part of the budget.
        let mut page = b"version=4.2 ".to_vec();
        page.resize(200 * 1024, b'x');
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", page.len());
        let response: &'static [u8] = [head.into_bytes(), page].concat().leak();
        let url = serve(response).await;
        let prober = Arc::new(prober(256 * 1024).with_body_budget(300 * 1024));
        let full = prober.body_budget().available();
        let site = Arc::new(site(&url, Some(r"version=(\d+)\.(\d+)")));
        let probes: Vec<_> = (0..12)
            .map(|_| {
                let (prober, site) = (Arc::clone(&prober), Arc::clone(&site));
                tokio::spawn(async move { prober.probe(&site).await })
            })
            .collect();
        for (i, probe) in probes.into_iter().enumerate() {
            let report = probe.await.unwrap();
            assert_eq!(report.error, None, "probe {i}");
            assert_eq!(report.regexp_match.as_deref(), Some("42"), "probe {i}");
            assert_eq!(report.body_bytes, Some(200 * 1024), "probe {i}");
        }
        assert_eq!(full, 300 * 1024);
        assert_eq!(prober.body_budget().available(), full, "every reservation was given back");
    }

    /// A response of 300 KiB: with a Content-Length, or chunked (its length unknown).
    fn large_page(chunked: bool) -> &'static [u8] {
        let chunk = [b'x'; 4096];
        let mut page = if chunked {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 307200\r\nConnection: close\r\n\r\n".to_vec()
        };
        for _ in 0..75 {
            if chunked {
                page.extend_from_slice(b"1000\r\n");
            }
            page.extend_from_slice(&chunk);
            if chunked {
                page.extend_from_slice(b"\r\n");
            }
        }
        if chunked {
            page.extend_from_slice(b"0\r\n\r\n");
        }
        page.leak()
    }

    #[tokio::test]
    async fn a_body_is_kept_only_for_a_pattern_and_waits_for_the_budget_within_the_deadline() {
        let mut settings = prober(1 << 20).settings;
        settings.timeout = Duration::from_millis(500);
        let prober = Prober::new(RootCertStore::empty(), settings);
        let taken = prober.body_budget().reserve(usize::MAX).await;
        // (case, response, body bytes read at most before waiting)
        for (case, chunked, kept_at_most) in [("announced", false, 0), ("of unknown length", true, FREE_BYTES as u64)] {
            let url = serve(large_page(chunked)).await;

            let counted = prober.probe(&site(&url, None)).await;
            let searched = prober.probe(&site(&url, Some("y"))).await;

            assert_eq!((counted.error, counted.body_bytes), (None, Some(300 * 1024)), "{case}: counted");
            let error = searched.error.expect("an error");
            assert_eq!(error.kind, ErrorKind::Timeout, "{case}: {}", error.message);
            assert!(error.message.ends_with("the body waited for the memory budget"), "{case}: {}", error.message);
            let kept = searched.body_bytes.unwrap_or_default();
            assert!(kept <= kept_at_most, "{case}: kept {kept} bytes before waiting, over {kept_at_most}");
        }
        drop(taken);
    }

    #[tokio::test]
    async fn garbage_instead_of_http_is_an_http_error() {
        let url = serve(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let report = prober(1024).probe(&site(&url, None)).await;
        assert_eq!(report.error.map(|e| e.kind), Some(ErrorKind::Http));
    }

    #[test]
    fn a_redirect_points_to_its_location_resolved_against_the_url_that_answered() {
        let url = Url::parse("http://a.test/dir/page").unwrap();
        // (case, status, Location, where it points; Err for an `http` error)
        type Case = (&'static str, u16, Option<&'static str>, Result<Option<&'static str>, ()>);
        let cases: [Case; 7] = [
            ("a relative path", 302, Some("next"), Ok(Some("http://a.test/dir/next"))),
            ("an absolute path", 301, Some("/next"), Ok(Some("http://a.test/next"))),
            ("another origin", 308, Some("https://b.test/"), Ok(Some("https://b.test/"))),
            ("a 303 after any method", 303, Some("/seen"), Ok(Some("http://a.test/seen"))),
            ("not a redirect", 200, Some("/next"), Ok(None)),
            ("a redirect without Location", 307, None, Ok(None)),
            ("a scheme other than http(s)", 302, Some("ftp://a.test/file"), Err(())),
        ];
        for (case, status, location, expected) in cases {
            let mut headers = HeaderMap::new();
            if let Some(location) = location {
                headers.insert(header::LOCATION, location.parse().unwrap());
            }

            let target = redirect_target(&url, StatusCode::from_u16(status).unwrap(), &headers);

            match (target, expected) {
                (Ok(target), Ok(expected)) => assert_eq!(target.as_ref().map(Url::as_str), expected, "{case}"),
                (Err(error), Err(())) => assert_eq!(error.kind, ErrorKind::Http, "{case}: {}", error.message),
                (target, expected) => panic!("{case}: {target:?}, expected {expected:?}"),
            }
        }
    }
}
