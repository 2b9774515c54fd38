//! The status page against the stack: `websentry-status` started on a free port for a test's
//! database, and a raw HTTP/1.1 client that sends exactly the bytes a test gives (hostile paths,
//! any method, any header) and returns the answer whole.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use crate::{metric, unreachable_url, Run, Running, Scratch, SiteServer, Stack, TestDatabase};

/// Three sites a real producer probed once, archived by a real consumer in a database of their
/// own: one up without a name, one up named "Shop" in the group "Public", one down (nothing
/// listens) in the group "Internal".
#[derive(Debug)]
pub struct ArchivedSites {
    pub db: TestDatabase,
    /// Up, no name, no group.
    pub up: String,
    /// Up, named "Shop", group "Public".
    pub named: String,
    /// Down (connection refused), no name, group "Internal".
    pub down: String,
    _servers: [SiteServer; 2],
}

impl Stack {
    /// [`ArchivedSites`]: a sites file, one producer round to a fresh topic, one consumer run.
    pub fn archive_three_sites(&self) -> ArchivedSites {
        let db = self.create_database();
        let topic = self.create_topic(1);
        let servers = [SiteServer::start(), SiteServer::start()];
        let (up, named, down) = (servers[0].url("/ok"), servers[1].url("/ok"), unreachable_url());
        let scratch = Scratch::new();
        let file = scratch.write(
            "sites.toml",
            format!(
                "[[site]]\nurl = \"{up}\"\n\n[[site]]\nurl = \"{named}\"\nname = \"Shop\"\ngroup = \"Public\"\n\n\
                 [[site]]\nurl = \"{down}\"\ngroup = \"Internal\"\n"
            )
            .as_bytes(),
        );
        self.producer(&topic).env("WEBSENTRY_SITES_FILE", &file).success();
        self.consumer(&topic, &db).success();
        ArchivedSites { db, up, named, down, _servers: servers }
    }
}

/// The id of a site in the status page's paths: the first 12 hex characters of the SHA-256 of its
/// URL (computed here independently of the binary).
pub fn status_site_id(url: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(url.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl Stack {
    /// `websentry-status` for `database` as the stack's user, on a free port of the loopback; a
    /// test adds what it is about (`.env("WEBSENTRY_STATUS_GROUPS", …)`), then
    /// [`StatusServer::start`]s it.
    pub fn status(&self, database: &TestDatabase) -> Run {
        Run::new("websentry-status")
            .envs(self.database_env(&database.name))
            .env("WEBSENTRY_STATUS_LISTEN", "127.0.0.1:0")
    }
}

/// A running status page.
#[derive(Debug)]
pub struct StatusServer {
    pub running: Running,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl StatusServer {
    /// Starts `run` and waits until it listens (its address is logged).
    pub fn start(run: Run) -> StatusServer {
        let running = run.spawn();
        let address = running.log_field("status page listening", "address", Duration::from_secs(30));
        StatusServer { running, address }
    }

    /// `GET target`.
    pub fn get(&self, target: &str) -> HttpAnswer {
        self.request("GET", target.as_bytes(), &[])
    }

    /// `method target` with `headers`: the target's bytes as given (not UTF-8, not encoded).
    pub fn request(&self, method: &str, target: &[u8], headers: &[(&str, &str)]) -> HttpAnswer {
        http(&self.address, method, target, headers)
    }

    /// The value of the sample `name` (with its labels) of `/metrics`, 0 when absent.
    pub fn metric(&self, name: &str) -> f64 {
        metric(&self.get("/metrics").text(), name).unwrap_or(0.0)
    }
}

/// A whole HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    /// De-chunked, still compressed if it was.
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The first header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request (`Connection: close`) and reads the answer to its end. Panics when nothing
/// answers within 10 s.
pub fn http(address: &str, method: &str, target: &[u8], headers: &[(&str, &str)]) -> HttpAnswer {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|err| panic!("connecting to {address}: {err}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("a read timeout");
    let mut request = format!("{method} ").into_bytes();
    request.extend_from_slice(target);
    request.extend_from_slice(format!(" HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n").as_bytes());
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).expect("sending the request");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse(&raw, method == "HEAD")
        .unwrap_or_else(|| panic!("no HTTP answer to {method}: {:?}", String::from_utf8_lossy(&raw)))
}

fn parse(raw: &[u8], head_only: bool) -> Option<HttpAnswer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(HttpAnswer { status, headers, body })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
