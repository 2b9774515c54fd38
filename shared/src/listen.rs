//! The listening socket of an HTTP endpoint (the consumer's, the status page's).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel holds before they are accepted (capped by `net.core.somaxconn`, 4,096 by
/// default). Slow clients that connect again as soon as they are closed fill a smaller queue
/// (tokio's default is 1,024), and a probe whose SYN is then dropped is retried only a second
/// later: the slow-client tests of both endpoints saw answers take just over a second.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with [`LISTEN_BACKLOG`]. Must be called within a tokio runtime.
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}
