//! Which cluster a request is for, under `[discovery]`: decided from the normalised path
//! and the `Host` header before authentication, so that authorization (RBAC's
//! SubjectAccessReview names the cluster) sees the real target.
//!
//! - **Host**: `{name}.{namespace}.<base_domain>` (any port, any case) → that cluster; the
//!   path goes to Ray as it is.
//! - **Path prefix**: `/clusters/{namespace}/{name}/…` → that cluster, the prefix stripped
//!   (`/clusters/{namespace}/{name}` without the slash is redirected to it, so that the
//!   dashboard's relative URLs resolve under the prefix).
//! - **History**: `/clusters/{namespace}/{kind}/{name}/{session}/…` with kind `raycluster`,
//!   `rayjob` or `rayservice` (any case) → `rayward history serve`, path unchanged. A live
//!   cluster named like a kind is reachable by host only.
//! - `/` → the landing page; anything else names no cluster (404).
//!
//! The path is normalised first ([`crate::route::normalise_path`] refuses `..`, encoded or
//! not), so no path can climb out of its prefix into another cluster's.

use crate::discovery::is_dns_label;

/// The kinds of `rayward history serve`'s URLs.
pub const HISTORY_KINDS: &[&str] = &["raycluster", "rayjob", "rayservice"];

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    /// A live cluster; `path` is what Ray gets.
    Cluster {
        namespace: String,
        name: String,
        path: String,
        by_host: bool,
    },
    /// A terminated cluster's history; the path goes unchanged.
    History {
        namespace: String,
        kind: String,
        name: String,
    },
    /// The list of clusters.
    Landing,
    /// `/clusters/{namespace}/{name}` → this path with a trailing slash.
    Redirect(String),
    /// No cluster named: why.
    NotFound(&'static str),
}

/// `host`: the request's `Host` header; `path`: normalised.
pub fn pick(host: Option<&str>, path: &str, base_domain: Option<&str>) -> Pick {
    if let (Some(host), Some(base)) = (host, base_domain) {
        if let Some((name, namespace)) = cluster_host(host, base) {
            return Pick::Cluster {
                namespace,
                name,
                path: path.to_string(),
                by_host: true,
            };
        }
    }
    if path == "/" {
        return Pick::Landing;
    }
    let Some(rest) = path.strip_prefix("/clusters/") else {
        return Pick::NotFound("name a cluster: /clusters/{namespace}/{name}/… (or its host name)");
    };
    let mut parts = rest.splitn(3, '/');
    let (Some(ns), Some(second)) = (parts.next(), parts.next()) else {
        return Pick::NotFound("name a cluster: /clusters/{namespace}/{name}/…");
    };
    let tail = parts.next();
    if !is_dns_label(ns) {
        return Pick::NotFound("no such namespace name");
    }
    if HISTORY_KINDS.iter().any(|k| k.eq_ignore_ascii_case(second)) {
        // {kind}/{name}/{session}/…
        let mut t = tail.unwrap_or("").splitn(3, '/');
        let (Some(name), Some(session)) = (t.next(), t.next()) else {
            return Pick::NotFound("history: /clusters/{namespace}/{kind}/{name}/{session}/…");
        };
        if !is_dns_label(name) || session.is_empty() {
            return Pick::NotFound("history: /clusters/{namespace}/{kind}/{name}/{session}/…");
        }
        return Pick::History {
            namespace: ns.to_string(),
            kind: second.to_ascii_lowercase(),
            name: name.to_string(),
        };
    }
    if !is_dns_label(second) {
        return Pick::NotFound("no such cluster name");
    }
    match tail {
        None => Pick::Redirect(format!("/clusters/{ns}/{second}/")),
        Some(t) => Pick::Cluster {
            namespace: ns.to_string(),
            name: second.to_string(),
            path: format!("/{t}"),
            by_host: false,
        },
    }
}

/// `{name}.{namespace}.<base>[:port]` → (name, namespace).
fn cluster_host(host: &str, base: &str) -> Option<(String, String)> {
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.to_ascii_lowercase();
    let front = host
        .strip_suffix(&base.to_ascii_lowercase())?
        .strip_suffix('.')?;
    let (name, namespace) = front.split_once('.')?;
    (is_dns_label(name) && is_dns_label(namespace))
        .then(|| (name.to_string(), namespace.to_string()))
}

/// The link to a cluster's dashboard on the landing page.
pub fn link(namespace: &str, name: &str) -> String {
    format!("/clusters/{namespace}/{name}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ns: &str, name: &str, path: &str, by_host: bool) -> Pick {
        Pick::Cluster {
            namespace: ns.into(),
            name: name.into(),
            path: path.into(),
            by_host,
        }
    }

    #[test]
    fn prefixes() {
        let b = Some("ray.example.com");
        assert_eq!(pick(None, "/", b), Pick::Landing);
        assert_eq!(
            pick(Some("gw"), "/clusters/a/c/api/jobs/", b),
            c("a", "c", "/api/jobs/", false)
        );
        assert_eq!(pick(None, "/clusters/a/c/", None), c("a", "c", "/", false));
        assert_eq!(
            pick(None, "/clusters/a/c", None),
            Pick::Redirect("/clusters/a/c/".into())
        );
        for bad in [
            "/api/jobs/",
            "/clusters/",
            "/clusters/a",
            "/clusters/a/",
            "/clusters/A/c/",
            "/clusters/a/C/",
            "/clustersa/c/",
            "/clusters/a/raycluster/c",
        ] {
            assert!(matches!(pick(None, bad, b), Pick::NotFound(_)), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        let b = Some("ray.example.com");
        assert_eq!(
            pick(Some("c.a.ray.example.com"), "/api/jobs/", b),
            c("a", "c", "/api/jobs/", true)
        );
        assert_eq!(
            pick(Some("C.A.Ray.Example.com:8443"), "/clusters/b/d/x", b),
            c("a", "c", "/clusters/b/d/x", true)
        );
        // Not a cluster host: the path decides.
        for h in [
            "ray.example.com",
            "x.c.a.ray.example.com",
            "c.a.ray.example.com.evil",
            "c.aray.example.com",
            "c.a.ray.example.com:x",
        ] {
            assert_eq!(
                pick(Some(h), "/clusters/b/d/", b),
                c("b", "d", "/", false),
                "{h}"
            );
        }
        // Without a base domain, hosts never route.
        assert_eq!(pick(Some("c.a.ray.example.com"), "/", None), Pick::Landing);
    }

    #[test]
    fn history() {
        assert_eq!(
            pick(None, "/clusters/a/RayJob/j/session_1/api/jobs/", None),
            Pick::History {
                namespace: "a".into(),
                kind: "rayjob".into(),
                name: "j".into()
            }
        );
        assert_eq!(
            pick(None, "/clusters/a/raycluster/c/s/", None),
            Pick::History {
                namespace: "a".into(),
                kind: "raycluster".into(),
                name: "c".into()
            }
        );
        assert!(matches!(
            pick(None, "/clusters/a/rayjob/j/", None),
            Pick::NotFound(_)
        ));
    }
}
