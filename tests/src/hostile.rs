//! Local servers that misbehave in the ways real websites do, and TLS sites with certificates made
//! for the test. Each serves on 127.0.0.1 from threads, for the life of the test process.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use crate::Scratch;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    ServerConfig, ServerConnection, StreamOwned,
};

/// How a server misbehaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Accepts and never answers.
    Silent,
    /// Sends the head, then one body byte every `interval`, forever.
    Dribble { interval: Duration },
    /// A chunked body that never ends.
    Endless,
    /// Redirects to itself.
    RedirectLoop,
    /// Redirects once to `/landed`, which answers 200.
    RedirectOnce,
    /// A response head of about `bytes` bytes.
    HugeHeaders { bytes: usize },
    /// Bytes that are not HTTP.
    Garbage,
    /// Reads the request, then resets the connection.
    Reset,
    /// 200 with a body that is not UTF-8 around `version=7.1`.
    NotUtf8,
    /// 200 with the given body.
    Body(&'static str),
}

/// Starts a server with `behaviour`; returns its base URL.
pub fn serve(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let behaviour = behaviour.clone();
            std::thread::spawn(move || {
                let _ = answer(stream, &behaviour);
            });
        }
    });
    url
}

/// The address (`127.0.0.1:port`) of a listener that accepts TCP connections and never says a
/// word: a broker or server that hangs.
pub fn silent_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().flatten() {
            held.push(socket);
        }
    });
    address
}

fn read_head(stream: &mut impl Read) -> std::io::Result<String> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    Ok(first)
}

fn answer(mut stream: TcpStream, behaviour: &Behaviour) -> std::io::Result<()> {
    let request = read_head(&mut stream)?;
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    match behaviour {
        Behaviour::Silent => {
            std::thread::sleep(Duration::from_secs(600));
            Ok(())
        }
        Behaviour::Dribble { interval } => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")?;
            loop {
                stream.write_all(b"x")?;
                std::thread::sleep(*interval);
            }
        }
        Behaviour::Endless => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
            let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "y".repeat(16 * 1024));
            loop {
                stream.write_all(chunk.as_bytes())?;
            }
        }
        Behaviour::RedirectLoop => {
            stream.write_all(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")
        }
        Behaviour::RedirectOnce if path == "/landed" => {
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nlanded!")
        }
        Behaviour::RedirectOnce => {
            stream.write_all(b"HTTP/1.1 301 Moved Permanently\r\nLocation: /landed\r\nContent-Length: 0\r\n\r\n")
        }
        Behaviour::HugeHeaders { bytes } => {
            let filler = "a".repeat(*bytes);
            stream.write_all(format!("HTTP/1.1 200 OK\r\nX-Filler: {filler}\r\nContent-Length: 0\r\n\r\n").as_bytes())
        }
        Behaviour::Garbage => stream.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n\x00\x01\x02garbage\r\n\r\n"),
        Behaviour::Reset => {
            // A zero linger time makes close() send RST instead of FIN.
            socket_linger_zero(&stream);
            drop(stream);
            Ok(())
        }
        Behaviour::NotUtf8 => {
            let body: &[u8] = b"\xff\xfe\xfd version=7.1 \xc3\x28";
            stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes())?;
            stream.write_all(body)
        }
        Behaviour::Body(body) => {
            stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        }
    }
}

