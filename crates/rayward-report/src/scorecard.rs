//! The guide as a scorecard, shared by the Markdown and HTML reports: the guide's
//! practices as rows, the run's Ray objects as columns, and in each cell pass, fail (with
//! the findings behind it) or not applicable.
//!
//! The definitions (the HTML page states them too):
//! - **Findings of a cell**: the active (not suppressed) findings of the practice's rules
//!   on the Ray object itself, or on another object that concerns it
//!   ([`Report::related`]: a Service selecting its pods, its NetworkPolicy, the RoleBinding
//!   of its ServiceAccount, …). A finding on an object shared by several Ray objects counts
//!   in each of their columns.
//! - **Not applicable**: no rule of the practice that ran judges the column's kind
//!   ([`RuleMeta::ray_kinds`]: §9 judges RayJobs and RayCronJobs only; a rule turned off
//!   by `--disable`/`--only` or the config did not run).
//! - **Pass**: applicable and no finding; **fail**: applicable and at least one.
//! - **Score**: passed practices out of applicable ones, in percent, rounded down (100
//!   when none applies).
//! - Findings on objects that concern no Ray object are kept per namespace
//!   ([`Scorecard::other`]): they count in the totals and the namespace view, never in a
//!   Ray object's score.

use crate::Report;
use rayward_manifest::Kind;
use rayward_rules::{registry, Finding, ObjectRef, RuleMeta};
use std::collections::{BTreeMap, HashMap};

/// A practice of the guide: a row of the scorecard.
pub struct Practice {
    pub label: &'static str,
    /// The rule sections (`RuleMeta::section`) that make it up.
    pub sections: &'static [&'static str],
}

/// The guide's practices, in the guide's order.
pub const PRACTICES: &[Practice] = &[
    Practice {
        label: "TLS between nodes (§1.1)",
        sections: &["1.1"],
    },
    Practice {
        label: "NetworkPolicies (§1.4)",
        sections: &["1.4"],
    },
    Practice {
        label: "Exposure & authentication (§1.5–1.6)",
        sections: &["1.5", "1.6"],
    },
    Practice {
        label: "Namespaces & quotas (§2–3)",
        sections: &["2", "3"],
    },
    Practice {
        label: "RBAC (§4)",
        sections: &["4"],
    },
    Practice {
        label: "Pod security (§5)",
        sections: &["5"],
    },
    Practice {
        label: "Images & Ray versions (§6)",
        sections: &["6"],
    },
    Practice {
        label: "Requests & limits (§7)",
        sections: &["7"],
    },
    Practice {
        label: "Cloud credentials (§8)",
        sections: &["8"],
    },
    Practice {
        label: "One job per cluster (§9)",
        sections: &["9"],
    },
];

/// The practice a rule section belongs to.
pub fn practice_of(section: &str) -> Option<usize> {
    PRACTICES.iter().position(|p| p.sections.contains(&section))
}

/// One cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    NotApplicable,
    Pass,
    /// The number of findings behind it.
    Fail(u32),
}

impl Cell {
    /// As a number: -1 not applicable, 0 pass, n findings.
    pub fn code(self) -> i64 {
        match self {
            Cell::NotApplicable => -1,
            Cell::Pass => 0,
            Cell::Fail(n) => i64::from(n),
        }
    }
}

/// The scorecard of a report.
pub struct Scorecard {
    /// One column per entry of [`Report::ray_objects`], in that order: a cell per
    /// practice.
    pub columns: Vec<Vec<Cell>>,
    /// Per column, the score in percent.
    pub scores: Vec<u32>,
    /// Active findings on objects that concern no Ray object, per practice, by namespace
    /// (`None`: cluster-scoped or no namespace).
    pub other: BTreeMap<Option<String>, Vec<u32>>,
    /// Per practice, the ids of the rules of it that ran.
    pub rules: Vec<Vec<&'static str>>,
    /// The coarser view, one column per namespace (in name order; `None` last).
    pub namespaces: Vec<NsColumn>,
}

/// A namespace as a scorecard column.
pub struct NsColumn {
    /// `None`: objects without a namespace (cluster-scoped, or none set).
    pub namespace: Option<String>,
    /// Its Ray objects (indices into `ray_objects`).
    pub members: Vec<u32>,
    /// Per practice: the distinct active findings on objects of the namespace or counted
    /// against its Ray objects; pass when none and the practice applies to one of its Ray
    /// objects; not applicable when it applies to none (and nothing was found).
    pub cells: Vec<Cell>,
    /// The mean of its Ray objects' scores, rounded down; `None` without Ray objects.
    pub score: Option<u32>,
}

/// The rules that ran: those the report names, else the whole catalog.
pub fn rules_run(r: &Report) -> Vec<&'static RuleMeta> {
    if r.rules.is_empty() {
        registry::all().into_iter().map(|x| x.meta()).collect()
    } else {
        r.rules.clone()
    }
}

/// Where findings on each object go: the scorecard columns (indices into
/// `ray_objects`) of the Ray objects they count against; empty when none.
pub struct Placement<'r> {
    ray: HashMap<&'r ObjectRef, Vec<u32>>,
    related: HashMap<&'r ObjectRef, &'r [u32]>,
}

impl<'r> Placement<'r> {
    pub fn new(r: &'r Report) -> Self {
        let mut ray: HashMap<&ObjectRef, Vec<u32>> = HashMap::new();
        for (i, o) in r.ray_objects.iter().enumerate() {
            ray.entry(o).or_default().push(i as u32);
        }
        let related = r
            .related
            .iter()
            .map(|x| (&x.object, x.ray_objects.as_slice()))
            .collect();
        Placement { ray, related }
    }

