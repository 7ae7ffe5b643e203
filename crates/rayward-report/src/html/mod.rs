//! `--format html`: one self-contained page (inline CSS, script and SVG; no request leaves
//! it) for the people who decide whether a Ray platform is ready: the guide as a
//! scorecard, charts by severity and practice, and every finding to filter.
//!
//! The page is a template (`page.html`, `page.css`, `page.js`, pulled in whole); Rust
//! fills in the summary and the charts, and writes the data as one JSON document in a
//! `<script type="application/json">` that the page's script renders from. Everything
//! from the input is escaped where it is written: HTML text and attributes here, `<`, `>`
//! and `&` as `\u` escapes in the JSON (no `</script>` can close the block), and the
//! script only ever sets `textContent`. The Content-Security-Policy allows no source at
//! all but the page's own script and style, named by hash: even markup that slipped
//! through could neither run nor fetch anything.

mod data;
mod svg;

use crate::scorecard::{self, PRACTICES};
use crate::Report;
use base64::Engine as _;
use rayward_rules::Severity;
use sha2::{Digest, Sha256};
use std::io::{self, Write};

const PAGE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// A count with thousands separators (`200,020`).
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // A comma before every digit with a multiple of three digits after it.
    let lead = digits.len() % 3;
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && i % 3 == lead {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn sha256_b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
}

/// The page's policy: nothing may load, connect or submit; only the page's own script and
/// style run.
fn csp() -> String {
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src data:; base-uri 'none'; form-action 'none'",
        sha256_b64(SCRIPT),
        sha256_b64(STYLE)
    )
}

/// JSON made safe inside `<script type="application/json">`: `<`, `>` and `&` (which
/// JSON only holds inside strings) become `\u` escapes, so no `</script>` or `<!--` can
/// appear.
struct ScriptSafe<'w> {
    inner: &'w mut dyn Write,
}

