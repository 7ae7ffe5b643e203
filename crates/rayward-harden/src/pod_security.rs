//! Pod Security for every workload of a namespace harden labels `restricted` (issue 15,
//! "Also fix"): with `--namespace`, the Namespace companion enforces Pod Security
//! `restricted`, so a Redis Deployment or a bare Pod beside the Ray objects is refused
//! unless it complies too.
//!
//! - [`fix_workload`]: a non-Ray workload (Pod, Deployment, StatefulSet, DaemonSet,
//!   ReplicaSet, Job, CronJob, …) gets the rules' pod-security fixes (RW501–RW503,
//!   RW506–RW508) and requests/limits (RW701), the same fixes Ray pods get. A workload that
//!   cannot comply whatever harden does ([`blockers`]: host namespaces, hostPath or other
//!   volume types restricted refuses, privileged, added capabilities, a root uid or an
//!   unconfined profile the user wrote, host ports, …) keeps its security settings: forcing
//!   them would break a pod that needs them. It still gets requests and limits.
//! - [`judge`]: every pod template of the output, Ray or not, against the published
//!   `restricted` controls; what fails is a [`Refusal`].
//! - [`relabel_namespace`]: with refusals, the namespace enforces `baseline` and warns and
//!   audits `restricted`, and says why in the annotation [`REASON_ANNOTATION`], so the
//!   pods are admitted and every violation still shows.
//!
//! The judgement here is harden's own; the tests hold the output to the testkit's
//! independent check written from the published control list.

use crate::Options;
use rayward_manifest::{Node, Object, Workload};
use rayward_rules::{registry, Change, FixContext};

/// The rules whose fixes make a pod template meet `restricted`, plus requests and limits.
const POD_SECURITY_FIXES: &[&str] = &["RW501", "RW502", "RW503", "RW506", "RW507", "RW508"];
/// Requests and limits: applied to every workload of the namespace, compliant or not.
const RESOURCES_FIX: &str = "RW701";

/// The Namespace annotation that says why it enforces `baseline` rather than `restricted`.
pub const REASON_ANNOTATION: &str = "rayward.io/pod-security-baseline";

/// A workload that does not meet Pod Security `restricted` after harden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `Kind/name`.
    pub object: String,
    pub namespace: Option<String>,
    /// One per control that fails, naming the pod template, container or volume.
    pub reasons: Vec<String>,
    /// Whether Pod Security `baseline` refuses it too (hostPath, privileged, host
    /// namespaces, …): then only a namespace of its own, labelled `privileged`, admits it,
    /// which is the user's decision.
    pub beyond_baseline: bool,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.reasons.join(", "))?;
        if self.beyond_baseline {
            write!(
                f,
                " (baseline refuses it too: give it a namespace of its own)"
            )?;
        }
        Ok(())
    }
}

/// Whether harden applies pod security to non-Ray workloads: only where it labels a
/// namespace (`--namespace`), and never for the webhook's safe fixes.
fn active(opts: &Options) -> bool {
    opts.fix.namespace.is_some() && !opts.safe_only
}

/// Applies the pod-security fixes and requests/limits to a non-Ray workload (see the
/// module documentation); nothing for other objects or without `--namespace`.
pub fn fix_workload(obj: &mut Object, opts: &Options) -> Vec<Change> {
    if !active(opts) || !obj.kind.is_plain_workload() {
        return Vec::new();
    }
    let blocked = !blockers(obj).is_empty();
    let cx = FixContext {
        options: &opts.fix,
        settings: &opts.settings,
    };
    let mut changes = Vec::new();
    for (rule, fix) in registry::fixable() {
        let id = rule.meta().id;
        let wanted = id == RESOURCES_FIX || (!blocked && POD_SECURITY_FIXES.contains(&id));
        if !wanted || crate::suppressed(obj, id) {
            continue;
        }
        changes.extend(fix.fix(obj, &cx));
    }
    changes
}

/// Every `restricted` control the pod templates of `obj` fail (all of them, fixable or
/// not), for [`judge`].
pub fn violations(obj: &Object) -> Vec<(String, Level)> {
    controls(obj, true)
}

/// The controls harden does not fix because the pod may need what they forbid.
pub fn blockers(obj: &Object) -> Vec<(String, Level)> {
    controls(obj, false)
}

/// The lowest Pod Security level that refuses a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Refused by `restricted` only.
    Restricted,
    /// Refused by `baseline` (and so by `restricted`).
    Baseline,
}

