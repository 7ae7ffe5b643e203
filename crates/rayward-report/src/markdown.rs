//! A short Markdown summary for a pull-request comment or `$GITHUB_STEP_SUMMARY`: the
//! counts, the guide as a scorecard (practices × Ray objects), and the most severe
//! findings with file:line, under a hard cap on length with a note of what was cut.
//!
//! Everything from the input (names, paths, messages) is escaped: Markdown table syntax,
//! inline HTML (GitHub renders it) and line breaks cannot come through.

use crate::Report;
use rayward_rules::{Finding, ObjectRef, Severity};
use std::collections::BTreeMap;
use std::fmt::Write;

/// GitHub refuses comments over 65,536 characters; this leaves room for a wrapper.
pub const MAX_CHARS: usize = 60_000;

/// Scorecard columns before objects are grouped by namespace, and namespaces cut.
const MAX_COLUMNS: usize = 12;
/// Rows of the top-findings table at most.
const MAX_TOP: usize = 25;

/// The guide's practices, as rows: (label, the rule sections that make it up).
pub const PRACTICES: &[(&str, &[&str])] = &[
    ("TLS between nodes (§1.1)", &["1.1"]),
    ("NetworkPolicies (§1.4)", &["1.4"]),
    ("Exposure & authentication (§1.5–1.6)", &["1.5", "1.6"]),
    ("Namespaces & quotas (§2–3)", &["2", "3"]),
    ("RBAC (§4)", &["4"]),
    ("Pod security (§5)", &["5"]),
    ("Images & Ray versions (§6)", &["6"]),
    ("Requests & limits (§7)", &["7"]),
    ("Cloud credentials (§8)", &["8"]),
    ("One job per cluster (§9)", &["9"]),
];

/// Whether a practice applies to a kind of Ray object: §9 judges RayJobs and
/// RayCronJobs only.
fn applies(practice: usize, kind: &str) -> bool {
    PRACTICES[practice].1 != ["9"] || matches!(kind, "RayJob" | "RayCronJob")
}

fn practice_of(section: &str) -> Option<usize> {
    PRACTICES.iter().position(|(_, s)| s.contains(&section))
}

/// Text from the input, safe in a Markdown table cell.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => o.push_str("\\|"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '`' => o.push('\''),
            '*' | '_' | '[' | ']' | '\\' | '#' | '~' | '!' => {
                o.push('\\');
                o.push(c);
            }
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn same(f: &Finding, o: &ObjectRef) -> bool {
    f.object.kind == o.kind && f.object.namespace == o.namespace && f.object.name == o.name
}

/// A scorecard column: a Ray object, or (when there are many) a namespace.
struct Column {
    label: String,
    /// Failing findings per practice; `None` where the practice applies to none of it.
    cells: Vec<Option<usize>>,
}

fn columns(r: &Report) -> (Vec<Column>, bool) {
    let active: Vec<&Finding> = r.active().collect();
    // Findings per Ray object, per practice.
    let per_object: Vec<(&ObjectRef, Vec<Option<usize>>)> = r
        .ray_objects
        .iter()
        .map(|o| {
            let mut cells: Vec<Option<usize>> = (0..PRACTICES.len())
                .map(|p| applies(p, &o.kind).then_some(0))
                .collect();
            for f in active.iter().filter(|f| same(f, o)) {
                if let Some(p) = practice_of(f.section) {
                    if let Some(c) = cells[p].as_mut() {
                        *c += 1;
                    }
                }
            }
            (o, cells)
        })
        .collect();
    if per_object.len() <= MAX_COLUMNS {
        let cols = per_object
            .into_iter()
            .map(|(o, cells)| Column {
                label: format!(
                    "{} {}",
                    o.kind,
                    o.namespace
                        .as_deref()
                        .map_or(o.name.clone(), |ns| format!("{ns}/{}", o.name))
                ),
                cells,
            })
            .collect();
        return (cols, false);
    }
    let mut by_ns: BTreeMap<String, Vec<Option<usize>>> = BTreeMap::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (o, cells) in per_object {
        let ns = o
            .namespace
            .clone()
            .unwrap_or_else(|| "(no namespace)".into());
        *count.entry(ns.clone()).or_default() += 1;
        let acc = by_ns
            .entry(ns)
            .or_insert_with(|| vec![None; PRACTICES.len()]);
        for (a, c) in acc.iter_mut().zip(cells) {
            if let Some(c) = c {
                *a = Some(a.unwrap_or(0) + c);
            }
        }
    }
    let cut = by_ns.len() > MAX_COLUMNS;
    let cols = by_ns
        .into_iter()
        .take(MAX_COLUMNS)
        .map(|(ns, cells)| Column {
            label: format!("namespace {ns} ({} Ray objects)", count[&ns]),
            cells,
        })
        .collect();
    (cols, cut)
}

