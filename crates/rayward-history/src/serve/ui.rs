//! What the browser sees: the listing page of readable sessions, and under a session's
//! prefix Ray's own static dashboard build (`dashboard_dir`), whose pages call the API
//! with relative URLs, so one build serves every session. Paths the build does not hold
//! and that look like a client-side route (no file extension) get `index.html`.

use super::{full, not_found, text, Body};
use crate::catalog::{utc, Catalog};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use std::path::{Path, PathBuf};

/// The dashboard API's path prefixes (relative to a session), as the UI calls them.
pub fn is_api(rest: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/api/",
        "/nodes",
        "/logical/",
        "/events",
        "/timezone",
        "/task/",
        "/worker/",
        "/memory_profile",
    ];
    PREFIXES.iter().any(|p| rest.starts_with(p))
}

/// Largest asset served (Ray's largest, the main bundle, is a few MiB).
const MAX_ASSET: u64 = 64 << 20;

pub struct Assets {
    root: PathBuf,
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl Assets {
    pub fn new(root: &Path) -> Assets {
        Assets {
            root: root.canonicalize().unwrap_or_else(|_| root.to_path_buf()),
        }
    }

    /// `index.html`, never cached (it names the hashed bundles).
    pub fn index(&self) -> Response<Body> {
        match std::fs::read(self.root.join("index.html")) {
            Ok(b) => {
                let mut r = Response::new(full(b));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                r
            }
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("dashboard_dir: index.html: {e}\n"),
            ),
        }
    }

    /// A file of the build under `rest` (already checked: no `..`, no encoding), never
    /// outside the build directory (symlinks resolved).
    pub async fn asset(&self, rest: &str) -> Response<Body> {
        let rel = rest.trim_start_matches('/');
        let want = self.root.join(rel);
        let real = match tokio::fs::canonicalize(&want).await {
            Ok(p) if p.starts_with(&self.root) => p,
            Ok(_) => return not_found(),
            Err(_) => {
                let last = rel.rsplit('/').next().unwrap_or("");
                return if last.contains('.') {
                    not_found()
                } else {
                    self.index()
                };
            }
        };
        let meta = match tokio::fs::metadata(&real).await {
            Ok(m) if m.is_file() && m.len() <= MAX_ASSET => m,
            _ => return not_found(),
        };
        match tokio::fs::read(&real).await {
            Ok(b) => {
                let mut r = Response::new(full(b));
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type(&real)),
                );
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
                // The build's bundles are named by their hash.
                if rel.starts_with("static/") {
                    h.insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=31536000, immutable"),
                    );
                }
                r
            }
            Err(_) => not_found(),
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where a session still being written is shown live: the gateway's route of the running
/// cluster (`{base}/clusters/{namespace}/{name}/`, under the gateway's authorization) for
/// a RayCluster; for a RayJob or RayService, whose RayCluster has a generated name, the
/// gateway's landing page, which lists it beside its owner.
pub fn live_link(base: &str, namespace: &str, kind: &str, name: &str) -> String {
    if kind == "raycluster" {
        format!("{base}/clusters/{namespace}/{name}/")
    } else {
        format!("{base}/")
    }
}

/// The sessions `user` may read, newest first: namespace, kind, name, session, start and
/// end (or last update), the jobs' final states, and the indexes that could not be read.
/// With `live` (serve's `live_base_url`), a session still being written links to its live
/// dashboard through the gateway.
pub fn listing_page(c: &Catalog, user: &str, live: Option<&str>) -> Response<Body> {
    let mut rows = String::new();
    let mut sessions: Vec<_> = c.sessions.iter().collect();
    sessions.sort_by_key(|s| std::cmp::Reverse(s.started));
    for s in sessions {
        let id = format!("{}/{}/{}/{}", s.namespace, s.kind, s.name, s.session);
        let jobs: Vec<String> = s
            .jobs
            .iter()
            .map(|j| format!("{}={}", esc(&j.submission_id), esc(&j.status)))
            .collect();
        let state = match (s.finished, live) {
            (true, _) => "ended".to_string(),
            (false, None) => "being written".to_string(),
            (false, Some(base)) => format!(
                "being written: <a class=live href=\"{}\">live dashboard</a>",
                esc(&live_link(base, &s.namespace, &s.kind, &s.name))
            ),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/clusters/{}/\">{}</a></td><td>{}</td><td>{}{}</td><td>{}</td><td>{state}</td></tr>",
            esc(&s.namespace),
            esc(&s.kind),
            esc(&s.name),
            esc(&id),
            esc(&s.session),
            utc(s.started),
            if s.finished { "" } else { "updated " },
            utc(s.updated),
            if jobs.is_empty() { "-".to_string() } else { jobs.join(" ") },
        ));
    }
    let mut problems = String::new();
    for p in &c.problems {
        problems.push_str(&format!("<li>{}: {}</li>", esc(&p.key), esc(&p.error)));
    }
    if !problems.is_empty() {
        problems = format!("<h2>Unreadable</h2><ul>{problems}</ul>");
    }
    let html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Ray history</title>\
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style>\
</head><body><h1>Ray history</h1><p>Signed in as {}. <form method=post action=\"{}\" style=\"display:inline\"><button>Log out</button></form></p>\
<table><thead><tr><th>Namespace</th><th>Kind</th><th>Name</th><th>Session</th><th>Started</th><th>Ended</th><th>Jobs</th><th>State</th></tr></thead><tbody>{rows}</tbody></table>{problems}</body></html>",
        esc(user),
        rayward_auth::web::LOGOUT_PATH
    );
    let mut r = Response::new(full(html));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
