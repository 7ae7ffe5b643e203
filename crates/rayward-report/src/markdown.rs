//! A short Markdown summary for a pull-request comment or `$GITHUB_STEP_SUMMARY`: the
//! counts, the guide as a scorecard (practices × Ray objects), and the most severe
//! findings with file:line, under a hard cap on length with a note of what was cut.
//!
//! Everything from the input (names, paths, messages) is escaped: Markdown table syntax,
//! inline HTML (GitHub renders it) and line breaks cannot come through.

use crate::scorecard::{self, Cell, PRACTICES};
use crate::Report;
use rayward_rules::{Finding, Severity};
use std::fmt::Write;

/// GitHub refuses comments over 65,536 characters; this leaves room for a wrapper.
pub const MAX_CHARS: usize = 60_000;

/// Scorecard columns before objects are grouped by namespace, and namespaces cut.
const MAX_COLUMNS: usize = 12;
/// Rows of the top-findings table at most.
const MAX_TOP: usize = 25;

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

/// A scorecard column: a Ray object, or (when there are many) a namespace.
struct Column {
    label: String,
    cells: Vec<Cell>,
    score: Option<u32>,
}

/// The columns, whether namespaces were cut, and the findings on objects that concern no
/// Ray object.
fn columns(r: &Report) -> (Vec<Column>, bool, u32) {
    let card = scorecard::build(r);
    let other = card.other.values().flatten().sum();
    if r.ray_objects.len() <= MAX_COLUMNS {
        let cols = r
            .ray_objects
            .iter()
            .zip(card.columns)
            .zip(card.scores)
            .map(|((o, cells), score)| Column {
                label: format!(
                    "{} {}",
                    o.kind,
                    o.namespace
                        .as_deref()
                        .map_or(o.name.clone(), |ns| format!("{ns}/{}", o.name))
                ),
                cells,
                score: Some(score),
            })
            .collect();
        return (cols, false, other);
    }
    // Namespaces with Ray objects; those with only other objects are in the counts.
    let with_ray: Vec<_> = card
        .namespaces
        .into_iter()
        .filter(|n| !n.members.is_empty())
        .collect();
    let cut = with_ray.len() > MAX_COLUMNS;
    let cols = with_ray
        .into_iter()
        .take(MAX_COLUMNS)
        .map(|n| Column {
            label: format!(
                "namespace {} ({} Ray objects)",
                n.namespace.as_deref().unwrap_or("(no namespace)"),
                n.members.len()
            ),
            cells: n.cells,
            score: n.score,
        })
        .collect();
    (cols, cut, other)
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
    let (cols, ns_cut, other) = columns(r);
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
        for (p, practice) in PRACTICES.iter().enumerate() {
            let mut row = format!("| {} |", practice.label);
            for c in &cols {
                match c.cells[p] {
                    Cell::NotApplicable => row.push_str(" — |"),
                    Cell::Pass => row.push_str(" ✅ |"),
                    Cell::Fail(n) => {
                        let _ = write!(row, " ❌ {n} |");
                    }
                }
            }
            let _ = writeln!(out, "{row}");
        }
        let mut score = String::from("| **score** |");
        for c in &cols {
            match c.score {
                Some(s) => {
                    let _ = write!(score, " {s}% |");
                }
                None => score.push_str(" — |"),
            }
        }
        let _ = writeln!(out, "{score}\n");
        let _ = writeln!(
            out,
            "✅ no finding of that practice · ❌ n findings · — does not apply (no rule of the practice that ran judges that kind: §9 judges RayJobs and RayCronJobs). A finding on another object counts against the Ray objects it concerns (a Service or NetworkPolicy selecting their pods, their ServiceAccount's RBAC, their namespace's quota). Score: the share of applicable practices with no finding (a namespace: the mean of its Ray objects' scores).\n"
        );
        if other > 0 {
            let _ = writeln!(
                out,
                "{other} finding(s) on objects that concern no Ray object (a policy selecting no Ray pod, a plain workload) are in the counts and the list below.\n"
            );
        }
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
