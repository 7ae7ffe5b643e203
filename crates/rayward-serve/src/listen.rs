//! The accept loop of every rayward server.
//!
//! Per connection: the TLS handshake and the request headers each get `header_timeout`
//! (a client that connects and says nothing holds a task for seconds, not forever);
//! HTTP/1.1 with bounded headers and strict framing checked before hyper parses a head
//! ([`crate::framing`]); WebSocket upgrades pass (the gateway splices them).
//! When `shutdown` resolves the listener is closed at once (the kubelet's next probe
//! fails, the endpoint leaves the Service), each connection is asked to finish the
//! request it is serving and close, and the loop returns when all have or `drain` has
//! passed, whichever is first.

use crate::framing::{Framed, RefusalHook};
use crate::front::{Front, Handoff, Prefixed};
use crate::tls::CertStore;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The head limits of [`crate::framing`] when a server sets none (hyper's own default
/// buffer is ~400 KB; no rayward client sends heads near 64 KiB).
const DEFAULT_MAX_HEAD: usize = 64 * 1024;
const DEFAULT_MAX_HEADERS: usize = 100;

/// Limits and names of one server's connections.
#[derive(Clone, Debug)]
pub struct ConnOptions {
    /// Names the server in what it logs (`rayward webhook`).
    pub name: &'static str,
    /// Time to complete the TLS handshake, and then to send the request headers.
    pub header_timeout: Duration,
    /// Largest request head (hyper's read buffer); `None` keeps hyper's default (~400 KB).
    pub max_header_bytes: Option<usize>,
    /// Most request headers; `None` keeps hyper's default (100).
    pub max_headers: Option<usize>,
    /// How long requests in flight may take to finish after shutdown begins.
    pub drain: Duration,
    /// Told about every request head refused for its framing ([`crate::framing`]).
    pub on_refused: Option<RefusalHook>,
    /// Serves plain connections first, handing hyper what it does not ([`crate::front`]).
    pub front: Option<Arc<dyn Front>>,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            name: "rayward",
            header_timeout: Duration::from_secs(10),
            max_header_bytes: None,
            max_headers: None,
            drain: Duration::from_secs(10),
            on_refused: None,
            front: None,
        }
    }
}

/// Serves connections from `listener` until `shutdown` resolves, over TLS when `tls` is
/// given. `make` builds the service of one connection from the client's address.
pub async fn serve<M, S, B>(
    listener: TcpListener,
    tls: Option<Arc<CertStore>>,
    opts: ConnOptions,
    make: M,
    shutdown: impl Future<Output = ()>,
) where
    M: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let acceptor = match tls.map(|s| s.server_config()).transpose() {
        Ok(a) => a.map(TlsAcceptor::from),
        Err(e) => {
            eprintln!("{}: cannot serve TLS: {e}", opts.name);
            return;
        }
    };
    let (stop, stopping) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    eprintln!("{}: accept: {e}", opts.name);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let _ = tcp.set_nodelay(true);
        let svc = make(peer);
        let opts = opts.clone();
        let mut stopping = stopping.clone();
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let io: Box<dyn Stream> = match (acceptor, &opts.front) {
                (None, Some(front)) => {
                    match front.clone().serve(tcp, peer, stopping.clone()).await {
                        Handoff::Done => return,
                        Handoff::Rest(tcp, first) => Box::new(Prefixed::new(first, tcp)),
                    }
                }
                (None, None) => Box::new(tcp),
                (Some(a), _) => {
                    match tokio::time::timeout(opts.header_timeout, a.accept(tcp)).await {
                        Ok(Ok(tls)) => Box::new(tls),
                        _ => return,
                    }
                }
            };
            // Framing is checked on the raw bytes, before hyper normalises the head.
            let io = Framed::new(
                io,
                opts.max_header_bytes.unwrap_or(DEFAULT_MAX_HEAD),
                opts.max_headers.unwrap_or(DEFAULT_MAX_HEADERS),
                opts.on_refused.clone().map(|h| (h, peer)),
            );
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(opts.header_timeout);
            if let Some(n) = opts.max_header_bytes {
                builder.max_buf_size(n);
            }
            if let Some(n) = opts.max_headers {
                builder.max_headers(n);
            }
            let conn = builder
                .serve_connection(TokioIo::new(io), svc)
                .with_upgrades();
            tokio::pin!(conn);
            // Closed gracefully when shutdown begins; a dropped sender means the server
            // is gone: stop as well.
            let stop = async move {
                while !*stopping.borrow_and_update() {
                    if stopping.changed().await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(opts.drain, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "{}: {} connection(s) still open after {:?}: closed",
            opts.name,
            conns.len(),
            opts.drain
        );
    }
}

/// A client connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
