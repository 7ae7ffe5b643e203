//! Idle timeouts for what streams through the gateway after the headers: a body (an
//! upload from the client, a log stream from Ray) whose sender goes quiet for longer than
//! the limit ends with an error, and a spliced WebSocket with no byte in either direction
//! for that long is closed on both sides. Without them, a client (or a hung Ray) holds a
//! connection, a task and two sockets open forever; the header timeouts do not cover what
//! comes after the headers.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

/// The error of a streamed body or an upgraded connection.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a body yields when its sender was idle too long.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}")]
pub struct IdleTimeout(pub Duration);

/// Whether `e` or one of its sources is an [`IdleTimeout`].
pub fn is_idle(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<IdleTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A body that fails with [`IdleTimeout`] when no frame arrives for `limit`.
///
/// The timer is made only when the body first has to wait: most bodies through the
/// gateway (a small JSON answer, an empty GET) are ready whenever polled, and a timer per
/// request was an allocation and two timer-wheel updates for nothing.
pub struct IdleBody<B> {
    inner: B,
    /// When the last frame came (or the body was made).
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    limit: Duration,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, limit: Duration) -> IdleBody<B> {
        IdleBody {
            inner,
            last: Instant::now(),
            sleep: None,
            limit,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(f) => {
                this.last = Instant::now();
                Poll::Ready(f.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = this.last + this.limit;
                let sleep = match &mut this.sleep {
                    Some(s) => {
                        if s.deadline() != deadline {
                            s.as_mut().reset(deadline);
                        }
                        s
                    }
                    None => this
                        .sleep
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimeout(this.limit))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Copies both ways between `a` and `b` until both directions have ended, or until no
/// byte has moved either way for `limit` (then both are dropped, closing both sockets).
/// A write that cannot make progress for `limit` counts as idle too.
pub async fn splice<A, B>(a: A, b: B, limit: Duration) -> std::io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut buf_a = vec![0u8; 16 * 1024];
    let mut buf_b = vec![0u8; 16 * 1024];
    let (mut a_open, mut b_open) = (true, true);
    let idle = || std::io::Error::new(std::io::ErrorKind::TimedOut, IdleTimeout(limit));
    let sleep = tokio::time::sleep(limit);
    tokio::pin!(sleep);
    while a_open || b_open {
        tokio::select! {
            r = ar.read(&mut buf_a), if a_open => {
                let n = r?;
                if n == 0 {
                    a_open = false;
                    let _ = bw.shutdown().await;
                } else {
                    tokio::time::timeout(limit, bw.write_all(&buf_a[..n])).await.map_err(|_| idle())??;
                }
            }
            r = br.read(&mut buf_b), if b_open => {
                let n = r?;
                if n == 0 {
                    b_open = false;
                    let _ = aw.shutdown().await;
                } else {
                    tokio::time::timeout(limit, aw.write_all(&buf_b[..n])).await.map_err(|_| idle())??;
                }
            }
            () = &mut sleep => return Err(idle()),
        }
        sleep.as_mut().reset(Instant::now() + limit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn body_times_out_only_when_idle() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let mut b = IdleBody::new(ChanBody(rx), Duration::from_secs(5));
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        assert!(b.frame().await.unwrap().is_ok());
        // 4 s of quiet, then data: still fine (the clock restarts with each frame).
        tokio::time::sleep(Duration::from_secs(4)).await;
        tx.send(Bytes::from_static(b"b")).await.unwrap();
        assert!(b.frame().await.unwrap().is_ok());
        // Then 5 s of quiet: the idle error.
        let e = b.frame().await.unwrap().unwrap_err();
        assert!(is_idle(&*e), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn splice_closes_both_sides_when_idle() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, mut upstream_peer) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(client, upstream, Duration::from_secs(3)));
        client_peer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        upstream_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        tokio::time::sleep(Duration::from_secs(2)).await;
        upstream_peer.write_all(b"pong").await.unwrap();
        client_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        let e = task.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        // Both peers see their connection end.
        assert_eq!(client_peer.read(&mut buf).await.unwrap(), 0);
        assert_eq!(upstream_peer.read(&mut buf).await.unwrap(), 0);
    }

    /// A channel as a body of data frames.
    struct ChanBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for ChanBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
        }
    }
}
