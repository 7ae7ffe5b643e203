//! Path normalisation and route classification.
//!
//! The gateway normalises a request path exactly once, classifies the normalised path, and
//! forwards that same string to Ray, so what is authorized is what Ray routes. Anything
//! that two HTTP stacks could read differently is rejected rather than canonicalised:
//!
//! | input | decision | why |
//! |---|---|---|
//! | `%41` (escape of an unreserved char `A-Z a-z 0-9 - . _ ~`) | decoded | RFC 3986 §6.2.2.2: same resource |
//! | `%2F` `%5C` `%00` `%25` | rejected | encoded separator, backslash, NUL, double encoding |
//! | any other escape (`%20`, `%3B`, …) | rejected | no Ray route needs one; decoders disagree |
//! | `\` `;` and bytes outside RFC 3986 `pchar` | rejected | Windows separators, matrix params |
//! | `//` (empty segment) | rejected | some stacks merge slashes, Ray's does not |
//! | `.` `..` segments (raw or via `%2e`) | rejected | dot-segment removal is where bypasses live |
//! | a segment ending in `.` | rejected | trailing-dot aliases |
//! | upper/lower case | kept | Ray's routes are case-sensitive: `/API/jobs/` is unknown, so denied |
//! | a trailing `/` | kept | `/api/jobs/` and `/api/jobs` are different routes in Ray |
//!
//! Classification follows the route table of the Ray dashboard (CONTEXT §4): every route
//! is read, write (runs or stops code), admin (profilers attached to live processes) or
//! denied (test routes, Ray's own login). Unknown paths and methods are denied.

use std::fmt;

/// Longest path accepted; Ray's longest real paths are far below this.
pub const MAX_PATH_LEN: usize = 2048;

/// What a request may do, in increasing order of privilege (`Denied` is never granted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    Read,
    Write,
    Admin,
    Denied,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Admin => "admin",
            Class::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        match s {
            "read" => Some(Class::Read),
            "write" => Some(Class::Write),
            "admin" => Some(Class::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a path was refused before classification (answered with 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("request target is not an absolute path")]
    NotOriginForm,
    #[error("path longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("malformed percent-escape")]
    BadEscape,
    #[error("encoded '/' in path")]
    EncodedSlash,
    #[error("backslash in path")]
    Backslash,
    #[error("NUL in path")]
    Nul,
    #[error("double percent-encoding in path")]
    DoubleEncoding,
    #[error("percent-encoded reserved or non-ASCII byte in path")]
    EncodedReserved,
    #[error("';' parameters in path")]
    Params,
    #[error("character not allowed in path")]
    BadChar,
    #[error("empty path segment ('//')")]
    EmptySegment,
    #[error("'.' or '..' path segment")]
    DotSegment,
    #[error("path segment ending in '.'")]
    TrailingDot,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Raw bytes allowed in a path: RFC 3986 `pchar` and `/`, less `;` (handled apart).
fn is_allowed_raw(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'/' | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
                | b':'
                | b'@'
        )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises the path of a request target (without the query) per the table above.
pub fn normalise_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    if bytes.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (h, l) = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) => (hex(h), hex(l)),
                _ => return Err(PathError::BadEscape),
            };
            let (Some(h), Some(l)) = (h, l) else {
                return Err(PathError::BadEscape);
            };
            let d = h << 4 | l;
            match d {
                b'/' => return Err(PathError::EncodedSlash),
                b'\\' => return Err(PathError::Backslash),
                0 => return Err(PathError::Nul),
                b'%' => return Err(PathError::DoubleEncoding),
                b';' => return Err(PathError::Params),
                d if is_unreserved(d) => out.push(d as char),
                _ => return Err(PathError::EncodedReserved),
            }
            i += 3;
            continue;
        }
        match b {
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Params),
            0 => return Err(PathError::Nul),
            b if is_allowed_raw(b) => out.push(b as char),
            _ => return Err(PathError::BadChar),
        }
        i += 1;
    }
    // Segment checks on the decoded path: `%2e%2e` is caught here as `..`.
    let segments: Vec<&str> = out[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            if n == last {
                continue; // a trailing slash is part of Ray's route names
            }
            return Err(PathError::EmptySegment);
        }
        if *seg == "." || *seg == ".." {
            return Err(PathError::DotSegment);
        }
        if seg.ends_with('.') {
            return Err(PathError::TrailingDot);
        }
    }
    Ok(out)
}