    /// The columns an object's findings count in.
    pub fn columns(&self, o: &ObjectRef) -> &[u32] {
        if Kind::of(&o.api_version, &o.kind).is_ray() {
            if let Some(c) = self.ray.get(o) {
                return c;
            }
        }
        self.related.get(o).copied().unwrap_or(&[])
    }
}

/// Builds the scorecard of a report.
pub fn build(r: &Report) -> Scorecard {
    let rules = rules_run(r);
    let per_practice: Vec<Vec<&'static RuleMeta>> = (0..PRACTICES.len())
        .map(|p| {
            rules
                .iter()
                .copied()
                .filter(|m| practice_of(m.section) == Some(p))
                .collect()
        })
        .collect();
    let applies =
        |p: usize, kind: &str| per_practice[p].iter().any(|m| m.ray_kinds.contains(&kind));
    let mut counts: Vec<Vec<u32>> = vec![vec![0; PRACTICES.len()]; r.ray_objects.len()];
    let mut other: BTreeMap<Option<String>, Vec<u32>> = BTreeMap::new();
    let place = Placement::new(r);
    // Namespaces: those of the Ray objects, then of findings' objects.
    let mut ns_index: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for o in &r.ray_objects {
        let n = ns_index.len();
        ns_index.entry(o.namespace.as_deref()).or_insert(n);
    }
    for f in r.active() {
        let n = ns_index.len();
        ns_index.entry(f.object.namespace.as_deref()).or_insert(n);
    }
    let ray_ns: Vec<usize> = r
        .ray_objects
        .iter()
        .map(|o| ns_index[&o.namespace.as_deref()])
        .collect();
    let mut ns_counts: Vec<Vec<u32>> = vec![vec![0; PRACTICES.len()]; ns_index.len()];
    // Findings of one object come together and share their `ObjectRef`: its columns are
    // looked up once per object, not once per finding.
    let mut last: Option<(*const ObjectRef, &[u32], Vec<usize>)> = None;
    for f in r.active() {
        let Some(p) = practice_of(f.section) else {
            continue;
        };
        let ptr: *const ObjectRef = &*f.object;
        if last.as_ref().is_none_or(|(q, _, _)| *q != ptr) {
            let c = place.columns(&f.object);
            let mut nss: Vec<usize> = c.iter().map(|&c| ray_ns[c as usize]).collect();
            nss.push(ns_index[&f.object.namespace.as_deref()]);
            nss.sort_unstable();
            nss.dedup();
            last = Some((ptr, c, nss));
        }
        let (_, cols, nss) = last.as_ref().expect("set above");
        if cols.is_empty() {
            other_entry(&mut other, f)[p] += 1;
        }
        for &c in *cols {
            counts[c as usize][p] += 1;
        }
        for &n in nss {
            ns_counts[n][p] += 1;
        }
    }
    let mut columns = Vec::with_capacity(counts.len());
    let mut scores = Vec::with_capacity(counts.len());
    for (o, n) in r.ray_objects.iter().zip(counts) {
        let cells: Vec<Cell> = n
            .iter()
            .enumerate()
            .map(|(p, &n)| {
                if n > 0 {
                    // A finding is a fail even where no rule of the practice "applies"
                    // by kind: what was found counts.
                    Cell::Fail(n)
                } else if applies(p, &o.kind) {
                    Cell::Pass
                } else {
                    Cell::NotApplicable
                }
            })
            .collect();
        scores.push(score(&cells));
        columns.push(cells);
    }
    let mut members_of: Vec<Vec<u32>> = vec![Vec::new(); ns_index.len()];
    for (m, &n) in ray_ns.iter().enumerate() {
        members_of[n].push(m as u32);
    }
    let mut namespaces: Vec<NsColumn> = ns_index
        .iter()
        .map(|(ns, &i)| {
            let members = std::mem::take(&mut members_of[i]);
            let cells = (0..PRACTICES.len())
                .map(|p| {
                    let n = ns_counts[i][p];
                    if n > 0 {
                        Cell::Fail(n)
                    } else if members
                        .iter()
                        .any(|&m| applies(p, &r.ray_objects[m as usize].kind))
                    {
                        Cell::Pass
                    } else {
                        Cell::NotApplicable
                    }
                })
                .collect();
            let score = (!members.is_empty()).then(|| {
                let sum: u64 = members.iter().map(|&m| u64::from(scores[m as usize])).sum();
                (sum / members.len() as u64) as u32
            });
            NsColumn {
                namespace: ns.map(str::to_string),
                members,
                cells,
                score,
            }
        })
        .collect();
    // Name order, objects without a namespace last.
    namespaces.sort_by(|a, b| {
        (a.namespace.is_none(), &a.namespace).cmp(&(b.namespace.is_none(), &b.namespace))
    });
    Scorecard {
        columns,
        scores,
        namespaces,
        other,
        rules: per_practice
            .iter()
            .map(|v| v.iter().map(|m| m.id).collect())
            .collect(),
    }
}

fn other_entry<'m>(
    other: &'m mut BTreeMap<Option<String>, Vec<u32>>,
    f: &Finding,
) -> &'m mut Vec<u32> {
    other
        .entry(f.object.namespace.clone())
        .or_insert_with(|| vec![0; PRACTICES.len()])
}

/// Passed practices out of applicable ones, in percent, rounded down; 100 when none
/// applies.
pub fn score(cells: &[Cell]) -> u32 {
    let applicable = cells.iter().filter(|c| **c != Cell::NotApplicable).count() as u32;
    let passed = cells.iter().filter(|c| **c == Cell::Pass).count() as u32;
    (passed * 100).checked_div(applicable).unwrap_or(100)
}
