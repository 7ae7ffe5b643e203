//! The gateway in front of `rayward history serve` (`[discovery] history_upstream`): the
//! identity the gateway authenticated and the authorization it decided travel to serve as
//! a signed assertion ([`rayward_auth::assertion`], key `history_key_file`), so a user logs
//! in once and serve never asks again.
//!
//! - **Forwarding**: every request the gateway forwards, to any upstream, loses the
//!   client's copy of the assertion header; a history forward the gateway has authorized
//!   gets a fresh one naming the user, their groups, the cluster (`namespace/kind/name`),
//!   the method and the exact path and query forwarded, valid [`TTL_SECS`].
//! - **Authorization**: RBAC is asked about the object the stored session belongs to, by
//!   its kind in the URL: `rayclusters`, `rayjobs` or `rayservices` in `ray.io`, verb
//!   `ray:read`. A RayJob's history is the RayJob's: users hold RBAC on the RayJob they
//!   created, and its RayCluster (with a generated name) is deleted with it.
//! - **Listing**: the landing page fetches serve's `/api/clusters` under the gateway's own
//!   principal ([`GATEWAY_PRINCIPAL`], scope `*`) and shows each session only when the
//!   user may read its object: serve's listing is never forwarded to users, so no answer
//!   tells them a session they may not read exists.

use crate::proxy::{self, Upstream};
use http::header::HeaderValue;
use http::{HeaderMap, Method, Request, StatusCode};
pub use rayward_auth::assertion::{Keys, GATEWAY_PRINCIPAL, HEADER, LISTING, TTL_SECS};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest listing read from serve (5,000 sessions are about 1.5 MB).
pub const MAX_LISTING: usize = 32 << 20;

/// The RBAC resource (in `ray.io`) of a history URL's kind.
pub fn resource(kind: &str) -> &'static str {
    match kind {
        "rayjob" => "rayjobs",
        "rayservice" => "rayservices",
        _ => "rayclusters",
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Removes the client's assertion header (every route), then, for an authorized history
/// forward (`scope` = `namespace/kind/name`), adds the gateway's own.
pub fn stamp(
    headers: &mut HeaderMap,
    keys: Option<&Keys>,
    who: Option<(&str, &[String], &str)>,
    method: &Method,
    path_and_query: &str,
) {
    headers.remove(HEADER);
    if let (Some(k), Some((user, groups, scope))) = (keys, who) {
        let a = k.issue(
            user,
            groups,
            scope,
            method.as_str(),
            path_and_query,
            unix_now(),
            TTL_SECS,
        );
        if let Ok(v) = HeaderValue::from_str(&a) {
            headers.insert(HEADER, v);
        }
    }
}

/// One stored session as serve lists it (the fields the landing page shows).
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub session: String,
    /// Unix ms.
    pub started: u64,
    pub updated: u64,
    /// Every collector of the session finished; false: still being written.
    pub finished: bool,
}

#[derive(Deserialize)]
struct Listing {
    sessions: Vec<Session>,
}

impl Session {
    /// The session's URL (through the gateway, as on serve).
    pub fn link(&self) -> String {
        format!(
            "/clusters/{}/{}/{}/{}/",
            self.namespace, self.kind, self.name, self.session
        )
    }
}

/// How long the landing page reuses serve's listing (a new session shows within this).
pub const LISTING_TTL: Duration = Duration::from_secs(5);

/// The gateway's side of history: the signing keys, and serve's listing kept
/// [`LISTING_TTL`] so that landing-page loads do not each read it again.
pub struct Link {
    pub keys: Keys,
    cached: Mutex<Option<(Instant, Arc<Vec<Session>>)>>,
}

impl Link {
    pub fn new(keys: Keys) -> Link {
        Link {
            keys,
            cached: Mutex::new(None),
        }
    }

    /// Serve's listing, at most [`LISTING_TTL`] old.
    pub async fn sessions(&self, upstream: &Upstream) -> Result<Arc<Vec<Session>>, String> {
        if let Some((t, s)) = &*self.cached.lock().unwrap_or_else(|e| e.into_inner()) {
            if t.elapsed() < LISTING_TTL {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(sessions(upstream, &self.keys).await?);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), s.clone()));
        Ok(s)
    }
}

/// Every stored session, asked of serve under the gateway's own principal.
pub async fn sessions(upstream: &Upstream, keys: &Keys) -> Result<Vec<Session>, String> {
    const PATH: &str = "/api/clusters";
    let mut req = Request::new(proxy::empty());
    *req.method_mut() = Method::GET;
    stamp(
        req.headers_mut(),
        Some(keys),
        Some((GATEWAY_PRINCIPAL, &[], LISTING)),
        &Method::GET,
        PATH,
    );
    let resp = upstream
        .forward(req, PATH, false)
        .await
        .map_err(|e| format!("history serve: {e}"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("history serve answered {}", resp.status()));
    }
    let body = crate::service::collect_at_most(resp.into_body(), MAX_LISTING)
        .await
        .ok_or("history serve: listing unreadable or over 32 MiB")?;
    serde_json::from_slice::<Listing>(&body)
        .map(|l| l.sessions)
        .map_err(|e| format!("history serve: listing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_copy_is_always_removed_and_only_history_gets_one() {
        let keys = Keys::parse(b"0123456789abcdef0123456789abcdef").unwrap();
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_static("v1.forged.x"));
        stamp(&mut h, Some(&keys), None, &Method::GET, "/api/jobs/");
        assert!(h.get(HEADER).is_none());
        h.insert(HEADER, HeaderValue::from_static("v1.forged.x"));
        let p = "/clusters/a/rayjob/j/s/api/jobs/?limit=1";
        stamp(
            &mut h,
            Some(&keys),
            Some(("htpasswd:alice", &["g".into()], "a/rayjob/j")),
            &Method::GET,
            p,
        );
        let v = h.get_all(HEADER).iter().collect::<Vec<_>>();
        assert_eq!(v.len(), 1);
        let c = keys
            .verify(v[0].as_bytes(), "GET", p, unix_now(), 30)
            .unwrap();
        assert_eq!(
            (c.sub.as_str(), c.scope.as_str()),
            ("htpasswd:alice", "a/rayjob/j")
        );
        assert_eq!(resource("rayjob"), "rayjobs");
        assert_eq!(resource("rayservice"), "rayservices");
        assert_eq!(resource("raycluster"), "rayclusters");
    }
}