/// Validates the query string: forwarded byte for byte, but never with NUL or a raw
/// backslash (a few log routes take file names in the query).
pub fn check_query(q: &str) -> Result<(), PathError> {
    let lower = q.to_ascii_lowercase();
    if lower.contains("%00") || q.contains('\0') {
        return Err(PathError::Nul);
    }
    if q.contains('\\') || lower.contains("%5c") {
        return Err(PathError::Backslash);
    }
    Ok(())
}

/// The result of classifying a normalised path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub class: Class,
    /// The table pattern that matched, for logs and metrics (`"unknown"` when none did).
    pub pattern: &'static str,
    /// Only `/api/jobs/{id}/logs/tail` may be upgraded to a WebSocket.
    pub websocket: bool,
}

/// HTTP methods the table distinguishes. Everything else is denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum M {
    Get,
    Post,
    Put,
    Delete,
}

struct Entry {
    method: M,
    pattern: &'static str,
    class: Class,
    websocket: bool,
    /// Where the pattern's first wildcard (`{` or `*`) is, found at compile time: every
    /// request tries the table's entries in order, and searching each pattern for its
    /// wildcard on every try was most of classification's cost.
    wild: Option<usize>,
}

const fn e(method: M, pattern: &'static str, class: Class) -> Entry {
    Entry {
        method,
        pattern,
        class,
        websocket: false,
        wild: wildcard_at(pattern),
    }
}

/// The index of the first `{` or `*` of `pattern`, if any.
const fn wildcard_at(pattern: &str) -> Option<usize> {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' || b[i] == b'*' {
            return Some(i);
        }
        i += 1;
    }
    None
}

use Class::{Admin, Denied, Read, Write};
use M::{Delete, Get, Post, Put};

/// The route table. `{}` matches one non-empty segment; a final `**` matches one or more.
/// Order matters only for the blocked prefixes, which come first.
const TABLE: &[Entry] = &[
    // Test-only and Ray-login routes: blocked for everyone.
    e(Get, "/api/v0/delay/**", Denied),
    e(Get, "/test/dump", Denied),
    e(Get, "/api/authenticate", Denied),
    e(Post, "/api/authenticate", Denied),
    // Read.
    e(Get, "/", Read),
    e(Get, "/favicon.ico", Read),
    e(Get, "/static/**", Read),
    e(Get, "/timezone", Read),
    e(Get, "/cluster_id", Read),
    e(Get, "/api/version", Read),
    e(Get, "/api/authentication_mode", Read),
    e(Get, "/api/healthz", Read),
    e(Get, "/api/gcs_healthz", Read),
    e(Get, "/api/local_raylet_healthz", Read),
    e(Get, "/-/healthz", Read),
    e(Get, "/api/grafana_health", Read),
    e(Get, "/api/prometheus_health", Read),
    e(Get, "/api/component_activities", Read),
    e(Get, "/api/profiling_enabled", Read),
    e(Get, "/api/v0/runtime_env_redaction", Read),
    e(Get, "/api/v0/tasks/timeline", Read),
    e(Get, "/api/v0/platform_events", Read),
    e(Get, "/api/cluster_status", Read),
    e(Get, "/api/prometheus/sd", Read),
    e(Get, "/api/jobs/", Read),
    e(Get, "/api/jobs/{}", Read),
    e(Get, "/api/jobs/{}/logs", Read),
    Entry {
        websocket: true,
        ..e(Get, "/api/jobs/{}/logs/tail", Read)
    },
    e(Get, "/nodes", Read),
    e(Get, "/nodes/{}", Read),
    e(Get, "/logical/actors", Read),
    e(Get, "/logical/actors/{}", Read),
    e(Get, "/events", Read),
    e(Get, "/api/v0/tasks", Read),
    e(Get, "/api/v0/actors", Read),
    e(Get, "/api/v0/nodes", Read),
    e(Get, "/api/v0/objects", Read),
    e(Get, "/api/v0/workers", Read),
    e(Get, "/api/v0/jobs", Read),
    e(Get, "/api/v0/placement_groups", Read),
    e(Get, "/api/v0/runtime_envs", Read),
    e(Get, "/api/v0/logs", Read),
    e(Get, "/api/v0/cluster_events", Read),
    e(Get, "/api/v0/cluster_metadata", Read),
    e(Get, "/api/v0/tasks/summarize", Read),
    e(Get, "/api/v0/actors/summarize", Read),
    e(Get, "/api/v0/objects/summarize", Read),
    e(Get, "/api/v0/logs/file", Read),
    e(Get, "/api/v0/logs/stream", Read),
    e(Get, "/api/serve/applications/", Read),
    e(Get, "/api/data/datasets/{}", Read),
    e(Get, "/api/train/v2/runs", Read),
    // Write: runs, stops or removes code.
    e(Post, "/api/jobs/", Write),
    e(Post, "/api/jobs/{}/stop", Write),
    e(Delete, "/api/jobs/{}", Write),
    e(Get, "/api/packages/{}/{}", Write),
    e(Put, "/api/packages/{}/{}", Write),
    e(Put, "/api/serve/applications/", Write),
    e(Delete, "/api/serve/applications/", Write),
    e(Post, "/api/v1/applications/{}/deployments/{}/scale", Write),
    // Admin even though GET: attach profilers to, or kill, live processes.
    e(Get, "/worker/traceback", Admin),
    e(Get, "/worker/cpu_profile", Admin),
    e(Get, "/worker/gpu_profile", Admin),
    e(Get, "/task/traceback", Admin),
    e(Get, "/task/cpu_profile", Admin),
    e(Get, "/memory_profile", Admin),
    e(Get, "/api/actors/kill", Admin),
    e(Get, "/logical/kill_actor", Admin),
];