impl Write for ScriptSafe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            let rep: &[u8] = match b {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                b'&' => b"\\u0026",
                _ => continue,
            };
            self.inner.write_all(&buf[start..i])?;
            self.inner.write_all(rep)?;
            start = i + 1;
        }
        self.inner.write_all(&buf[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn title(r: &Report) -> String {
    match &r.summary.cluster {
        Some(c) => format!("rayward audit: cluster {c}"),
        None => format!(
            "rayward audit: {} input(s)",
            grouped(r.summary.files as u64)
        ),
    }
}

fn summary(r: &Report) -> String {
    let s = &r.summary;
    let source = match &s.cluster {
        Some(c) => format!("the objects of cluster <code>{}</code>", esc(c)),
        None => format!("{} input(s)", grouped(s.files as u64)),
    };
    let n = |x: usize| grouped(x as u64);
    let mut out = format!(
        "<p class=\"lead\"><strong>{} finding(s)</strong> in {} object(s) read from {source}, {} Ray object(s); {} suppressed; {} input error(s). rayward {}.</p>\n<ul class=\"counts\" aria-label=\"Findings by severity\">",
        n(s.findings),
        n(s.objects),
        n(r.ray_objects.len()),
        n(s.suppressed),
        n(s.errors),
        esc(r.version),
    );
    for sev in Severity::ALL.iter().rev() {
        let count = n(s.by_severity.get(sev).copied().unwrap_or(0));
        out.push_str(&format!(
            "<li class=\"sev sev-{0}\"><span class=\"n\">{count}</span> {0}</li>",
            sev.as_str()
        ));
    }
    out.push_str("</ul>");
    out
}

fn charts(r: &Report) -> String {
    let mut by_sev: Vec<(String, u64, String)> = Vec::new();
    for sev in Severity::ALL.iter().rev() {
        let n = r.summary.by_severity.get(sev).copied().unwrap_or(0) as u64;
        by_sev.push((sev.as_str().to_string(), n, format!("sev-{}", sev.as_str())));
    }
    let mut by_practice = vec![0u64; PRACTICES.len()];
    let mut unsectioned = 0u64;
    for f in r.active() {
        match scorecard::practice_of(f.section) {
            Some(p) => by_practice[p] += 1,
            None => unsectioned += 1,
        }
    }
    let mut rows: Vec<(String, u64, String)> = PRACTICES
        .iter()
        .zip(by_practice)
        .map(|(p, n)| (p.label.to_string(), n, "bar-practice".to_string()))
        .collect();
    if unsectioned > 0 {
        rows.push((
            "other sections".to_string(),
            unsectioned,
            "bar-practice".to_string(),
        ));
    }
    format!(
        "<figure class=\"chart\">{}<figcaption>Findings by severity</figcaption></figure>\n<figure class=\"chart\">{}<figcaption>Findings by practice of the guide</figcaption></figure>",
        svg::bars("chart-sev", "Active findings by severity", &by_sev),
        svg::bars("chart-practice", "Active findings by practice of the guide", &rows),
    )
}

/// Writes the page.
pub(crate) fn write(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let card = scorecard::build(r);
    let mut rest = PAGE;
    while let Some(at) = rest.find("<!--rw:") {
        out.write_all(&rest.as_bytes()[..at])?;
        let after = &rest[at + "<!--rw:".len()..];
        let end = after.find("-->").expect("template markers are closed");
        let name = &after[..end];
        rest = &after[end + 3..];
        match name {
            // Our own text: no quote, `<` or `&` to escape.
            "csp" => out.write_all(csp().as_bytes())?,
            "title" => out.write_all(esc(&title(r)).as_bytes())?,
            "style" => out.write_all(STYLE.as_bytes())?,
            "script" => out.write_all(SCRIPT.as_bytes())?,
            "summary" => out.write_all(summary(r).as_bytes())?,
            "charts" => out.write_all(charts(r).as_bytes())?,
            "data" => data::write(r, &card, &mut ScriptSafe { inner: out })?,
            other => unreachable!("unknown template marker {other}"),
        }
    }
    out.write_all(rest.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(200_020), "200,020");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn script_safe_json_has_no_markup() {
        let mut v = Vec::new();
        let mut w = ScriptSafe { inner: &mut v };
        serde_json::to_writer(&mut w, &["</script><img src=x onerror=alert(1)>&amp;"]).unwrap();
        let s = String::from_utf8(v).unwrap();
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: Vec<String> = serde_json::from_str(&s).unwrap();
        assert_eq!(back[0], "</script><img src=x onerror=alert(1)>&amp;");
    }

    #[test]
    fn the_policy_names_the_page_script_and_style() {
        let page = crate::render(
            &Report::new(Vec::new(), Vec::new(), 0, 0),
            crate::Format::Html,
            crate::Style::default(),
        );
        let script = page
            .split("<script>")
            .nth(1)
            .and_then(|s| s.split("</script>").next())
            .unwrap();
        assert_eq!(script, SCRIPT);
        assert!(page.contains(&format!("'sha256-{}'", sha256_b64(script))));
        assert_eq!(page.matches("<script>").count(), 1);
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn links_are_relative_and_cannot_become_schemes() {
        let dir = std::env::temp_dir().join(format!("rw-href-{}", std::process::id()));
        let sub = dir.join("manifests");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("javascript:alert(1).yaml"), "").unwrap();
        std::fs::write(sub.join("a b#?.yaml"), "").unwrap();
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let links = crate::Links {
            cwd: dir.clone(),
            out_dir: out,
        };
        assert_eq!(
            data::file_href("manifests/javascript:alert(1).yaml", Some(&links)).unwrap(),
            "../manifests/javascript%3Aalert%281%29.yaml"
        );
        let same = crate::Links {
            cwd: dir.clone(),
            out_dir: dir.clone(),
        };
        assert_eq!(
            data::file_href("manifests/a b#?.yaml", Some(&same)).unwrap(),
            "./manifests/a%20b%23%3F.yaml"
        );
        assert_eq!(data::file_href("k8s://ctx/ns/Pod/p", Some(&same)), None);
        assert_eq!(data::file_href("missing.yaml", Some(&same)), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
