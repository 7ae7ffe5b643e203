//! Request targets: hostile paths refused before anything else reads them, and the
//! cluster chosen by the URL path `/clusters/{namespace}/{kind}/{name}/{session}/…`
//! (never by a cookie, so authorization always checks the real target).

use crate::layout::{self, Kind};

/// Longest path and query accepted.
pub const MAX_PATH: usize = 2048;
pub const MAX_QUERY: usize = 8192;

/// Refuses what no stored name or UI asset needs and what path tricks are made of: any
/// percent-encoding in the path (`%2e%2e`, `%2f`, `%5c`, `%00`), backslashes, empty
/// segments (`//`), `.` and `..` segments, control bytes, overlong targets.
pub fn check(path: &str, query: Option<&str>) -> Result<(), &'static str> {
    if path.len() > MAX_PATH || query.is_some_and(|q| q.len() > MAX_QUERY) {
        return Err("request target too long");
    }
    if !path.starts_with('/') {
        return Err("path must start with /");
    }
    if path.contains('%') {
        return Err("percent-encoding is not accepted in the path");
    }
    if path.bytes().any(|b| b == b'\\' || b < 0x20 || b == 0x7f) {
        return Err("backslash or control byte in the path");
    }
    if path.len() > 1
        && path[1..].split('/').enumerate().any(|(i, seg)| {
            seg == "." || seg == ".." || (seg.is_empty() && i + 1 != path[1..].split('/').count())
        })
    {
        return Err("empty, . or .. path segment");
    }
    if query.is_some_and(|q| q.bytes().any(|b| b < 0x20 || b == 0x7f)) {
        return Err("control byte in the query");
    }
    Ok(())
}

/// A session's URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPath<'a> {
    pub namespace: &'a str,
    pub kind: Kind,
    pub name: &'a str,
    pub session: &'a str,
    /// What follows the session, from its `/` (empty when the URL ends at the session).
    pub rest: &'a str,
}

impl SessionPath<'_> {
    /// The session's prefix in the store and its URL base.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.namespace,
            self.kind.segment(),
            self.name,
            self.session
        )
    }
}

/// `Some` for a path under `/clusters/` whose segments could name a stored session;
/// `None` otherwise (answered 404 like any other unknown path).
pub fn session(path: &str) -> Option<SessionPath<'_>> {
    let rest = path.strip_prefix("/clusters/")?;
    let mut it = rest.splitn(5, '/');
    let (namespace, kind, name, session) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let tail = match it.next() {
        Some(_) => &rest[namespace.len() + kind.len() + name.len() + session.len() + 3..],
        None => "",
    };
    let kind = Kind::parse(kind).ok()?;
    crate::layout::ClusterRef::new(namespace, kind, name).ok()?;
    layout::check_session(session).ok()?;
    Some(SessionPath {
        namespace,
        kind,
        name,
        session,
        rest: tail,
    })
}

/// The value of `key` in a query string, percent-decoded; `None` when absent or when it
/// decodes to a NUL, `/..`-style traversal is the log route's own check.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths() {
        for ok in [
            "/",
            "/api/clusters",
            "/clusters/a/rayjob/b/session_2026-01-01_00-00-00_000000_1/",
            "/clusters/a/rayjob/b/session_2026-01-01_00-00-00_000000_1/static/js/main.js",
        ] {
            assert_eq!(check(ok, None), Ok(()), "{ok}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH));
        for bad in [
            "/clusters/../etc/passwd",
            "/clusters/a/%2e%2e/b",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "//etc",
            "/a//b",
            "/a/./b",
            "/a/..",
            "/a\0b",
            "relative",
            long.as_str(),
        ] {
            assert!(check(bad, None).is_err(), "{bad:?}");
        }
        assert!(check("/", Some("a=\x01")).is_err());
    }

    #[test]
    fn session_paths() {
        let s = "session_2026-01-01_00-00-00_000000_1";
        let url = format!("/clusters/team-a/rayjob/train/{s}/api/jobs/");
        let p = session(&url).unwrap();
        assert_eq!(
            (p.namespace, p.kind, p.name, p.session, p.rest),
            ("team-a", Kind::RayJob, "train", s, "/api/jobs/")
        );
        assert_eq!(p.id(), format!("team-a/rayjob/train/{s}"));
        assert_eq!(
            session(&format!("/clusters/a/rayjob/b/{s}")).unwrap().rest,
            ""
        );
        assert_eq!(
            session(&format!("/clusters/a/rayjob/b/{s}/")).unwrap().rest,
            "/"
        );
        for bad in [
            format!("/clusters/a/deployment/b/{s}/"),
            format!("/clusters/A/rayjob/b/{s}/"),
            "/clusters/a/rayjob/b/notasession/".to_string(),
            "/clusters/a/rayjob/b".to_string(),
        ] {
            assert_eq!(session(&bad), None, "{bad}");
        }
        assert_eq!(
            query_param(Some("node_id=ab&filename=a%2Fb.log"), "filename").as_deref(),
            Some("a/b.log")
        );
        assert_eq!(query_param(Some("filename=a%00b"), "filename"), None);
    }
}
