//! Slow clients and the probes that must be answered despite them: a flood of connections that
//! trickle their request heads (a "slowloris"), a kubelet-like probe with its 2 s timeout, and a
//! process's resident memory. The consumer's endpoint and the status page are tested with them.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::oneshot,
};

/// Connections that send a request head a byte a second and never finish it, each opened again
/// as soon as the server drops it, on a thread of their own; stopped when dropped.
#[derive(Debug)]
pub struct Flood {
    stop: Option<oneshot::Sender<()>>,
    opened: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    /// `connections` slow clients of `address`, each asking for `path`.
    pub fn start(address: SocketAddr, connections: usize, path: &'static str) -> Flood {
        let opened = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        let counter = Arc::clone(&opened);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let mut clients = tokio::task::JoinSet::new();
                for _ in 0..connections {
                    clients.spawn(trickle(address, path, Arc::clone(&counter)));
                }
                let _ = stopped.await;
                clients.abort_all();
            });
        });
        Flood { stop: Some(stop), opened, thread: Some(thread) }
    }

    /// Connections opened so far, the re-opened ones included.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Waits until `at_least` connections were opened, for `within` at most: a server that does
    /// not accept them fails later, on its probes, which is what the kubelet would see.
    pub fn wait_opened(&self, at_least: u64, within: Duration) {
        let started = Instant::now();
        while self.opened() < at_least && started.elapsed() < within {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One slow client, for ever: connect, send the request line, then a byte a second of a header
/// that never ends; when the server drops the connection, connect again.
async fn trickle(address: SocketAddr, path: &str, opened: Arc<AtomicU64>) {
    let mut buf = [0u8; 256];
    let line = format!("GET {path} HTTP/1.1\r\nX-Slow: ");
    loop {
        let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(line.as_bytes()).await.is_err() {
            continue;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => if stream.write_all(b"x").await.is_err() { break },
                read = stream.read(&mut buf) => if !matches!(read, Ok(1..)) { break },
            }
        }
    }
}

/// `GET path` as the kubelet sends it, with its 2 s timeout: the status (None when nothing came
/// in time) and how long the answer took.
pub fn probe(address: SocketAddr, path: &str) -> (Option<u16>, Duration) {
    use std::io::{Read, Write};
    let started = Instant::now();
    let status = (|| {
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
        let left = Duration::from_secs(2).checked_sub(started.elapsed())?;
        stream.set_read_timeout(Some(left)).ok()?;
        // The whole head in one write, as the kubelet sends it: `write!` on the bare stream would
        // send each piece of the format in a write of its own, and a head that comes in pieces is
        // a slow client's until it is whole (see `shared/src/connections.rs`).
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kube-probe/1.31\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.split_whitespace().nth(1)?.parse().ok()
    })();
    (status, started.elapsed())
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}