/// The refusal of `obj` after harden, if it fails `restricted` (only with `--namespace`).
pub fn judge(obj: &Object, opts: &Options) -> Option<Refusal> {
    if !active(opts) {
        return None;
    }
    let found = violations(obj);
    (!found.is_empty()).then(|| Refusal {
        object: format!("{}/{}", obj.kind_name, obj.name),
        namespace: obj.namespace.clone(),
        beyond_baseline: found.iter().any(|(_, l)| *l == Level::Baseline),
        reasons: found.into_iter().map(|(r, _)| r).collect(),
    })
}

/// Sets the Namespace companion `ns` (harden's own, labelled `restricted`) to enforce
/// `baseline`, keeping `warn` and `audit` at `restricted`, with the refusals of that
/// namespace in [`REASON_ANNOTATION`]. Nothing when none of `refusals` is in `ns`.
pub fn relabel_namespace(namespace: &mut Object, refusals: &[Refusal]) {
    let name = namespace.name.clone();
    let mine: Vec<String> = refusals
        .iter()
        .filter(|r| r.namespace.as_deref() == Some(name.as_str()))
        .map(Refusal::to_string)
        .collect();
    if mine.is_empty() {
        return;
    }
    let Some(meta) = namespace.root.map_entry("metadata") else {
        return;
    };
    if let Some(labels) = meta.map_entry("labels") {
        labels.set(
            "pod-security.kubernetes.io/enforce",
            Node::string("baseline"),
        );
    }
    if let Some(a) = meta.map_entry("annotations") {
        a.set(
            REASON_ANNOTATION,
            Node::string(format!(
                "restricted would refuse: {} (warn and audit stay restricted)",
                mine.join("; ")
            )),
        );
    }
}

/// Volume types `restricted` allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Sysctls every Pod Security level allows.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

fn is_true(n: Option<&Node>) -> bool {
    n.and_then(Node::as_bool) == Some(true)
}

/// The `restricted` controls over every pod template of `obj`; with `fixable` also the
/// ones harden's fixes answer (runAsNonRoot, allowPrivilegeEscalation, drop ALL, seccomp).
fn controls(obj: &Object, fixable: bool) -> Vec<(String, Level)> {
    let w = Workload::templates_of(obj);
    let mut out = Vec::new();
    let many = w.templates.len() > 1;
    for t in &w.templates {
        let at = if many {
            format!("{} ", t.spec_path().as_str())
        } else {
            String::new()
        };
        let annotations = t.node.path(&["metadata", "annotations"]);
        let mut found = Vec::new();
        pod(t.spec(), annotations, &at, fixable, &mut found);
        out.extend(found);
    }
    out
}

/// Capabilities `baseline` lets a container add (the container runtimes' defaults).
const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// SELinux types every level allows.
const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn apparmor_ok(profile: Option<&Node>) -> bool {
    profile
        .and_then(|p| p.get("type"))
        .and_then(Node::as_str)
        .is_none_or(|t| t == "RuntimeDefault" || t == "Localhost")
}

fn selinux(opts: Option<&Node>, who: &str, out: &mut Vec<(String, Level)>) {
    let Some(o) = opts else { return };
    let t = o.get("type").and_then(Node::as_str).unwrap_or("");
    if !t.is_empty() && !SELINUX_TYPES.contains(&t) {
        out.push((format!("{who}seLinuxOptions type {t}"), Level::Baseline));
    }
    for f in ["user", "role"] {
        if o.get(f)
            .and_then(Node::as_str)
            .is_some_and(|v| !v.is_empty())
        {
            out.push((format!("{who}seLinuxOptions {f}"), Level::Baseline));
        }
    }
}

