//! What a rule is called and how it is documented: its id, name, severity, section,
//! scope and fix hint. Findings carry it, rules declare it; it depends on nothing else of
//! the crate, so both can use it without depending on each other.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is. Ordered, so `--fail-on medium` means "medium or worse".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's identity and documentation, built by [`declare_rule!`](crate::declare_rule)
/// from the rule struct's doc comment.
#[derive(Debug)]
pub struct RuleMeta {
    /// `RW` + number; the hundreds follow the guide's sections (RW5xx: §5 pod security).
    pub id: &'static str,
    /// kebab-case name, usable wherever an id is.
    pub name: &'static str,
    pub severity: Severity,
    /// The guide's section, e.g. `5` or `1.4`.
    pub section: &'static str,
    /// One line: what the rule reports.
    pub summary: &'static str,
    /// The default fix hint attached to findings.
    pub fix: &'static str,
    /// The doc comment, raw (each line starts with the space rustdoc leaves).
    pub raw_doc: &'static str,
    /// What the rule judges (decides what runs where: the webhook sees one object).
    pub scope: Scope,
    /// The object harden writes beside the input that answers the rule, if one does.
    pub companion: Option<&'static str>,
    /// The Ray kinds whose clusters the rule can judge (`RayCluster`, `RayJob`,
    /// `RayService`, `RayCronJob`): every one unless the declaration narrows it. A
    /// scorecard calls a practice "not applicable" to a Ray object when no rule of the
    /// practice that ran judges its kind.
    pub ray_kinds: &'static [&'static str],
}

/// Every Ray kind: the default of [`RuleMeta::ray_kinds`].
pub const ALL_RAY_KINDS: &[&str] = &["RayCluster", "RayJob", "RayService", "RayCronJob"];

/// What a rule's findings rest on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The object alone (a pod template, a Ray cluster's settings).
    Object,
    /// The run's inventory, but a single object can still be judged (a Service against
    /// the pods it would select, which the webhook assumes).
    WholeRun,
    /// Other objects of the run decide (NetworkPolicies, quotas, ServiceAccounts, RBAC):
    /// run on one object it would report the absence of objects that do exist, so the
    /// admission webhook leaves these to `rayward audit`.
    JudgesOthers,
}

impl RuleMeta {
    /// The documentation as Markdown.
    pub fn doc(&self) -> String {
        self.raw_doc
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    }

    /// Whether `token` (an id or a name, any case) names this rule.
    pub fn is(&self, token: &str) -> bool {
        self.id.eq_ignore_ascii_case(token) || self.name.eq_ignore_ascii_case(token)
    }
}
