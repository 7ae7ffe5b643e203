//! JUnit XML, for CI systems that only show test reports: one test case per rule, failing
//! with one failure per finding of that rule.

use crate::Report;
use rayward_rules::registry;

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

/// Writes the JUnit XML as it goes: the counts of the header come from a first pass,
/// the failures are written one at a time (200,000 of them built as one string took 550 MB).
pub(crate) fn write(r: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let rules = registry::all();
    let failing: std::collections::HashSet<&str> = r.active().map(|f| f.rule_id).collect();
    let failures = rules
        .iter()
        .filter(|rule| failing.contains(rule.meta().id))
        .count();
    let errors = r.errors.len();
    out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    writeln!(
        out,
        "<testsuites name=\"rayward\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        rules.len()
    )?;
    writeln!(
        out,
        "  <testsuite name=\"rayward audit\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">",
        rules.len()
    )?;
    for rule in &rules {
        let m = rule.meta();
        write!(
            out,
            "    <testcase classname=\"rayward.{}\" name=\"{} {}\"",
            esc(m.section),
            m.id,
            esc(m.name)
        )?;
        if !failing.contains(m.id) {
            out.write_all(b"/>\n")?;
            continue;
        }
        out.write_all(b">\n")?;
        for f in r.active().filter(|f| f.rule_id == m.id) {
            writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}:{}:{}: {}\">{} at {}; fix: {}</failure>",
                f.severity,
                esc(&f.file),
                f.line,
                f.column,
                esc(&f.message),
                esc(&f.object.id()),
                esc(&f.path),
                esc(&f.fix)
            )?;
        }
        out.write_all(b"    </testcase>\n")?;
    }
    for e in &r.errors {
        writeln!(
            out,
            "    <testcase classname=\"rayward.input\" name=\"{}\"><error message=\"{}\"/></testcase>",
            esc(&e.file),
            esc(&format!("{}:{}: {}", e.line, e.column, e.message))
        )?;
    }
    out.write_all(b"  </testsuite>\n</testsuites>\n")
}
