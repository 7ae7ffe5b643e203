//! A server's own HTTP/1 path ahead of hyper on plain (not TLS) connections.
//!
//! The gateway relays the common request (a `GET` or `HEAD` without a body) itself, on the
//! raw bytes, because hyper's general machinery costs as much per request as all of the
//! gateway's own work (docs/benchmarks.md, issue 14). A [`Front`] serves a connection for
//! as long as its requests are of the kind it handles, and hands anything else to hyper
//! with the bytes it read and did not answer ([`Handoff::Rest`]): hyper then serves the
//! rest of the connection exactly as it serves a connection no front saw, framing checks
//! ([`crate::framing`]) included, starting with those bytes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How a [`Front`] left a connection.
pub enum Handoff {
    /// Answered and closed (or broken): nothing is left for hyper.
    Done,
    /// For hyper: the connection, and the bytes read from it that the front did not answer
    /// (the start of the next request), to be read first.
    Rest(TcpStream, Vec<u8>),
}

/// The future a [`Front`] serves a connection with.
pub type FrontFuture = Pin<Box<dyn Future<Output = Handoff> + Send>>;

/// Serves plain connections before hyper does; see the module documentation.
pub trait Front: Send + Sync + std::fmt::Debug + 'static {
    /// Serves `tcp` from `peer` until it closes or a request needs hyper. `stopping`
    /// turns true when the server shuts down: finish the request in hand, then close.
    fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        stopping: watch::Receiver<bool>,
    ) -> FrontFuture;
}

/// A connection whose first bytes were already read: they are read again first.
pub struct Prefixed<S> {
    first: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(first: Vec<u8>, inner: S) -> Prefixed<S> {
        Prefixed {
            first,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.first.len() {
            let n = (self.first.len() - self.pos).min(buf.remaining());
            let pos = self.pos;
            buf.put_slice(&self.first[pos..pos + n]);
            self.pos += n;
            if self.pos == self.first.len() {
                self.first = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn prefixed_bytes_come_first_then_the_stream() {
        let (a, mut b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut b, b" world")
            .await
            .unwrap();
        drop(b);
        let mut p = Prefixed::new(b"hello".to_vec(), a);
        let mut s = String::new();
        p.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
