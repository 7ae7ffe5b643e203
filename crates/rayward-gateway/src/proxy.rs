//! Talking to Ray: the request that leaves the gateway carries the normalised path, the
//! cluster's token as `Authorization: Bearer`, and none of the client's credentials
//! (`Authorization`, `X-Ray-Authorization`, the `ray-authentication-token` cookie) or
//! hop-by-hop headers. Bodies stream through with a size limit; WebSocket upgrades are
//! spliced after the upstream accepts them; Ray's 5xx tracebacks are replaced. Streamed
//! bodies and spliced WebSockets end when idle too long (`idle`).

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::time::Duration;

pub use crate::idle::BoxError;
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body; no allocation (`Empty` is zero-sized, and so is its box).
pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus
/// the proxy-specific ones. `HeaderName`s, not strings: removing by a string parses and
/// validates the name on every call, twice per request for each of these.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers a client must never get to Ray: credentials (the gateway supplies Ray's), and
/// forwarding headers a client could forge.
static CLIENT_ONLY: [HeaderName; 7] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-ray-authorization"),
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-real-ip"),
];

/// Where `n` is in [`HOP_BY_HOP`]. A `match` on the name, which the compiler turns into
/// a test of its length and one comparison: the headers of every request and answer go
/// through here, and comparing each with all 9 names cost ~900 instructions per request.
/// Checked against the list by a unit test.
fn hop_by_hop_index(n: &HeaderName) -> Option<usize> {
    Some(match n.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authorization" => 3,
        "proxy-authenticate" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// Whether `n` is in [`CLIENT_ONLY`] (as [`hop_by_hop_index`]).
fn is_client_only(n: &HeaderName) -> bool {
    matches!(
        n.as_str(),
        "authorization"
            | "x-ray-authorization"
            | "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-real-ip"
    )
}

/// The cookie Ray accepts as a credential.
pub const RAY_COOKIE: &str = "ray-authentication-token";

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the names first, noting which are there: most messages carry none or
    // only `Connection: keep-alive` (nginx, aiohttp), and removing all 9 hashes 9 names.
    let mut present = [false; HOP_BY_HOP.len()];
    let mut any = false;
    for n in h.keys() {
        if let Some(i) = hop_by_hop_index(n) {
            present[i] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    if present[0] {
        // HOP_BY_HOP[0] is `Connection`: the names it lists go too. `close` names no
        // header, and `keep-alive` is in HOP_BY_HOP already.
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.eq_ignore_ascii_case("close") && !t.eq_ignore_ascii_case("keep-alive"))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for n in named {
            h.remove(n);
        }
    }
    for (n, there) in HOP_BY_HOP.iter().zip(present) {
        if there {
            h.remove(n);
        }
    }
}

/// Drops `ray-authentication-token` and the gateway's own session cookie from every
/// `Cookie` header, keeping other cookies.
pub fn strip_ray_cookie(h: &mut HeaderMap) {
    if !h.contains_key(header::COOKIE) {
        return;
    }
    let kept: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(';')
                .map(str::trim)
                .filter(|c| {
                    let name = c.split('=').next().unwrap_or("").trim();
                    !name.eq_ignore_ascii_case(RAY_COOKIE)
                        && !name.eq_ignore_ascii_case(crate::authn::session::COOKIE)
                        && !c.is_empty()
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
        .collect();
    h.remove(header::COOKIE);
    for k in kept {
        if let Ok(v) = HeaderValue::from_str(&k) {
            h.append(header::COOKIE, v);
        }
    }
}

/// Rewrites the client's headers for Ray: strips credentials and hop-by-hop headers,
/// sets `Host` to the upstream and injects the cluster token. `websocket` keeps the
/// upgrade handshake headers.
pub fn upstream_headers(
    h: &mut HeaderMap,
    upstream_host: &HeaderValue,
    ray_auth: Option<&HeaderValue>,
    websocket: bool,
) {
    // One pass over the names first: a usual request (Host, Authorization, Accept, ...)
    // has nothing to strip, and 16 removals hash 16 names. `Authorization` is replaced
    // below when the cluster has a token (insert drops every value of the name).
    let replaced_auth = ray_auth.is_some();
    let strip = |n: &HeaderName| {
        !(replaced_auth && n == header::AUTHORIZATION)
            && (hop_by_hop_index(n).is_some() || is_client_only(n))
    };
    if h.keys().any(strip) {
        strip_hop_by_hop(h);
        for n in &CLIENT_ONLY {
            h.remove(n);
        }
    }
    strip_ray_cookie(h);
    h.insert(header::HOST, upstream_host.clone());
    if let Some(a) = ray_auth {
        h.insert(header::AUTHORIZATION, a.clone());
    }
    if websocket {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

/// The upstream Ray dashboard and how to reach it.
pub struct Upstream {
    pool: std::sync::Arc<crate::pool::Pool>,
    /// The relay's raw connections ([`crate::relay::upstream`]).
    pub(crate) raw: crate::relay::upstream::RawPool,
    scheme_authority: String,
    host: HeaderValue,
    /// `Bearer <cluster token>`; replaced when the token file (or Secret) changes. None:
    /// a discovered cluster without token authentication, or `rayward history serve`.
    ray_auth: std::sync::RwLock<Option<HeaderValue>>,
    timeout: Duration,
    /// Longest quiet time of a streamed body or a WebSocket (`idle`).
    idle: Duration,
    pass_errors: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("request body over the limit")]
    BodyTooLarge,
    #[error("request body stalled")]
    BodyIdle,
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
}

impl Upstream {
    /// `base` is a validated `http://host:port`; `token` the cluster's Ray token (None: the
    /// upstream takes none, and the client's credentials are stripped all the same).
    pub fn new(
        base: &str,
        token: Option<&str>,
        timeout: Duration,
        idle: Duration,
        pass_errors: bool,
    ) -> Result<Upstream, String> {
        let uri: Uri = base.parse().map_err(|e| format!("upstream: {e}"))?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return Err(format!("upstream: {base}: only http:// is supported"));
        }
        let authority = uri.authority().ok_or("upstream: no host")?.clone();
        // `http://host` means port 80, as a browser reads it.
        let connect_to = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{}:80", authority.host()),
        };
        let pool =
            crate::pool::Pool::new(&connect_to, Duration::from_secs(30), Duration::from_secs(5));
        let ray_auth = std::sync::RwLock::new(token.map(bearer).transpose()?);
        Ok(Upstream {
            raw: crate::relay::upstream::RawPool::new(&connect_to),
            pool: std::sync::Arc::new(pool),
            scheme_authority: format!("http://{authority}"),
            host: HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
            ray_auth,
            timeout,
            idle,
            pass_errors,
        })
    }

    /// Replaces the cluster token (rotation without restart).
    pub fn set_token(&self, token: &str) -> Result<(), String> {
        let v = bearer(token)?;
        *self.ray_auth.write().expect("token lock") = Some(v);
        Ok(())
    }

    /// Rewrites a client's headers for this upstream ([`upstream_headers`]) with the
    /// current cluster token.
    pub fn prepare_headers(&self, h: &mut HeaderMap, websocket: bool) {
        let ray_auth = self.ray_auth.read().expect("token lock");
        upstream_headers(h, &self.host, ray_auth.as_ref(), websocket);
    }

    /// How long Ray may take to answer a request's head.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Longest quiet time of a streamed body.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Whether Ray's 5xx bodies reach the client unchanged.
    pub fn pass_errors(&self) -> bool {
        self.pass_errors
    }

    /// The `http://host:port` requests go to.
    pub fn base(&self) -> &str {
        &self.scheme_authority
    }

    /// Sends a request whose path (and query) are already normalised. `websocket`: the
    /// route may upgrade and the client asked to.
    pub fn forward<'a>(
        &'a self,
        req: Request<Body>,
        path_and_query: &'a str,
        websocket: bool,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, UpstreamError>> + Send + 'a>,
    > {
        Box::pin(self.forward_inner(req, path_and_query, websocket))
    }

    async fn forward_inner(
        &self,
        mut req: Request<Body>,
        path_and_query: &str,
        websocket: bool,
    ) -> Result<Response<Body>, UpstreamError> {
        let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
        // Origin form (`/path?query`): what an HTTP/1 request to a server (not a proxy)
        // carries; the upstream's address is in `Host` and in the pool.
        let uri = Uri::from(
            http::uri::PathAndQuery::try_from(path_and_query)
                .map_err(|e| UpstreamError::Unreachable(e.to_string()))?,
        );
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_11;
        self.prepare_headers(req.headers_mut(), websocket);

        // The timeout runs from the end of the request body, not its start: a 100 MiB
        // upload may take longer than Ray takes to answer (a stalled one is cut by the
        // idle timeout instead). The body's sender side is dropped when hyper is done
        // with the body, which starts the clock.
        // A request without a body (most: every GET) is sent whole at once, so its clock
        // starts now, without the signal's channel and wrapper.
        let (req, sent_rx) = if http_body::Body::is_end_stream(req.body()) {
            (req, None)
        } else {
            let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<()>();
            let req = req.map(|b| {
                SentSignal {
                    inner: b,
                    _sent: sent_tx,
                }
                .boxed()
            });
            (req, Some(sent_rx))
        };
        let timeout = self.timeout;
        let clock = async move {
            if let Some(sent) = sent_rx {
                let _ = sent.await;
            }
            tokio::time::sleep(timeout).await;
        };
        let sent = tokio::select! {
            r = self.pool.send(req) => Some(r),
            () = clock => None,
        };
        let resp = match sent {
            None => return Err(UpstreamError::Timeout(self.timeout)),
            Some(Err(e)) => {
                if is_length_limit(&e) {
                    return Err(UpstreamError::BodyTooLarge);
                }
                if crate::idle::is_idle(&e) {
                    return Err(UpstreamError::BodyIdle);
                }
                return Err(UpstreamError::Unreachable(e.to_string()));
            }
            Some(Ok(r)) => r,
        };

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return Err(UpstreamError::Unreachable(
                    "upstream switched protocols unasked".into(),
                ));
            };
            let mut resp = resp;
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let idle = self.idle;
            tokio::spawn(async move {
                let (c, u) = match (client_upgrade.await, upstream_upgrade.await) {
                    (Ok(c), Ok(u)) => (c, u),
                    (c, u) => {
                        eprintln!(
                            "rayward gateway: WebSocket upgrade failed: client {:?}, upstream {:?}",
                            c.err(),
                            u.err()
                        );
                        return;
                    }
                };
                if let Err(e) = crate::idle::splice(TokioIo::new(c), TokioIo::new(u), idle).await {
                    eprintln!("rayward gateway: WebSocket relay ended: {e}");
                }
            });
            let (parts, _) = resp.into_parts();
            return Ok(Response::from_parts(parts, empty()));
        }

        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if parts.status.is_server_error() && !self.pass_errors {
            return Ok(upstream_error(parts.status));
        }
        let body = crate::idle::IdleBody::new(body, self.idle);
        Ok(Response::from_parts(parts, body.boxed()))
    }
}

/// A request body whose drop (hyper is done sending it, or gave up) drops `_sent`.
struct SentSignal {
    inner: Body,
    _sent: tokio::sync::oneshot::Sender<()>,
}

impl http_body::Body for SentSignal {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn bearer(token: &str) -> Result<HeaderValue, String> {
    let token = token.trim();
    if token.is_empty() {
        return Err("the ray token is empty".into());
    }
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "ray token has characters not allowed in a header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}

/// The short answer that replaces a Ray 5xx body (a Python traceback with file paths).
pub fn upstream_error(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(format!(
        "Ray answered {}; details are in the Ray dashboard's logs\n",
        status.as_u16()
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_credentials_and_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Basic YTpi"));
        h.insert(
            "x-ray-authorization",
            HeaderValue::from_static("Bearer stolen"),
        );
        h.append(
            "cookie",
            HeaderValue::from_static(
                "a=1; ray-authentication-token=stolen; rayward_session=s; b=2",
            ),
        );
        h.append(
            "cookie",
            HeaderValue::from_static("Ray-Authentication-Token=x"),
        );
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        let host = HeaderValue::from_static("ray:8265");
        let auth = HeaderValue::from_static("Bearer cluster");
        upstream_headers(&mut h, &host, Some(&auth), false);
        assert_eq!(h.get_all("authorization").iter().count(), 1);
        assert_eq!(h["authorization"], "Bearer cluster");
        assert_eq!(h["host"], "ray:8265");
        assert_eq!(h.get_all("cookie").iter().collect::<Vec<_>>(), ["a=1; b=2"]);
        for gone in [
            "x-ray-authorization",
            "connection",
            "x-secret",
            "te",
            "upgrade",
            "x-forwarded-for",
        ] {
            assert!(h.get(gone).is_none(), "{gone}");
        }
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn name_matches_are_those_of_the_lists() {
        // The relay matches the same names on raw bytes, in any case.
        use crate::relay::upstream::hop_by_hop as raw_hop;
        for (i, n) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(n), Some(i), "{n}");
            assert!(!is_client_only(n), "{n}");
            assert!(raw_hop(n.as_str().as_bytes()), "{n}");
            assert!(raw_hop(n.as_str().to_ascii_uppercase().as_bytes()), "{n}");
        }
        for n in &CLIENT_ONLY {
            assert!(is_client_only(n), "{n}");
            assert_eq!(hop_by_hop_index(n), None, "{n}");
        }
        for other in [
            "date",
            "server",
            "content-type",
            "x-connection",
            "upgrades",
            "host",
        ] {
            let n = HeaderName::from_static(other);
            assert_eq!(hop_by_hop_index(&n), None, "{other}");
            assert!(!is_client_only(&n), "{other}");
            assert!(!raw_hop(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn hop_by_hop_of_an_answer() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("Keep-Alive, close, X-Hop"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["content-type"], "application/json");
        // Nothing hop-by-hop: nothing changes.
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }

    #[test]
    fn websocket_keeps_the_handshake() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("sec-websocket-key", HeaderValue::from_static("k"));
        let v = HeaderValue::from_static("x");
        upstream_headers(&mut h, &v, Some(&v), true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["sec-websocket-key"], "k");
    }
}