fn matches(entry: &Entry, path: &str) -> bool {
    // Fast rejection, run for every table entry on every request: a pattern without a
    // wildcard matches only itself, and one with a wildcard only paths that start with
    // its literal part (the segments before a wildcard must be equal).
    let pattern = entry.pattern;
    match entry.wild {
        None => return pattern == path,
        Some(i) if !path.as_bytes().starts_with(&pattern.as_bytes()[..i]) => return false,
        Some(_) => {}
    }
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some("**"), Some(seg)) => return !seg.is_empty(),
            (Some("{}"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

const UNKNOWN: Route = Route {
    class: Denied,
    pattern: "unknown",
    websocket: false,
};

/// Classifies a normalised path for a method. HEAD is classified as GET (Ray answers HEAD
/// wherever it answers GET); every other method not in the table (OPTIONS, PATCH, …) and
/// every path not in it is denied.
pub fn classify(method: &http::Method, path: &str) -> Route {
    let m = match *method {
        http::Method::GET | http::Method::HEAD => Get,
        http::Method::POST => Post,
        http::Method::PUT => Put,
        http::Method::DELETE => Delete,
        _ => return UNKNOWN,
    };
    for entry in TABLE {
        if matches(entry, path) {
            if entry.method == m {
                return Route {
                    class: entry.class,
                    pattern: entry.pattern,
                    websocket: entry.websocket,
                };
            }
            // A blocked prefix blocks every method.
            if entry.class == Denied {
                return Route {
                    class: Denied,
                    pattern: entry.pattern,
                    websocket: false,
                };
            }
        }
    }
    UNKNOWN
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn ok(raw: &str) -> String {
        normalise_path(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    fn err(raw: &str) -> PathError {
        normalise_path(raw).expect_err(raw)
    }

    #[test]
    fn wildcard_positions_are_those_of_the_patterns() {
        for entry in TABLE {
            assert_eq!(
                entry.wild,
                entry.pattern.find(['{', '*']),
                "{}",
                entry.pattern
            );
        }
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/api/jobs/",
            "/api/jobs/raysubmit_abc123",
            "/api/packages/gcs/_ray_pkg_0a1b.zip",
            "/static/js/main.4f2a.js",
            "/API/Jobs/",
            "/a~b-c_d",
            "/x:y@z!$&'()*+,=",
        ] {
            assert_eq!(ok(p), p);
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded() {
        assert_eq!(ok("/api/%6aobs/"), "/api/jobs/");
        assert_eq!(ok("/api/%6Aobs/"), "/api/jobs/");
        assert_eq!(ok("/%41%7e%2D%5f"), "/A~-_");
        assert_eq!(
            ok("/api/packages/gcs/pkg%2ezip"),
            "/api/packages/gcs/pkg.zip"
        );
    }

    #[test]
    fn dangerous_escapes_are_rejected() {
        assert_eq!(err("/api/jobs%2f"), PathError::EncodedSlash);
        assert_eq!(err("/api/jobs%2F"), PathError::EncodedSlash);
        assert_eq!(err("/api%5cjobs/"), PathError::Backslash);
        assert_eq!(err("/api/jobs/%00"), PathError::Nul);
        assert_eq!(err("/api/%256aobs/"), PathError::DoubleEncoding);
        assert_eq!(err("/api/%252f"), PathError::DoubleEncoding);
        assert_eq!(err("/api/jobs/%3b"), PathError::Params);
        assert_eq!(err("/api/jobs%20/"), PathError::EncodedReserved);
        assert_eq!(err("/api/jobs/%C3%A9"), PathError::EncodedReserved);
        assert_eq!(err("/api/jobs/%3F"), PathError::EncodedReserved);
        assert_eq!(err("/api/jobs/%23"), PathError::EncodedReserved);
    }

    #[test]
    fn malformed_escapes_are_rejected() {
        for p in ["/%", "/%4", "/%zz", "/%4g", "/api/%"] {
            assert_eq!(err(p), PathError::BadEscape, "{p}");
        }
    }

    #[test]
    fn raw_separators_and_params_are_rejected() {
        assert_eq!(err("/api\\jobs/"), PathError::Backslash);
        assert_eq!(err("/api/jobs/;x=1"), PathError::Params);
        assert_eq!(err("/api/jobs;/"), PathError::Params);
        assert_eq!(err("/api/jobs/\0"), PathError::Nul);
        assert_eq!(err("/api/jobs/ "), PathError::BadChar);
        assert_eq!(err("/api/jobs/\u{e9}"), PathError::BadChar);
        assert_eq!(err("/api/jobs/\""), PathError::BadChar);
    }

    #[test]
    fn dot_segments_are_rejected_raw_and_encoded() {
        for p in [
            "/api/./jobs/",
            "/api/../api/jobs/",
            "/static/../api/jobs/",
            "/static/%2e%2e/api/jobs/",
            "/static/.%2e/api/jobs/",
            "/static/%2E./api/jobs/",
            "/api/%2e/jobs/",
            "/..",
            "/.",
        ] {
            assert_eq!(err(p), PathError::DotSegment, "{p}");
        }
    }

    #[test]
    fn empty_segments_and_trailing_dots_are_rejected() {
        assert_eq!(err("//api/jobs/"), PathError::EmptySegment);
        assert_eq!(err("/api//jobs/"), PathError::EmptySegment);
        assert_eq!(err("/api/jobs//"), PathError::EmptySegment);
        assert_eq!(err("/api./jobs/"), PathError::TrailingDot);
        assert_eq!(err("/api/jobs/x."), PathError::TrailingDot);
        assert_eq!(err("/api/jobs/x%2e"), PathError::TrailingDot);
        assert_eq!(err("/api/..../jobs"), PathError::TrailingDot);
    }

    #[test]
    fn non_origin_forms_and_long_paths_are_rejected() {
        assert_eq!(err("*"), PathError::NotOriginForm);
        assert_eq!(err(""), PathError::NotOriginForm);
        assert_eq!(err("api/jobs/"), PathError::NotOriginForm);
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(err(&long), PathError::TooLong);
    }

    #[test]
    fn normalisation_is_idempotent() {
        for p in ["/api/%6aobs/", "/static/a%2eb/c", "/%7E"] {
            let once = ok(p);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn queries_with_nul_or_backslash_are_rejected() {
        assert!(check_query("limit=10&filename=a.log").is_ok());
        assert_eq!(check_query("f=%00"), Err(PathError::Nul));
        assert_eq!(check_query("f=..%5C..%5cx"), Err(PathError::Backslash));
    }

    fn class(m: Method, p: &str) -> Class {
        classify(&m, p).class
    }

    #[test]
    fn read_routes() {
        for p in [
            "/",
            "/static/js/main.js",
            "/api/version",
            "/api/jobs/",
            "/api/jobs/raysubmit_1",
            "/api/jobs/raysubmit_1/logs",
            "/api/jobs/raysubmit_1/logs/tail",
            "/api/cluster_status",
            "/nodes",
            "/nodes/abc",
            "/logical/actors",
            "/logical/actors/abc",
            "/events",
            "/api/v0/tasks",
            "/api/v0/tasks/summarize",
            "/api/v0/cluster_metadata",
            "/api/v0/logs/file",
            "/api/v0/logs/stream",
            "/api/serve/applications/",
            "/api/data/datasets/0100",
            "/api/train/v2/runs",
            "/timezone",
            "/cluster_id",
            "/api/prometheus/sd",
            "/api/profiling_enabled",
            "/api/v0/runtime_env_redaction",
            "/api/v0/tasks/timeline",
            "/api/v0/platform_events",
        ] {
            assert_eq!(class(Method::GET, p), Read, "GET {p}");
            assert_eq!(class(Method::HEAD, p), Read, "HEAD {p}");
        }
    }

    #[test]
    fn write_routes() {
        assert_eq!(class(Method::POST, "/api/jobs/"), Write);
        assert_eq!(class(Method::POST, "/api/jobs/raysubmit_1/stop"), Write);
        assert_eq!(class(Method::DELETE, "/api/jobs/raysubmit_1"), Write);
        assert_eq!(
            class(Method::PUT, "/api/packages/gcs/_ray_pkg_a.zip"),
            Write
        );
        assert_eq!(
            class(Method::GET, "/api/packages/gcs/_ray_pkg_a.zip"),
            Write
        );
        assert_eq!(
            class(Method::HEAD, "/api/packages/gcs/_ray_pkg_a.zip"),
            Write
        );
        assert_eq!(class(Method::PUT, "/api/serve/applications/"), Write);
        assert_eq!(class(Method::DELETE, "/api/serve/applications/"), Write);
        assert_eq!(
            class(Method::POST, "/api/v1/applications/app/deployments/d/scale"),
            Write
        );
    }

    #[test]
    fn profiling_gets_are_admin() {
        for p in [
            "/worker/traceback",
            "/worker/cpu_profile",
            "/worker/gpu_profile",
            "/task/traceback",
            "/task/cpu_profile",
            "/memory_profile",
        ] {
            assert_eq!(class(Method::GET, p), Admin, "{p}");
        }
    }

    #[test]
    fn test_routes_and_ray_login_are_blocked_for_every_method() {
        for m in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            assert_eq!(class(m.clone(), "/api/v0/delay/5"), Denied);
            assert_eq!(class(m.clone(), "/test/dump"), Denied);
            assert_eq!(class(m, "/api/authenticate"), Denied);
        }
    }

    #[test]
    fn unknown_paths_methods_and_case_variants_are_denied() {
        for (m, p) in [
            (Method::GET, "/api/jobs"),
            (Method::GET, "/API/jobs/"),
            (Method::POST, "/API/JOBS/"),
            (Method::POST, "/api/Jobs/"),
            (Method::GET, "/api/jobs/x/logs/tail/extra"),
            (Method::GET, "/api/job_agent/jobs/"),
            (Method::POST, "/api/job_agent/jobs/"),
            (Method::POST, "/api/version"),
            (Method::PUT, "/api/jobs/"),
            (Method::PATCH, "/api/jobs/x"),
            (Method::OPTIONS, "/api/jobs/"),
            (Method::TRACE, "/"),
            (Method::CONNECT, "/"),
            (Method::GET, "/static/"),
            (Method::GET, "/api/v0/"),
            (Method::GET, "/api/v0/nodes/summarize"),
            (Method::GET, "/api/packages/gcs"),
            (Method::GET, "/api/jobs//logs"),
            (Method::GET, "/metrics"),
        ] {
            assert_eq!(class(m.clone(), p), Denied, "{m} {p}");
        }
    }

    #[test]
    fn only_the_log_tail_may_upgrade() {
        assert!(classify(&Method::GET, "/api/jobs/x/logs/tail").websocket);
        for (m, p) in [
            (Method::GET, "/api/jobs/x/logs"),
            (Method::POST, "/api/jobs/"),
            (Method::GET, "/api/packages/gcs/a.zip"),
            (Method::GET, "/"),
        ] {
            assert!(!classify(&m, p).websocket, "{m} {p}");
        }
    }

    #[test]
    fn pattern_is_reported() {
        assert_eq!(
            classify(&Method::DELETE, "/api/jobs/x").pattern,
            "/api/jobs/{}"
        );
        assert_eq!(classify(&Method::GET, "/nope").pattern, "unknown");
    }
}
