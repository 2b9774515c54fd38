//! Every `https` probe is what a new visitor gets: a full TLS handshake, never a resumed session
//! (no session cache, no tickets, no early data). The server here would resume whatever a client
//! offers (a session cache and stateless tickets), and records how each handshake went; a plain
//! rustls client with its default settings proves that it does resume.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::{
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName},
    server::ServerSessionMemoryCache,
    ClientConfig, HandshakeKind, RootCertStore, ServerConfig,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use websentry_producer::{
    probe::{ProbeSettings, Prober},
    site::{Site, SiteUrl},
};

/// A TLS server that resumes sessions when it can, answering every request with a small page.
struct ResumingServer {
    port: u16,
    /// The CA that signed its certificate.
    roots: RootCertStore,
    /// How each handshake went, in order.
    handshakes: Arc<Mutex<Vec<HandshakeKind>>>,
}

impl ResumingServer {
    async fn start() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("test set-up");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("test set-up")).expect("test set-up");
        let key = KeyPair::generate().expect("test set-up");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("test set-up")
            .signed_by(&key, &ca)
            .expect("test set-up");
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).expect("test set-up");

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("test set-up")
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
            .expect("test set-up");
        config.session_storage = ServerSessionMemoryCache::new(1024);
        config.ticketer = rustls::crypto::ring::Ticketer::new().expect("test set-up");
        config.max_early_data_size = 16 * 1024;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("test set-up");
        let port = listener.local_addr().expect("test set-up").port();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let (acceptor, seen) = (TlsAcceptor::from(Arc::new(config)), Arc::clone(&handshakes));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else { continue };
                let kind = tls.get_ref().1.handshake_kind().expect("the handshake is over");
                seen.lock().expect("the handshake list").push(kind);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let page = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = tls.write_all(page.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        Self { port, roots, handshakes }
    }

    fn handshakes(&self) -> Vec<HandshakeKind> {
        self.handshakes.lock().expect("the handshake list").clone()
    }
}

#[tokio::test]
async fn every_probe_of_a_site_is_a_full_tls_handshake() {
    let server = ResumingServer::start().await;
    let settings = ProbeSettings {
        timeout: Duration::from_secs(10),
        body_limit: 1024,
        max_redirects: 0,
        probe_name: "test".into(),
    };
    let prober = Prober::new(server.roots.clone(), settings);
    let site = Site::simple(SiteUrl::parse(&format!("https://127.0.0.1:{}/", server.port)).expect("test set-up"), None);

    for probe in 0..4 {
        let report = prober.probe(&site).await;
        assert_eq!((report.code, &report.error), (200, &None), "probe {probe}");
        assert!(report.timings_ms.tls.is_some(), "probe {probe} has a TLS timing");
    }

    assert_eq!(server.handshakes(), vec![HandshakeKind::Full; 4], "a probe resumed a TLS session");
}

/// The control: the same server resumes the sessions of a client that keeps them (rustls's
/// default), so the test above would see a resumption if the prober offered one.
#[tokio::test]
async fn the_server_resumes_a_client_that_keeps_sessions() {
    let server = ResumingServer::start().await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("test set-up")
        .with_root_certificates(server.roots.clone())
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));

    for _ in 0..2 {
        let tcp = TcpStream::connect(("127.0.0.1", server.port)).await.expect("test set-up");
        let name = ServerName::try_from("127.0.0.1").expect("test set-up");
        let mut tls = connector.connect(name, tcp).await.expect("test set-up");
        tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.expect("test set-up");
        let mut page = Vec::new();
        let _ = tls.read_to_end(&mut page).await;
        assert!(page.ends_with(b"ok"), "{}", String::from_utf8_lossy(&page));
    }

    assert_eq!(server.handshakes(), vec![HandshakeKind::Full, HandshakeKind::Resumed]);
}
