//! `/metrics`, `/healthz` and `/readyz` over plain HTTP (metrics carry no secret; a
//! NetworkPolicy keeps the port to the scraper).

use crate::Watch;
use std::sync::Arc;

/// Serves the watch's endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    watch: Arc<Watch>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use rayward_serve::endpoints::{encode, OPENMETRICS};
    let conn = rayward_serve::ConnOptions {
        name: "rayward watch",
        ..rayward_serve::ConnOptions::default()
    };
    let make = move |_peer| {
        let watch = watch.clone();
        service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let watch = watch.clone();
            async move {
                let (status, ctype, body) = match req.uri().path() {
                    "/metrics" => (StatusCode::OK, OPENMETRICS, encode(&watch.metrics.registry)),
                    "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
                    "/readyz" if watch.ready() => {
                        (StatusCode::OK, "text/plain", "ok\n".to_string())
                    }
                    "/readyz" => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "listing the cluster\n".to_string(),
                    ),
                    _ => (
                        StatusCode::NOT_FOUND,
                        "text/plain",
                        "not found\n".to_string(),
                    ),
                };
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .status(status)
                        .header("content-type", ctype)
                        .body(Full::new(Bytes::from(body)))
                        .expect("a valid response"),
                )
            }
        })
    };
    rayward_serve::serve(listener, None, conn, make, shutdown).await;
}
