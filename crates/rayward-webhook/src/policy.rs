//! From one admitted object to a verdict: load it with the audit loader, run the audit
//! engine, then allow, warn or deny according to the mode.
//!
//! A review carries one object, not the set `rayward audit` sees, so two adjustments:
//! - the whole-set rules that judge *other* objects (NetworkPolicies, quotas,
//!   ServiceAccounts, RBAC: [`whole_set_rules`]) are left to `rayward audit`; run on one
//!   object they would report every RayCluster for the absence of objects that do exist;
//! - a Service is checked against an assumed KubeRay cluster in its namespace
//!   ([`assumed_cluster`]), since the Ray pods it would select are not in the review: a
//!   `LoadBalancer` Service whose selector matches KubeRay's labels
//!   (`ray.io/node-type: head`, …) and publishes a Ray port is then caught by RW112.

use crate::review::{Request, Response, Status};
use rayward_manifest::terminal::{escape, escape_keep_lines};
use rayward_manifest::{load_bytes, Kind, Limits, Object};
use rayward_rules::engine::Selection;
use rayward_rules::settings::Settings;
use rayward_rules::{Engine, Finding, Severity};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Whole-set rules that decide on objects other than the reviewed one (left to audit):
/// the rules that declare `scope: JudgesOthers`.
pub fn whole_set_rules() -> Vec<&'static str> {
    rayward_rules::registry::judging_others()
}

/// The name findings on the reviewed object carry as their file.
const OBJECT_FILE: &str = "object";
/// The file name of the assumed cluster, whose own findings are dropped.
const ASSUMED_FILE: &str = "assumed KubeRay cluster";

/// What the webhook does with findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Deny when a finding is at or above the policy's severity; lower ones are warnings.
    Enforce,
    /// Allow, and return every finding as an admission warning (kubectl prints them).
    Warn,
    /// Allow silently; only log and count.
    DryRun,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Enforce, Mode::Warn, Mode::DryRun];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
            Mode::DryRun => "dry-run",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// The outcome of one review, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allowed,
    /// Allowed with warnings.
    Warned,
    Denied,
    /// Dry-run: enforce would have denied it.
    WouldDeny,
    /// Not checked: own namespace, or an operation without an object (DELETE, CONNECT).
    Skipped,
    /// The object could not be read.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Warned => "warned",
            Verdict::Denied => "denied",
            Verdict::WouldDeny => "would-deny",
            Verdict::Skipped => "skipped",
            Verdict::Error => "error",
        }
    }
}

/// A review's answer and what led to it.
#[derive(Debug)]
pub struct Decision {
    pub verdict: Verdict,
    /// Findings on the object that no annotation suppressed.
    pub findings: Vec<Finding>,
    pub response: Response,
    /// Loading the object (the audit loader).
    pub parse_time: Duration,
    /// Running the rules.
    pub rules_time: Duration,
}

/// The configured checks: the audit engine, the default mode and the deny threshold.
pub struct Policy {
    engine: Engine,
    pub mode: Mode,
    pub deny_at: Severity,
    /// The webhook's own namespace, never checked (the webhook must be able to restart).
    pub own_namespace: Option<String>,
    pub limits: Limits,
}

impl Policy {
    /// A policy over the audit catalog as the config selects it, minus [`whole_set_rules`].
    pub fn new(
        settings: Settings,
        selection: &Selection,
        mode: Mode,
        deny_at: Severity,
        own_namespace: Option<String>,
    ) -> Result<Policy, rayward_rules::engine::UnknownRule> {
        let mut sel = selection.clone();
        sel.disable
            .extend(whole_set_rules().into_iter().map(str::to_string));
        Ok(Policy {
            engine: Engine::new(settings, &sel)?,
            mode,
            deny_at,
            own_namespace,
            limits: Limits::default(),
        })
    }