fn socket_linger_zero(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// An `https` site whose certificate is signed by a CA made for the test, or self-signed.
#[derive(Debug)]
pub struct TlsSite {
    pub url: String,
    /// PEM of the CA that signed the site (absent for a self-signed site), for
    /// `WEBSENTRY_PROBE_CAFILE`.
    pub ca_file: Option<PathBuf>,
    /// The folder of `ca_file`, removed with the site.
    _files: Option<Scratch>,
}

impl TlsSite {
    /// A site signed by a fresh test CA, answering 200 with `body`.
    pub fn signed_by_test_ca(body: &'static str) -> Self {
        let (files, ca_file, leaf, key) = test_ca_and_leaf();
        let url = serve_tls(leaf, &key, body);
        Self { url, ca_file: Some(ca_file), _files: Some(files) }
    }

    /// A site signed by a fresh test CA that speaks only HTTP/2 (ALPN `h2`), answering 200 with `body`.
    pub fn http2_signed_by_test_ca(body: &'static str) -> Self {
        let (files, ca_file, leaf, key) = test_ca_and_leaf();
        let mut config = server_config(leaf, &key);
        config.alpn_protocols = vec![b"h2".to_vec()];
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
        let url = format!("https://localhost:{}/", listener.local_addr().expect("address").port());
        listener.set_nonblocking(true).expect("non-blocking");
        std::thread::spawn(move || serve_http2(listener, Arc::new(config), body));
        Self { url, ca_file: Some(ca_file), _files: Some(files) }
    }

    /// A site whose leaf (valid until 2040-06-30) is signed by an intermediate CA valid until
    /// `intermediate_until` (year, month, day), itself signed by the test CA of `ca_file`; the site
    /// presents the leaf and the intermediate, as servers do.
    pub fn with_intermediate_until(intermediate_until: (i32, u8, u8), body: &'static str) -> Self {
        let root = CertifiedIssuer::self_signed(ca_params(), KeyPair::generate().expect("key")).expect("root CA");
        let mut params = ca_params();
        let (year, month, day) = intermediate_until;
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let intermediate = CertifiedIssuer::signed_by(params, KeyPair::generate().expect("key"), &root).expect("CA");
        let key = KeyPair::generate().expect("key");
        let leaf = leaf_params().signed_by(&key, &intermediate).expect("leaf");
        let files = Scratch::new();
        let ca_file = PathBuf::from(files.write("ca.pem", root.pem()));
        let chain = vec![leaf.der().clone(), intermediate.der().clone()];
        let url = serve_tls_chain(chain, &key, body);
        Self { url, ca_file: Some(ca_file), _files: Some(files) }
    }

    /// A self-signed site: no CA vouches for it.
    pub fn self_signed() -> Self {
        let key = KeyPair::generate().expect("key");
        let cert = leaf_params().self_signed(&key).expect("cert");
        Self { url: serve_tls(cert.der().clone(), &key, "self-signed"), ca_file: None, _files: None }
    }
}

/// A fresh CA (written to a PEM file in a scratch folder) and a leaf for localhost/127.0.0.1 signed
/// by it.
fn test_ca_and_leaf() -> (Scratch, PathBuf, CertificateDer<'static>, KeyPair) {
    let ca = CertifiedIssuer::self_signed(ca_params(), KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let leaf = leaf_params().signed_by(&key, &ca).expect("leaf");
    let files = Scratch::new();
    let ca_file = PathBuf::from(files.write("ca.pem", ca.pem()));
    (files, ca_file, leaf.der().clone(), key)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
}

fn leaf_params() -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    params.not_after = rcgen::date_time_ymd(2040, 6, 30);
    params
}

fn server_config(cert: CertificateDer<'static>, key: &KeyPair) -> ServerConfig {
    chain_config(vec![cert], key)
}

fn chain_config(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> ServerConfig {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config")
}

/// Serves HTTP/2 over TLS with hyper, on a runtime of its own thread.
fn serve_http2(listener: TcpListener, config: Arc<ServerConfig>, body: &'static str) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |_request| async move {
                    let body = http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes()));
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
}

fn serve_tls(cert: CertificateDer<'static>, key: &KeyPair, body: &'static str) -> String {
    serve_tls_chain(vec![cert], key, body)
}

fn serve_tls_chain(chain: Vec<CertificateDer<'static>>, key: &KeyPair, body: &'static str) -> String {
    let config = Arc::new(chain_config(chain, key));
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
    let url = format!("https://localhost:{}/", listener.local_addr().expect("address").port());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(connection) = ServerConnection::new(config) else { return };
                let mut tls = StreamOwned::new(connection, stream);
                if read_head(&mut tls).is_ok() {
                    let response =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = tls.write_all(response.as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    url
}

/// A request as a [`RecordingServer`] got it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The port of the server it came to.
    pub port: u16,
    /// The request target: path and query.
    pub path: String,
    /// The headers, names in lower case, in the order they came.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.1 server on 127.0.0.1 that keeps every request it gets and answers each with the
/// response `answer` writes for it (see [`redirect_to`] and [`ok_with`]).
#[derive(Debug, Clone)]
pub struct RecordingServer {
    pub port: u16,
    requests: Arc<std::sync::Mutex<Vec<RecordedRequest>>>,
}

impl RecordingServer {
    pub fn start(answer: impl Fn(&RecordedRequest) -> String + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (answer, kept) = (Arc::new(answer), Arc::clone(&requests));
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let (answer, kept) = (Arc::clone(&answer), Arc::clone(&kept));
                std::thread::spawn(move || {
                    let Ok(request) = read_request(&mut stream, port) else { return };
                    let response = answer(&request);
                    kept.lock().expect("requests").push(request);
                    let _ = stream.write_all(response.as_bytes());
                });
            }
        });
        Self { port, requests }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests got so far, in the order they came.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("requests").clone()
    }
}

/// A `302 Found` to `location`.
pub fn redirect_to(location: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

/// A `200 OK` with `body`.
pub fn ok_with(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn read_request(stream: &mut impl Read, port: u16) -> std::io::Result<RecordedRequest> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        line.clear();
    }
    Ok(RecordedRequest { port, path, headers })
}
