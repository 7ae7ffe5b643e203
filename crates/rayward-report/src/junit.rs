//! JUnit XML, for CI systems that only show test reports: one test case per rule, failing
//! with one failure per finding of that rule.

use crate::Report;
use rayward_rules::registry;
use std::fmt::Write;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

pub(crate) fn render(r: &Report) -> String {
    let rules = registry::all();
    let mut body = String::new();
    let mut failures = 0;
    for rule in &rules {
        let m = rule.meta();
        let fs: Vec<_> = r.active().filter(|f| f.rule_id == m.id).collect();
        let _ = write!(
            body,
            "    <testcase classname=\"rayward.{}\" name=\"{} {}\"",
            esc(m.section),
            m.id,
            esc(m.name)
        );
        if fs.is_empty() {
            body.push_str("/>\n");
            continue;
        }
        failures += 1;
        body.push_str(">\n");
        for f in fs {
            let _ = writeln!(
                body,
                "      <failure type=\"{}\" message=\"{}:{}:{}: {}\">{} at {}; fix: {}</failure>",
                f.severity,
                esc(&f.file),
                f.line,
                f.column,
                esc(&f.message),
                esc(&f.object.id()),
                esc(&f.path),
                esc(&f.fix)
            );
        }
        body.push_str("    </testcase>\n");
    }
    let errors = r.errors.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"rayward\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        rules.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"rayward audit\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        rules.len()
    );
    out.push_str(&body);
    for e in &r.errors {
        let _ = writeln!(
            out,
            "    <testcase classname=\"rayward.input\" name=\"{}\"><error message=\"{}\"/></testcase>",
            esc(&e.file),
            esc(&format!("{}:{}: {}", e.line, e.column, e.message))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