    /// The audit engine as configured for admission (for the benchmark, which times
    /// loading and rules apart).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Findings on one object given as JSON (or YAML) bytes, unsuppressed ones only.
    /// `namespace` is the review's, used when the object does not name one.
    pub fn check(
        &self,
        raw: &[u8],
        namespace: Option<&str>,
    ) -> Result<(Object, Vec<Finding>, Duration, Duration), String> {
        let t0 = Instant::now();
        let loaded = load_bytes(OBJECT_FILE, raw, &self.limits);
        if let Some(e) = loaded.error {
            return Err(e.to_string());
        }
        let mut objects = loaded.objects;
        if objects.len() != 1 {
            return Err(format!(
                "expected one Kubernetes object (apiVersion, kind), found {}",
                objects.len()
            ));
        }
        if objects[0].namespace.is_none() && objects[0].kind.is_namespaced() {
            objects[0].namespace = namespace.map(str::to_string);
        }
        if objects[0].kind == Kind::Service {
            if let Some(c) = assumed_cluster(objects[0].namespace.as_deref()) {
                objects.push(c);
            }
        }
        let parse_time = t0.elapsed();
        let t1 = Instant::now();
        let mut findings = self.engine.run(&objects);
        findings.retain(|f| &*f.file == OBJECT_FILE && f.suppressed.is_none());
        let rules_time = t1.elapsed();
        Ok((objects.swap_remove(0), findings, parse_time, rules_time))
    }

    /// Answers one admission request in `mode`.
    pub fn review(&self, req: &Request, mode: Mode) -> Decision {
        let mut decision = Decision {
            verdict: Verdict::Allowed,
            findings: Vec::new(),
            response: Response {
                uid: req.uid.clone(),
                allowed: true,
                ..Response::default()
            },
            parse_time: Duration::ZERO,
            rules_time: Duration::ZERO,
        };
        let own = self.own_namespace.is_some() && req.namespace == self.own_namespace;
        let Some(object) = req.object.as_ref().filter(|_| !own) else {
            decision.verdict = Verdict::Skipped;
            return decision;
        };
        let what = format!(
            "{} {}",
            req.kind.kind,
            match (&req.namespace, &req.name) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                (None, Some(n)) => n.clone(),
                (Some(ns), None) => format!("{ns}/(generated name)"),
                (None, None) => "(generated name)".into(),
            }
        );
        match self.check(object.get().as_bytes(), req.namespace.as_deref()) {
            Err(e) => {
                decision.verdict = Verdict::Error;
                let msg = format!("rayward: cannot read {what}: {e}");
                match mode {
                    Mode::Enforce => {
                        decision.response.allowed = false;
                        decision.response.status = Some(Status {
                            code: 400,
                            message: escape_keep_lines(&msg).into_owned(),
                        });
                    }
                    Mode::Warn => decision
                        .response
                        .warnings
                        .push(escape(&one_line(&msg)).into_owned()),
                    Mode::DryRun => {}
                }
            }
            Ok((_, findings, parse_time, rules_time)) => {
                decision.parse_time = parse_time;
                decision.rules_time = rules_time;
                let (deny, below): (Vec<&Finding>, Vec<&Finding>) =
                    findings.iter().partition(|f| f.severity >= self.deny_at);
                match mode {
                    Mode::Enforce if !deny.is_empty() => {
                        decision.verdict = Verdict::Denied;
                        decision.response.allowed = false;
                        decision.response.status = Some(Status {
                            code: 403,
                            // kubectl prints this in the user's terminal: names and values
                            // in it come from the object, so control characters are escaped.
                            message: escape_keep_lines(&deny_message(
                                &what,
                                self.deny_at,
                                &deny,
                                below.len(),
                            ))
                            .into_owned(),
                        });
                    }
                    Mode::Enforce | Mode::Warn => {
                        // Enforce warns about what it lets through; warn about everything.
                        let list: Vec<&Finding> = if mode == Mode::Warn {
                            findings.iter().collect()
                        } else {
                            below
                        };
                        decision.response.warnings = warnings(&list)
                            .iter()
                            .map(|w| escape(w).into_owned())
                            .collect();
                        if !list.is_empty() {
                            decision.verdict = Verdict::Warned;
                        }
                    }
                    Mode::DryRun if !deny.is_empty() => decision.verdict = Verdict::WouldDeny,
                    Mode::DryRun => {}
                }
                decision.findings = findings;
            }
        }
        decision
    }
}

/// Most findings listed in one message or warning list; the rest are counted.
const MAX_LISTED: usize = 20;
/// Longest warning: the API server truncates longer ones itself, less readably.
const MAX_WARNING: usize = 256;