/// The summary, at most `max` characters.
pub fn render(r: &Report, max: usize) -> String {
    let mut out = String::new();
    let mut cuts: Vec<String> = Vec::new();
    let s = &r.summary;
    let sev = |v: Severity| s.by_severity.get(&v).copied().unwrap_or(0);
    let _ = writeln!(out, "## rayward\n");
    let source = match &s.cluster {
        Some(c) => format!("objects of cluster `{}`", esc(c)),
        None => format!("{} input(s)", s.files),
    };
    let _ = writeln!(
        out,
        "**{} finding(s)**: {} critical, {} high, {} medium, {} low, {} info; {} object(s) from {source}; {} suppressed; {} input error(s).\n",
        s.findings,
        sev(Severity::Critical),
        sev(Severity::High),
        sev(Severity::Medium),
        sev(Severity::Low),
        sev(Severity::Info),
        s.objects,
        s.suppressed,
        s.errors,
    );

    // The scorecard.
    let (cols, ns_cut) = columns(r);
    if cols.is_empty() {
        let _ = writeln!(out, "No Ray object (RayCluster, RayJob, RayService, RayCronJob) among the inputs: no scorecard.\n");
    } else {
        let _ = writeln!(out, "### The guide, practice by practice\n");
        let mut head = String::from("| practice |");
        let mut rule = String::from("|---|");
        for c in &cols {
            let _ = write!(head, " {} |", esc(&c.label));
            rule.push_str(":---:|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for (p, (label, _)) in PRACTICES.iter().enumerate() {
            let mut row = format!("| {label} |");
            for c in &cols {
                row.push_str(match c.cells[p] {
                    None => " — |",
                    Some(0) => " ✅ |",
                    Some(_) => "",
                });
                if let Some(n) = c.cells[p].filter(|n| *n > 0) {
                    let _ = write!(row, " ❌ {n} |");
                }
            }
            let _ = writeln!(out, "{row}");
        }
        let mut score = String::from("| **score** |");
        for c in &cols {
            let applicable = c.cells.iter().flatten().count();
            let passed = c.cells.iter().flatten().filter(|n| **n == 0).count();
            let _ = write!(
                score,
                " {}% |",
                (passed * 100).checked_div(applicable).unwrap_or(100)
            );
        }
        let _ = writeln!(out, "{score}\n");
        let _ = writeln!(
            out,
            "✅ no finding of that practice on the object · ❌ n findings · — does not apply (§9 judges RayJobs and RayCronJobs). Score: the share of applicable practices with no finding. Findings on other objects (Services, NetworkPolicies, RBAC, plain workloads) are in the counts and the list below, not in the columns.\n"
        );
        if ns_cut {
            cuts.push(format!(
                "scorecard columns after the first {MAX_COLUMNS} namespaces"
            ));
        }
    }

    // The most severe findings.
    let mut top: Vec<&Finding> = r.active().collect();
    top.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let shown = top.len().min(MAX_TOP);
    if !top.is_empty() {
        let _ = writeln!(out, "### Most severe findings\n");
        let _ = writeln!(
            out,
            "| severity | rule | object | where | finding |\n|---|---|---|---|---|"
        );
    }
    let mut rows = Vec::new();
    for f in &top[..shown] {
        let place = if f.line > 0 {
            format!("{}:{}", f.file, f.line)
        } else {
            f.file.to_string()
        };
        rows.push(format!(
            "| {} | {} {} | {} | {} | {} |\n",
            f.severity,
            f.rule_id,
            esc(f.rule_name),
            esc(&f.object.id()),
            esc(&place),
            esc(&f.message)
        ));
    }
    if top.len() > shown {
        cuts.push(format!(
            "{} less severe findings (the full list: `--format json` or `sarif`)",
            top.len() - shown
        ));
    }
    // Under the cap: whole rows only, the note of what was cut always fits.
    let reserve = 400;
    let mut kept = 0;
    for row in &rows {
        if out.len() + row.len() + reserve > max {
            break;
        }
        out.push_str(row);
        kept += 1;
    }
    if kept < rows.len() {
        cuts.push(format!(
            "{} table row(s) to stay under {max} characters",
            rows.len() - kept
        ));
    }
    if !cuts.is_empty() {
        let _ = writeln!(out, "\n_Not shown: {}._", cuts.join("; "));
    }
    if out.len() > max {
        // The scorecard alone is over the cap (very long names): cut at a line.
        let mut end = max.saturating_sub(80);
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        let cut_at = out[..end].rfind('\n').unwrap_or(0);
        out.truncate(cut_at);
        out.push_str("\n\n_Cut at the length cap._\n");
    }
    out
}
