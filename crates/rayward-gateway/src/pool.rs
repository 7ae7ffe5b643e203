//! Keep-alive HTTP/1 connections to one upstream (a Ray dashboard or history serve).
//!
//! Why not hyper-util's pooled client: per request it hashed a pool key (scheme and
//! authority) with SipHash, checked a connection out of a map under a lock and back in
//! through a second wrapper, and built an absolute URI only to strip it again: 8.4k of the
//! gateway's 59k instructions per request (`bench/gateway/cost.sh`). A gateway talks to a
//! handful of fixed `http://` upstreams, so each [`Upstream`](crate::proxy::Upstream) owns
//! one `Pool`: a stack of idle `SendRequest` handles of hyper's own HTTP/1 client
//! connection, each connection driven by its own task (with upgrades, for WebSockets).
//!
//! - A connection goes back on the stack when its response body has been read to the end
//!   (or the response has none); a body dropped half-read drops its connection, which
//!   hyper then closes, so no leftover bytes are read as the next response. One taken from
//!   the stack that is not ready at once (still sending an upload) is dropped, not awaited.
//! - At most [`MAX_IDLE`] idle connections are kept; an idle one older than the idle
//!   timeout, or one the upstream has closed, is dropped when next met.
//! - A request that was never written (the upstream closed an idle connection just as it
//!   was taken) is retried on another connection; once written, it is never sent twice.

use crate::proxy::Body;
use hyper::body::Incoming;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Idle connections kept per upstream; more are closed when their response ends.
pub const MAX_IDLE: usize = 64;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("connect to {0}: {1}")]
    Connect(String, String),
    #[error("connect to {0}: no answer within {1:?}")]
    ConnectTimeout(String, Duration),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

struct Idle {
    tx: SendRequest<Body>,
    since: Instant,
}

/// The connections to one `host:port`.
pub struct Pool {
    authority: String,
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Pool {
    pub fn new(authority: &str, idle_timeout: Duration, connect_timeout: Duration) -> Pool {
        Pool {
            authority: authority.to_string(),
            idle: Mutex::new(Vec::new()),
            idle_timeout,
            connect_timeout,
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) on an idle connection or a new one. The
    /// response's body returns the connection to the pool when it ends.
    pub async fn send(
        self: &Arc<Self>,
        mut req: hyper::Request<Body>,
    ) -> Result<hyper::Response<PooledBody>, PoolError> {
        // Idle connections first. A closed one is met only here; each is tried once. One
        // not ready at once is passed over, never waited for: its answer has ended but
        // hyper is still sending the request's body (an upload Ray answered without
        // reading), which may stall until the body's idle timeout. Dropping the handle
        // closes that connection once the upload ends.
        while let Some(mut tx) = self.checkout() {
            match std::future::poll_fn(|cx| Poll::Ready(tx.poll_ready(cx))).await {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) | Poll::Pending => continue,
            }
            match tx.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(resp, tx)),
                Err(mut e) => match e.take_message() {
                    // Never written: the connection was closing. Another may do.
                    Some(r) => req = r,
                    None => return Err(e.into_error().into()),
                },
            }
        }
        let mut tx = self.connect().await?;
        let resp = tx.send_request(req).await?;
        Ok(self.wrap(resp, tx))
    }

    /// The most recently used idle connection still open and not too old.
    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(i) = idle.pop() {
            if i.tx.is_closed() {
                continue;
            }
            if i.since.elapsed() > self.idle_timeout {
                // The stack is newest last: everything below is older still.
                idle.clear();
                return None;
            }
            return Some(i.tx);
        }
        None
    }

    fn checkin(&self, tx: SendRequest<Body>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                tx,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, PoolError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(self.authority.as_str()),
        )
        .await
        .map_err(|_| PoolError::ConnectTimeout(self.authority.clone(), self.connect_timeout))?
        .map_err(|e| PoolError::Connect(self.authority.clone(), e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (tx, conn) = Builder::new().handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the upstream closes, on an error, or when the gateway drops the
            // handle with no request in flight; an upgraded connection lives on in the
            // WebSocket relay.
            let _ = conn.with_upgrades().await;
        });
        Ok(tx)
    }

    fn wrap(
        self: &Arc<Self>,
        resp: hyper::Response<Incoming>,
        tx: SendRequest<Body>,
    ) -> hyper::Response<PooledBody> {
        // A switched protocol never comes back: the connection is the WebSocket's now.
        let keep = resp.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        resp.map(|inner| {
            let mut b = PooledBody {
                inner,
                back: keep.then(|| (self.clone(), tx)),
            };
            b.give_back_if_done();
            b
        })
    }
}

/// A response body that returns its connection to the pool once read to the end.
pub struct PooledBody {
    inner: Incoming,
    back: Option<(Arc<Pool>, SendRequest<Body>)>,
}

impl PooledBody {
    fn give_back_if_done(&mut self) {
        if http_body::Body::is_end_stream(&self.inner) {
            if let Some((pool, tx)) = self.back.take() {
                pool.checkin(tx);
            }
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) => {
                if let Some((pool, tx)) = self.back.take() {
                    pool.checkin(tx);
                }
            }
            Poll::Ready(Some(Ok(_))) => self.give_back_if_done(),
            // A broken body: the connection is not reused.
            Poll::Ready(Some(Err(_))) => self.back = None,
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
