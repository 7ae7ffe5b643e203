//! The floor under the gateway's hot path, for `bench/gateway/cost.sh` (`BARE_BIN`): hyper's
//! HTTP/1 server and the gateway's own upstream pool ([`rayward_gateway::pool`]) with
//! nothing between them: no framing check, no authentication, no routes, no limits, no
//! audit, no metrics. What the gateway costs per request above this is its own work.
//! A benchmark fixture, not a proxy to deploy: it forwards anything to anyone.
//!
//! `cargo build --release -p rayward-gateway --example bare_proxy`, then
//! `bare_proxy 127.0.0.1:LISTEN HOST:PORT`.

use http::{HeaderValue, Request, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rayward_gateway::pool::Pool;
use std::sync::Arc;
use std::time::Duration;

/// As the rayward binary: the allocator is part of the per-request cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream] = args.as_slice() else {
        eprintln!("usage: bare_proxy LISTEN_ADDR UPSTREAM_HOST:PORT");
        std::process::exit(2);
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| panic!("bind {listen}: {e}"));
    let pool = Arc::new(Pool::new(
        upstream,
        Duration::from_secs(30),
        Duration::from_secs(5),
    ));
    let host = HeaderValue::from_str(upstream).expect("upstream as a Host header");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (pool, host) = (pool.clone(), host.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (pool, host) = (pool.clone(), host.clone());
                async move {
                    let (mut parts, body) = req.into_parts();
                    parts.uri = parts
                        .uri
                        .path_and_query()
                        .cloned()
                        .map_or_else(|| Uri::from_static("/"), Uri::from);
                    parts.headers.insert(http::header::HOST, host);
                    let req = Request::from_parts(parts, body.map_err(Into::into).boxed());
                    pool.send(req).await
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
