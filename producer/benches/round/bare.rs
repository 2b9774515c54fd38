//! The floor of our own stack: a GET per URL on a fresh connection (TLS with a full handshake for
//! `https`), the body read to the end, nothing measured, no limits, no report. Run as a child
//! process, like every contender, so that its CPU time and peak RSS are read the same way.

use std::{path::Path, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::{
    client::Resumption,
    pki_types::{pem::PemObject, CertificateDer, ServerName},
    ClientConfig, RootCertStore,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::Semaphore,
    task::JoinSet,
};
use tokio_rustls::TlsConnector;

/// Probes every URL of `urls` (one a line), `concurrency` at a time; prints `ok N` (the 200s).
pub fn run(urls: &Path, concurrency: usize, ca_file: &Path) {
    let urls: Vec<hyper::Uri> =
        std::fs::read_to_string(urls).expect("urls").lines().map(|u| u.parse().expect("uri")).collect();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("CA file") {
        roots.add(cert.expect("PEM")).expect("CA");
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    let connector = TlsConnector::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let ok = runtime.block_on(async move {
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut tasks = JoinSet::new();
        for uri in urls {
            let permit = Arc::clone(&permits).acquire_owned().await.expect("semaphore");
            let connector = connector.clone();
            tasks.spawn(async move {
                let ok = get(&connector, uri).await;
                drop(permit);
                ok
            });
        }
        let mut ok = 0;
        while let Some(done) = tasks.join_next().await {
            ok += usize::from(matches!(done, Ok(Some(true))));
        }
        ok
    });
    println!("ok {ok}");
}

async fn get(connector: &TlsConnector, uri: hyper::Uri) -> Option<bool> {
    let authority = uri.authority()?.clone();
    let tcp = TcpStream::connect(authority.as_str()).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let request = hyper::Request::get(uri.path())
        .header(hyper::header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .ok()?;
    if uri.scheme_str() == Some("https") {
        let name = ServerName::try_from(authority.host().to_owned()).ok()?;
        let tls = connector.connect(name, tcp).await.ok()?;
        exchange(tls, request).await
    } else {
        exchange(tcp, request).await
    }
}

async fn exchange<IO>(io: IO, request: hyper::Request<Empty<Bytes>>) -> Option<bool>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.ok()?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await.ok()?;
    let ok = response.status() == 200;
    response.into_body().collect().await.ok()?;
    Some(ok)
}
