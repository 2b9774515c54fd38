//! A TCP relay in front of a real service (the stack's PostgreSQL), which a test can stop and
//! make hang without touching the service that the other tests share:
//!
//! - [`Relay::open`]: bytes flow both ways;
//! - [`Relay::stop`]: as when the service is stopped — its connections are closed and new ones
//!   refused (nothing listens on the port);
//! - [`Relay::hang`]: as a service that hangs — connections are accepted, open ones kept, and no
//!   byte is passed on either way (until the mode changes: then they are closed).
//!
//! [`Relay::delayed`] makes a relay that also holds every byte back a fixed time each way, as a
//! service on another host would (a benchmark's database at a network's distance).
//!
//! The port stays the same throughout, so the client under test needs no new settings. Each
//! change returns once the port is in its new state (listening or not): a client that connects
//! right after `hang` finds a listener, not a refusal left over from `stop`.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{copy_bidirectional, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{mpsc, watch},
    time::Instant,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Stopped,
    Hanging,
}

/// A relay on a free port of the loopback to `target`; stopped when dropped.
#[derive(Debug)]
pub struct Relay {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    /// The mode the port is in (the listener taken or closed for it).
    applied: watch::Receiver<Mode>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relay {
    /// Relays a free port of 127.0.0.1 to `target`, open.
    pub fn start(target: SocketAddr) -> Relay {
        Self::delayed(target, Duration::ZERO)
    }

    /// Relays a free port of 127.0.0.1 to `target`, open, each byte passed on `one_way` after it
    /// came (a round trip takes twice that longer). Bytes are not held back by each other: only
    /// the latency of a link is added, not a limit on its bandwidth.
    pub fn delayed(target: SocketAddr, one_way: Duration) -> Relay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the relay's runtime");
        let listener = runtime.block_on(bind("127.0.0.1:0".parse().expect("an address"))).expect("a free port");
        let address = listener.local_addr().expect("the relay's address");
        let (mode, watching) = watch::channel(Mode::Open);
        let (applying, applied) = watch::channel(Mode::Open);
        runtime.spawn(listen(Some(listener), address, target, one_way, watching, applying));
        Relay { address, mode, applied, runtime: Some(runtime) }
    }

    /// The address clients connect to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Bytes flow again; new connections are accepted.
    pub fn open(&self) {
        self.set(Mode::Open);
    }

    /// Open connections are closed, new ones refused.
    pub fn stop(&self) {
        self.set(Mode::Stopped);
    }

    /// Connections are accepted and held; nothing is passed on.
    pub fn hang(&self) {
        self.set(Mode::Hanging);
    }

    /// Asks for `mode` and waits until the port is in it.
    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
        let mut applied = self.applied.clone();
        let runtime = self.runtime.as_ref().expect("the relay's runtime, until dropped");
        runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), applied.wait_for(|now| *now == mode)).await
            })
            .unwrap_or_else(|_| panic!("the relay did not reach {mode:?} within 10 s"))
            .unwrap_or_else(|_| panic!("the relay stopped before reaching {mode:?}"));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A listener on `address` that may take the port again right after it was closed.
async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(128)
}

/// Accepts while not stopped; closes the port while stopped, and takes it again after.
async fn listen(
    mut listener: Option<TcpListener>,
    address: SocketAddr,
    target: SocketAddr,
    one_way: Duration,
    mut mode: watch::Receiver<Mode>,
    applied: watch::Sender<Mode>,
) {
    loop {
        let now = *mode.borrow_and_update();
        match (&listener, now) {
            (Some(_), Mode::Stopped) => listener = None,
            (None, Mode::Open | Mode::Hanging) => match bind(address).await {
                Ok(bound) => listener = Some(bound),
                Err(err) => panic!("the relay cannot take its port {address} again: {err}"),
            },
            _ => {}
        }
        applied.send_replace(now);
        let Some(accepting) = &listener else {
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            changed = mode.changed() => if changed.is_err() { return },
            accepted = accepting.accept() => if let Ok((client, _)) = accepted {
                tokio::spawn(relay(client, target, one_way, mode.clone()));
            },
        }
    }
}

/// One client's connection: relayed while open, held while hanging, closed once stopped or
/// after hanging. Both sides send at once (no Nagle delay), as PostgreSQL and its clients do:
/// otherwise each small write waited for the other side's delayed ACK, ~40 ms at a time (a
/// transaction of one report took ~200 ms through the relay).
async fn relay(mut client: TcpStream, target: SocketAddr, one_way: Duration, mut mode: watch::Receiver<Mode>) {
    if client.set_nodelay(true).is_err() {
        return;
    }
    let mut server: Option<TcpStream> = None;
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Stopped => return,
            // Held until the mode changes, then closed: a service that comes back from hanging
            // is a new one (a byte lost in the copy below would corrupt the protocol).
            Mode::Hanging => {
                let _ = mode.changed().await;
                return;
            }
            Mode::Open => {
                if server.is_none() {
                    match TcpStream::connect(target).await {
                        Ok(connected) if connected.set_nodelay(true).is_ok() => server = Some(connected),
                        _ => return,
                    }
                }
                let Some(upstream) = server.as_mut() else { return };
                if !one_way.is_zero() {
                    let (client_read, client_write) = client.split();
                    let (server_read, server_write) = upstream.split();
                    tokio::select! {
                        changed = mode.changed() => if changed.is_err() { return },
                        _ = delay(client_read, server_write, one_way) => return,
                        _ = delay(server_read, client_write, one_way) => return,
                    }
                }
                tokio::select! {
                    changed = mode.changed() => if changed.is_err() { return },
                    _ = copy_bidirectional(&mut client, upstream) => return,
                }
            }
        }
    }
}

/// Passes what `from` sends to `to`, each read `one_way` after it came; ends when either side
/// closes or fails.
async fn delay(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, one_way: Duration) {
    let (sending, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reading = async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if sending.send((Instant::now() + one_way, buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writing = async move {
        while let Some((at, bytes)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    // The reader ends first on a close; what it read is still passed on before the writer ends.
    tokio::join!(reading, writing);
}
