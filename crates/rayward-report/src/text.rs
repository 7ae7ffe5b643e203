//! Text for people: findings grouped by file, `file:line:col`, most useful first.

use crate::{Report, Style};
use rayward_rules::Severity;
use std::fmt::Write;

fn paint(s: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn sev_code(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    }
}

/// Input-derived text for the terminal (see `rayward_manifest::terminal`).
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    rayward_manifest::terminal::escape(s)
}

/// How much text is held before it is handed to the writer: a report of 200,000
/// findings is written as it is made, not built whole in memory first.
const SPILL: usize = 64 * 1024;

/// Writes the text report to `w` as it is made.
pub(crate) fn render_to(
    r: &Report,
    style: Style,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let c = style.color;
    let mut out = String::new();
    let mut wrote = false;
    let mut current_file: Option<&str> = None;
    for f in r
        .findings
        .iter()
        .filter(|f| style.show_suppressed || f.suppressed.is_none())
    {
        if current_file != Some(&f.file) {
            if current_file.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{}", paint(&esc(&f.file), "1", c));
            current_file = Some(&f.file);
        }
        let sev = format!("{:<8}", f.severity.as_str());
        let _ = writeln!(
            out,
            "{}:{}:{}: {} {} {} {}",
            esc(&f.file),
            f.line,
            f.column,
            paint(&sev, sev_code(f.severity), c),
            paint(f.rule_id, "1", c),
            f.rule_name,
            esc(&f.object.id()),
        );
        let _ = writeln!(out, "    {}", esc(&f.message));
        if !f.path.is_empty() {
            let _ = writeln!(out, "    {} {}", paint("at", "2", c), esc(&f.path));
        }
        let _ = writeln!(out, "    {} {}", paint("fix:", "32", c), esc(&f.fix));
        if let Some(reason) = &f.suppressed {
            let why = if reason.is_empty() {
                "no reason given"
            } else {
                reason
            };
            let _ = writeln!(out, "    {} {}", paint("suppressed:", "2", c), esc(why));
        }
        if out.len() >= SPILL {
            w.write_all(out.as_bytes())?;
            out.clear();
            wrote = true;
        }
    }
    if !r.errors.is_empty() {
        if wrote || !out.is_empty() {
            out.push('\n');
        }
        for e in &r.errors {
            let place = if e.line > 0 {
                format!("{}:{}:{}", esc(&e.file), e.line, e.column)
            } else {
                esc(&e.file).into_owned()
            };
            let _ = writeln!(
                out,
                "{} {}: {}",
                paint("error:", "1;31", c),
                place,
                esc(&e.message)
            );
        }
    }
    if wrote || !out.is_empty() {
        out.push('\n');
    }
    let s = &r.summary;
    let sev: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|v| s.by_severity.get(v).map(|n| format!("{n} {v}")))
        .collect();
    let _ = write!(
        out,
        "{} finding{}",
        s.findings,
        if s.findings == 1 { "" } else { "s" }
    );
    if !sev.is_empty() {
        let _ = write!(out, " ({})", sev.join(", "));
    }
    match &s.cluster {
        Some(ctx) => {
            let _ = write!(out, " in {} objects of cluster {}", s.objects, esc(ctx));
        }
        None => {
            let _ = write!(out, " in {} objects from {} files", s.objects, s.files);
        }
    }
    if s.suppressed > 0 {
        let _ = write!(out, "; {} suppressed", s.suppressed);
    }
    if s.errors > 0 {
        let _ = write!(
            out,
            "; {} input error{}",
            s.errors,
            if s.errors == 1 { "" } else { "s" }
        );
    }
    out.push('\n');
    w.write_all(out.as_bytes())
}