fn pod(
    spec: &Node,
    annotations: Option<&Node>,
    at: &str,
    fixable: bool,
    out: &mut Vec<(String, Level)>,
) {
    use Level::{Baseline, Restricted};
    for (k, v) in annotations.map(Node::as_map).unwrap_or(&[]) {
        let k = k.as_str().unwrap_or("");
        if let Some(c) = k.strip_prefix("container.apparmor.security.beta.kubernetes.io/") {
            let v = v.as_str().unwrap_or("");
            if v != "runtime/default" && !v.starts_with("localhost/") {
                out.push((format!("{at}container `{c}` AppArmor {v}"), Baseline));
            }
        }
    }
    for f in ["hostNetwork", "hostPID", "hostIPC"] {
        if is_true(spec.get(f)) {
            out.push((format!("{at}{f}: true"), Baseline));
        }
    }
    for v in spec.get("volumes").map(Node::as_seq).unwrap_or(&[]) {
        let name = v.get("name").and_then(Node::as_str).unwrap_or("?");
        for (k, _) in v.as_map() {
            let k = k.as_str().unwrap_or("");
            if k != "name" && !ALLOWED_VOLUMES.contains(&k) {
                let level = if k == "hostPath" {
                    Baseline
                } else {
                    Restricted
                };
                out.push((format!("{at}volume `{name}` of type {k}"), level));
            }
        }
    }
    let psc = spec.get("securityContext");
    let pod_field = |f: &str| psc.and_then(|s| s.get(f)).filter(|n| !n.is_null());
    if pod_field("runAsUser").and_then(Node::as_i64) == Some(0) {
        out.push((format!("{at}runAsUser: 0"), Restricted));
    }
    let pod_seccomp = pod_field("seccompProfile")
        .and_then(|s| s.get("type"))
        .and_then(Node::as_str);
    if pod_seccomp == Some("Unconfined") {
        out.push((format!("{at}seccompProfile Unconfined"), Baseline));
    }
    for s in pod_field("sysctls").map(Node::as_seq).unwrap_or(&[]) {
        let n = s.get("name").and_then(Node::as_str).unwrap_or("?");
        if !SAFE_SYSCTLS.contains(&n) {
            out.push((format!("{at}sysctl {n}"), Baseline));
        }
    }
    if !apparmor_ok(pod_field("appArmorProfile")) {
        out.push((format!("{at}AppArmor profile not RuntimeDefault"), Baseline));
    }
    selinux(pod_field("seLinuxOptions"), at, out);
    let pod_non_root = is_true(pod_field("runAsNonRoot"));
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec.get(list).map(Node::as_seq).unwrap_or(&[]) {
            let name = c.get("name").and_then(Node::as_str).unwrap_or("?");
            let who = format!("{at}container `{name}`");
            let sc = c.get("securityContext");
            let field = |f: &str| sc.and_then(|s| s.get(f)).filter(|n| !n.is_null());
            if is_true(field("privileged")) {
                out.push((format!("{who} privileged"), Baseline));
            }
            let caps = field("capabilities");
            for cap in caps
                .and_then(|c| c.get("add"))
                .map(Node::as_seq)
                .unwrap_or(&[])
            {
                let n = cap.as_str().unwrap_or("?");
                let plain = n.trim().to_ascii_uppercase();
                let plain = plain.trim_start_matches("CAP_");
                if plain != "NET_BIND_SERVICE" {
                    let level = if BASELINE_CAPS.contains(&plain) {
                        Restricted
                    } else {
                        Baseline
                    };
                    out.push((format!("{who} adds capability {n}"), level));
                }
            }
            if field("runAsUser").and_then(Node::as_i64) == Some(0) {
                out.push((format!("{who} runAsUser: 0"), Restricted));
            }
            if field("seccompProfile")
                .and_then(|s| s.get("type"))
                .and_then(Node::as_str)
                == Some("Unconfined")
            {
                out.push((format!("{who} seccompProfile Unconfined"), Baseline));
            }
            if field("procMount")
                .and_then(Node::as_str)
                .is_some_and(|p| p != "Default")
            {
                out.push((format!("{who} procMount"), Baseline));
            }
            if is_true(field("windowsOptions").and_then(|w| w.get("hostProcess"))) {
                out.push((format!("{who} windows hostProcess"), Baseline));
            }
            for p in c.get("ports").map(Node::as_seq).unwrap_or(&[]) {
                if p.get("hostPort").and_then(Node::as_i64).unwrap_or(0) != 0 {
                    out.push((format!("{who} hostPort"), Baseline));
                }
            }
            if !apparmor_ok(field("appArmorProfile")) {
                out.push((
                    format!("{who} AppArmor profile not RuntimeDefault"),
                    Baseline,
                ));
            }
            selinux(field("seLinuxOptions"), &format!("{who} "), out);
            if !fixable {
                continue;
            }
            if field("allowPrivilegeEscalation").and_then(Node::as_bool) != Some(false) {
                out.push((
                    format!("{who} allowPrivilegeEscalation not false"),
                    Restricted,
                ));
            }
            let drops_all = caps
                .and_then(|c| c.get("drop"))
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .any(|d| d.as_str().is_some_and(|s| s.eq_ignore_ascii_case("ALL")));
            if !drops_all {
                out.push((format!("{who} does not drop ALL capabilities"), Restricted));
            }
            let non_root = match field("runAsNonRoot").and_then(Node::as_bool) {
                Some(b) => b,
                None => pod_non_root,
            };
            if !non_root {
                out.push((format!("{who} runAsNonRoot not true"), Restricted));
            }
            let seccomp = field("seccompProfile")
                .and_then(|s| s.get("type"))
                .and_then(Node::as_str)
                .or(pod_seccomp);
            if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
                out.push((
                    format!("{who} seccompProfile not RuntimeDefault"),
                    Restricted,
                ));
            }
        }
    }
}
