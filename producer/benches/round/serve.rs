//! The sites of the benchmark, in a child process of their own so that their CPU time and memory
//! are not counted: listeners that answer every request with a small page after a fixed delay, over
//! plain HTTP and over TLS (a certificate from the benchmark's test CA). The TLS side keeps a session
//! cache and issues tickets, so a client that can resume does, and counts the handshakes that
//! resumed: a line `stats` on stdin answers `full N resumed M` for the handshakes since the last
//! question. The servers stop when stdin closes.

use std::{
    io::BufRead,
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ServerSessionMemoryCache, StoresServerSessions},
    HandshakeKind, ServerConfig,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
};
use tokio_rustls::TlsAcceptor;

/// Listeners per scheme: the probes' connections are spread over them.
const PORTS: usize = 8;

/// The page every site answers with.
pub const PAGE: &str = "<html><body>ok version=1.0</body></html>";

#[derive(Default)]
struct Handshakes {
    full: AtomicU64,
    resumed: AtomicU64,
}

/// Serves until stdin closes; prints `HTTP_PORTS;HTTPS_PORTS` on stdout first.
pub fn serve(delay: Duration, cert: &Path, key: &Path) {
    let tls = Arc::new(server_config(cert, key));
    let handshakes = Arc::new(Handshakes::default());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let mut http_ports = Vec::new();
        let mut https_ports = Vec::new();
        for _ in 0..PORTS {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            http_ports.push(listener.local_addr().expect("addr").port().to_string());
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(answer(socket, delay));
                }
            });
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            https_ports.push(listener.local_addr().expect("addr").port().to_string());
            let (acceptor, handshakes) = (TlsAcceptor::from(Arc::clone(&tls)), Arc::clone(&handshakes));
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (acceptor, handshakes) = (acceptor.clone(), Arc::clone(&handshakes));
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(socket).await else { return };
                        let counter = match tls.get_ref().1.handshake_kind() {
                            Some(HandshakeKind::Resumed) => &handshakes.resumed,
                            _ => &handshakes.full,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        answer(tls, delay).await;
                    });
                }
            });
        }
        println!("{};{}", http_ports.join(" "), https_ports.join(" "));
        let _ = tokio::task::spawn_blocking(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim() == "stats" {
                    let full = handshakes.full.swap(0, Ordering::Relaxed);
                    let resumed = handshakes.resumed.swap(0, Ordering::Relaxed);
                    println!("full {full} resumed {resumed}");
                }
            }
        })
        .await;
    });
}

/// Reads a request head, waits `delay`, answers with [`PAGE`] and closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut socket: S, delay: Duration) {
    let mut buf = [0u8; 2048];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    tokio::time::sleep(delay).await;
    let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PAGE}", PAGE.len());
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// TLS 1.2 and 1.3, HTTP/1.1 only, with a session cache large enough for a whole round and
/// stateless tickets: whatever a client can resume, it resumes here.
fn server_config(cert: &Path, key: &Path) -> ServerConfig {
    let chain = CertificateDer::pem_file_iter(cert).expect("certificate").collect::<Result<Vec<_>, _>>().expect("PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let cache: Arc<dyn StoresServerSessions> = ServerSessionMemoryCache::new(100_000);
    config.session_storage = cache;
    config.ticketer = rustls::crypto::ring::Ticketer::new().expect("ticketer");
    config
}
