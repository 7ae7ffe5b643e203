//! The landing page at `/` under `[discovery]`: the clusters the user may read (the caller
//! filters by authorization), each linked to its dashboard under its path prefix (and its
//! host name when host routing is configured), and the stored sessions of history serve
//! the user may read, each linked to its history and, while still being written, to the
//! live cluster it belongs to. Plain HTML, no script, nothing cached.

use crate::discovery::Cluster;

/// Content-Security-Policy of the page: no script, no framing, styles inline only.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// One row of the page.
pub struct Row<'a> {
    pub cluster: &'a Cluster,
}

/// The live cluster a stored session belongs to: the RayCluster of that name, or the
/// cluster a RayJob or RayService of that name owns.
pub fn live_of<'a>(
    s: &crate::history::Session,
    table: &'a crate::discovery::Table,
) -> Option<&'a Cluster> {
    table.get(&s.namespace)?.values().map(|c| &**c).find(|c| {
        if s.kind == "raycluster" {
            c.kind == "RayCluster" && c.name == s.name
        } else {
            c.kind.eq_ignore_ascii_case(&s.kind) && c.owner.as_deref() == Some(&s.name)
        }
    })
}

/// The page for `user`; `history`: the stored sessions the user may read (None: no
/// history configured; Err: serve could not be asked); `base_domain`: host links too.
pub fn page(
    user: &str,
    rows: &[Row<'_>],
    history: Option<Result<&[crate::history::Session], &String>>,
    table: &crate::discovery::Table,
    base_domain: Option<&str>,
) -> String {
    let mut out = String::with_capacity(512 + rows.len() * 256);
    out.push_str("<!doctype html><html><head><meta charset=\"utf-8\"><title>Ray clusters</title>");
    out.push_str("<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em 1em;text-align:left}</style></head><body>");
    out.push_str("<h1>Ray clusters</h1><p>Signed in as ");
    out.push_str(&escape(user));
    out.push_str("</p>");
    if rows.is_empty() {
        out.push_str("<p>No cluster you may read.</p>");
    } else {
        out.push_str(
            "<table><tr><th>Namespace</th><th>Cluster</th><th>Kind</th><th>State</th></tr>",
        );
        for r in rows {
            let c = r.cluster;
            let link = crate::upstreams::link(&c.namespace, &c.name);
            out.push_str("<tr><td>");
            out.push_str(&escape(&c.namespace));
            out.push_str("</td><td><a href=\"");
            out.push_str(&escape(&link));
            out.push_str("\">");
            out.push_str(&escape(&c.name));
            out.push_str("</a>");
            if let Some(b) = base_domain {
                let host = format!("//{}.{}.{}/", c.name, c.namespace, b);
                out.push_str(" (<a href=\"");
                out.push_str(&escape(&host));
                out.push_str("\">host</a>)");
            }
            out.push_str("</td><td>");
            out.push_str(c.kind);
            if let Some(o) = &c.owner {
                out.push(' ');
                out.push_str(&escape(o));
            }
            out.push_str("</td><td>");
            match &c.upstream {
                Ok(_) => out.push_str("ready"),
                // The reason names Services and Secrets, never a token.
                Err(e) => out.push_str(&escape(e)),
            }
            out.push_str("</td></tr>");
        }
        out.push_str("</table>");
    }
    match history {
        None => {}
        Some(Err(e)) => {
            out.push_str("<h2>History</h2><p>History is unavailable: ");
            out.push_str(&escape(e));
            out.push_str("</p>");
        }
        Some(Ok([])) => out.push_str("<h2>History</h2><p>No stored session you may read.</p>"),
        Some(Ok(sessions)) => {
            out.push_str("<h2>History</h2><table><tr><th>Namespace</th><th>Kind</th><th>Name</th><th>Session</th><th>State</th></tr>");
            let mut sorted: Vec<_> = sessions.iter().collect();
            sorted.sort_by_key(|s| std::cmp::Reverse(s.started));
            for s in sorted {
                out.push_str("<tr><td>");
                out.push_str(&escape(&s.namespace));
                out.push_str("</td><td>");
                out.push_str(&escape(&s.kind));
                out.push_str("</td><td>");
                out.push_str(&escape(&s.name));
                out.push_str("</td><td><a class=\"history\" href=\"");
                out.push_str(&escape(&s.link()));
                out.push_str("\">");
                out.push_str(&escape(&s.session));
                out.push_str("</a></td><td>");
                if s.finished {
                    out.push_str("ended");
                } else {
                    out.push_str("being written");
                    if let Some(c) = live_of(s, table) {
                        out.push_str(": <a class=\"live\" href=\"");
                        out.push_str(&escape(&crate::upstreams::link(&c.namespace, &c.name)));
                        out.push_str("\">live dashboard</a>");
                    }
                }
                out.push_str("</td></tr>");
            }
            out.push_str("</table>");
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_escapes() {
        let ready = Cluster {
            namespace: "a".into(),
            name: "c".into(),
            kind: "RayJob",
            owner: Some("<j>".into()),
            upstream: Err("Service c-head-svc has no ready endpoint".into()),
        };
        let html = page(
            "k8s:<x>",
            &[Row { cluster: &ready }],
            None,
            &Default::default(),
            Some("ray.example.com"),
        );
        assert!(html.contains("href=\"/clusters/a/c/\""), "{html}");
        assert!(html.contains("href=\"//c.a.ray.example.com/\""), "{html}");
        assert!(html.contains("RayJob &lt;j&gt;"), "{html}");
        assert!(html.contains("k8s:&lt;x&gt;"), "{html}");
        assert!(!html.contains("<x>") && !html.contains("<j>"));
        assert!(page("u", &[], None, &Default::default(), None).contains("No cluster you may read"));
    }
}