/// The rule ids of `findings`, each once, in the order they first appear (findings come
/// grouped by object part, so one rule recurs non-adjacently: `dedup` alone repeats ids).
pub(crate) fn unique_ids<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = Vec::new();
    for f in findings {
        if !ids.contains(&f.rule_id) {
            ids.push(f.rule_id);
        }
    }
    ids
}

/// A denial `kubectl` shows readably: one finding per line, path and fix indented.
fn deny_message(what: &str, at: Severity, deny: &[&Finding], below: usize) -> String {
    let ids = unique_ids(deny.iter().copied());
    let mut m = format!(
        "rayward: {what} breaks {} at or above {at}: {}\n",
        plural(deny.len(), "finding"),
        ids.join(", ")
    );
    for f in deny.iter().take(MAX_LISTED) {
        let _ = write!(
            m,
            "- {} {} ({}) at {}: {}\n    fix: {}\n",
            f.rule_id,
            f.rule_name,
            f.severity,
            if f.path.is_empty() {
                "(object)"
            } else {
                &f.path
            },
            one_line(&f.message),
            one_line(&f.fix)
        );
    }
    if deny.len() > MAX_LISTED {
        let _ = writeln!(m, "- … and {} more", deny.len() - MAX_LISTED);
    }
    if below > 0 {
        let _ = writeln!(m, "({} below {at} not listed)", plural(below, "finding"));
    }
    m.push_str(
        "`rayward explain <id>` documents each rule; the annotation \
         rayward.io/ignore: \"<id> # reason\" accepts one on purpose.",
    );
    m
}

/// One admission warning per finding, one line each (kubectl prints `Warning: …`).
fn warnings(findings: &[&Finding]) -> Vec<String> {
    let mut out: Vec<String> = findings
        .iter()
        .take(MAX_LISTED)
        .map(|f| {
            let w = format!(
                "rayward {} {} ({}) at {}: {}",
                f.rule_id,
                f.rule_name,
                f.severity,
                if f.path.is_empty() {
                    "(object)"
                } else {
                    &f.path
                },
                one_line(&f.message)
            );
            truncate(w, MAX_WARNING)
        })
        .collect();
    if findings.len() > MAX_LISTED {
        out.push(format!(
            "rayward: {} more findings (run `rayward audit` on the manifest)",
            findings.len() - MAX_LISTED
        ));
    }
    out
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Collapses whitespace runs (newlines included) to single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        // ASCII dots: HTTP header values travel best as ASCII.
        let mut cut = max - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A KubeRay cluster with the operator's default head ports, assumed to exist in the
/// namespace of a reviewed Service. As a RayJob its `ray.io/cluster` label matches any
/// cluster name; it has a head and a worker group, so selectors on `ray.io/node-type`,
/// `ray.io/cluster`, `ray.io/is-ray-node` or `app.kubernetes.io/created-by` match it,
/// while selectors on the user's own labels (`app: grafana`) do not.
pub fn assumed_cluster(namespace: Option<&str>) -> Option<Object> {
    static ASSUMED: OnceLock<Option<Object>> = OnceLock::new();
    let mut obj = ASSUMED
        .get_or_init(|| {
            let mut loaded = load_bytes(ASSUMED_FILE, ASSUMED_YAML.as_bytes(), &Limits::default());
            (loaded.error.is_none() && loaded.objects.len() == 1).then(|| loaded.objects.remove(0))
        })
        .clone()?;
    // The namespace is set on the loaded object, never spliced into the YAML.
    obj.namespace = namespace.map(str::to_string);
    Some(obj)
}

const ASSUMED_YAML: &str = r#"apiVersion: ray.io/v1
kind: RayJob
metadata:
  name: assumed
spec:
  rayClusterSpec:
    headGroupSpec:
      template:
        spec:
          containers:
          - name: ray-head
            ports:
            - {containerPort: 6379, name: gcs-server}
            - {containerPort: 8265, name: dashboard}
            - {containerPort: 10001, name: client}
            - {containerPort: 52365, name: dashboard-agent}
            - {containerPort: 8080, name: metrics}
            - {containerPort: 8000, name: serve}
    workerGroupSpecs:
    - groupName: workers
      template:
        spec:
          containers:
          - name: ray-worker
"#;

/// Shared, for the server's handlers.
pub type SharedPolicy = Arc<Policy>;
