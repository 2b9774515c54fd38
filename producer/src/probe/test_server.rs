//! A local server for the probe's unit tests: it answers every connection with the same bytes, so
//! that a test can give a probe, an exchange or a body any answer, well formed or not.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A server that answers every connection with `response`, then closes; its URL.
pub(super) async fn serve(response: &'static [u8]) -> String {
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
