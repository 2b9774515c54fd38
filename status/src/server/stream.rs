//! A client's connection as hyper sees it, telling its slot when a read leaves a request head
//! incomplete, and giving up on a client that does not take its answer: a write that makes no
//! progress for [`WRITE_TIMEOUT`] fails, which closes the connection.
//!
//! hyper parses a head only after it is read, so the slot cannot wait for hyper to say the head
//! is whole: a read that brings the head's end (its blank line) leaves the connection as it was,
//! and only one that leaves the head incomplete makes it waiting, that is the first to give way at
//! the cap. (Marking every read waiting, until 2026-12, closed a probe whose whole head had been
//! read but not yet parsed, when a thousand reconnecting slow clients brought 7,700 newcomers a
//! second and it was the oldest waiting connection.)

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::Sleep,
};

use websentry_shared::connections::Slot;

/// A client that reads nothing of its answer for this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection and its slot.
#[derive(Debug)]
pub struct Tracked {
    stream: TcpStream,
    slot: Arc<Slot>,
    /// Where the bytes read so far are in a head's end.
    head_end: HeadEnd,
    /// Set while a write waits for the client to read.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Tracked {
    pub fn new(stream: TcpStream, slot: Arc<Slot>) -> Self {
        Tracked { stream, slot, head_end: HeadEnd::default(), stalled: None }
    }

    /// `write`'s outcome, failing once writes have waited for [`WRITE_TIMEOUT`].
    fn bounded<T>(&mut self, cx: &mut Context<'_>, write: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if write.is_ready() {
            self.stalled = None;
            return write;
        }
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client does not read"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if matches!(read, Poll::Ready(Ok(()))) && !new.is_empty() && !this.head_end.ends_in(new) {
            this.slot.head_waiting();
        }
        read
    }
}

/// Finds the end of a request head (`\r\n\r\n`) in bytes read a part at a time, however they
/// are cut. (A head ending in bare `\n\n`, which no browser, kubelet or Prometheus sends, is
/// answered too but counts as incomplete until then.)
#[derive(Debug, Default)]
struct HeadEnd {
    /// How many bytes of the end the bytes so far end with, 0 to 3.
    matched: usize,
}

impl HeadEnd {
    const END: &[u8; 4] = b"\r\n\r\n";

    /// Whether `bytes`, read after those before, hold a head's end; false for no bytes.
    fn ends_in(&mut self, bytes: &[u8]) -> bool {
        let mut ended = false;
        for &byte in bytes {
            self.matched = match byte {
                _ if byte == Self::END[self.matched] => self.matched + 1,
                b'\r' => 1,
                _ => 0,
            };
            if self.matched == Self::END.len() {
                (ended, self.matched) = (true, 0);
            }
        }
        ended
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let write = Pin::new(&mut this.stream).poll_write(cx, data);
        this.bounded(cx, write)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let write = Pin::new(&mut this.stream).poll_write_vectored(cx, data);
        this.bounded(cx, write)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flush = Pin::new(&mut this.stream).poll_flush(cx);
        this.bounded(cx, flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
        time::Instant,
    };
    use websentry_shared::{
        connections::{Connections, GRACE},
        shutdown::Shutdown,
    };

    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn the_end_of_a_head_is_found_however_its_bytes_are_cut() {
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..=head.len() {
            let mut end = HeadEnd::default();
            let (first, second) = head.split_at(cut);
            let ended = (end.ends_in(first), end.ends_in(second));
            assert_eq!(ended, (cut == head.len(), cut < head.len()), "cut at {cut}");
        }
        let mut end = HeadEnd::default();
        assert!(!end.ends_in(b"GET / HTTP/1.1\r\nX-Slow: \r\n\r"), "one byte short");
        assert!(!end.ends_in(b"x\r\n"), "the end begun again after a stray byte");
        assert!(end.ends_in(b"\r\n"), "and found");
        assert!(!end.ends_in(b"\r\r\n\n\n\r\n"), "no end in other runs of CR and LF");
        assert!(end.ends_in(b"\r\n\r\r\n\r\n"), "CR CR LF CR LF ends a line and the head");
        assert!(!end.ends_in(b""), "nothing read");
        assert!(end.ends_in(b"GET / HTTP/1.1\r\n\r\nGET /"), "a pipelined head's end, with the next begun");
    }

    /// At the cap of one, a connection whose whole head was read (not yet answered; here never)
    /// gives way to a newcomer only once it has been idle for the grace, as one that sent nothing
    /// would; were it waiting, it would give way at once (see `server::tests` for a slow client).
    /// So does one that sends head ends and nothing else (hyper skips empty lines before a
    /// request): it cannot keep its slot by them.
    #[tokio::test]
    async fn a_whole_head_read_does_not_make_a_connection_give_way_at_once() {
        for head in [&b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..], b"\r\n\r\n\r\n\r\n"] {
            gives_way_after_the_grace(head).await;
        }
    }

    async fn gives_way_after_the_grace(head: &'static [u8]) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let address: SocketAddr = listener.local_addr().expect("an address");
        let mut open = Connections::new(1, Arc::new(Metrics::default()));
        let (_trigger, mut shutdown) = Shutdown::manual();

        let mut probe = TcpStream::connect(address).await.expect("connecting");
        // Before the slot is given: the grace counts from then on.
        let admitted = Instant::now();
        let (stream, slot) = open.next(&listener, &mut shutdown).await.expect("a slot");
        probe.write_all(head).await.expect("sending");
        let (read, head_read) = tokio::sync::oneshot::channel();
        let id = slot.id();
        let task = tokio::spawn(async move {
            let mut tracked = Tracked::new(stream, Arc::new(slot));
            let mut buf = [0u8; 256];
            let mut got = 0;
            while got < head.len() {
                match tracked.read(&mut buf[got..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got += n,
                }
            }
            let _ = read.send(());
            std::future::pending::<()>().await;
        });
        open.started(id, task.abort_handle());
        head_read.await.expect("the head was read");

        let _newcomer = TcpStream::connect(address).await.expect("connecting");
        let (_stream, _slot) = open.next(&listener, &mut shutdown).await.expect("a slot");
        let after = admitted.elapsed();
        assert!(after >= GRACE, "{head:?}: the connection gave way after {after:?}, within the grace");
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), probe.read(&mut byte)).await;
        assert!(matches!(closed, Ok(Ok(0) | Err(_))), "{head:?}: then it gave way: {closed:?}");
        assert!(task.await.expect_err("aborted").is_cancelled());
    }
}
