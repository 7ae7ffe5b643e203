use crate::fix::{for_each_container, for_each_pod_spec, Changes, Fix, FixContext};
use crate::util::pod_security::{describe_container, effective_security};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Node as TreeNode, Object};
use rayward_manifest::{Node, Workload};

declare_rule! {
    /// ## What it checks
    /// Containers whose effective `seccompProfile.type` (the container's
    /// `securityContext.seccompProfile`, else the pod's) is not `RuntimeDefault` or
    /// `Localhost`: missing, or `Unconfined`. A pod-level `seccompProfile` covers every
    /// container of the pod, the autoscaler in the head pod included. Checked for Ray head
    /// and worker containers, init containers, the autoscaler
    /// (`autoscalerOptions.securityContext`), RayJob submitters and plain workloads.
    /// The deprecated `seccomp.security.alpha.kubernetes.io/*` annotations are not read.
    ///
    /// ## Why it matters (guide §5)
    /// Without a profile the container runs `Unconfined` (unless every node's kubelet runs
    /// with `--seccomp-default`, which a manifest cannot tell): every system call of the
    /// node's kernel is open to Ray jobs, including the rarely used ones behind most kernel
    /// container escapes (`unshare`, `keyctl`, `bpf`, `userfaultfd`, ...). The guide asks to
    /// restrict dangerous system calls; `RuntimeDefault` blocks them, and Ray runs under
    /// it unchanged.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   securityContext:
    ///     seccompProfile:
    ///       type: Unconfined
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// spec:
    ///   securityContext:
    ///     seccompProfile:
    ///       type: RuntimeDefault
    /// ```
    pub struct SeccompNotSet {
        id: "RW508",
        name: "seccomp-not-set",
        severity: Medium,
        section: "5",
        summary: "Container runs without a seccomp profile (missing or Unconfined)",
        fix: "Set `securityContext.seccompProfile.type: RuntimeDefault` in the pod (or container).",
        scope: Object,
        fixer: Some(&SeccompNotSet),
        companion: None,
    }
}

impl Rule for SeccompNotSet {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (t, c) in w.containers() {
            let who = || describe_container(t, &c);
            let Some((profile, path)) = effective_security(&c, "seccompProfile") else {
                let (path, pos) = c.security_at("seccompProfile");
                out.report(
                    w.obj,
                    path.key("type"),
                    pos,
                    format!("{who} has no seccomp profile (neither it nor its pod sets `seccompProfile`)", who = who()),
                );
                continue;
            };
            let ty = profile.get("type");
            match ty.and_then(Node::as_str) {
                Some("RuntimeDefault" | "Localhost") => {}
                Some(other) => out.report(
                    w.obj,
                    path.key("type"),
                    ty.map_or(profile.pos, |n| n.pos),
                    format!("{who} runs with seccomp profile `{other}`", who = who()),
                ),
                None => out.report(
                    w.obj,
                    path.key("type"),
                    profile.pos,
                    format!("{who} sets `seccompProfile` without a `type`", who = who()),
                ),
            }
        }
    }
}

impl Fix for SeccompNotSet {
    fn safe(&self) -> bool {
        true
    }

    /// The pod gets `seccompProfile.type: RuntimeDefault` unless it has a usable one;
    /// a container's own `Unconfined` (or typeless) profile becomes RuntimeDefault.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let usable = |p: &TreeNode| {
            matches!(
                p.get("type").and_then(TreeNode::as_str),
                Some("RuntimeDefault" | "Localhost")
            )
        };
        let repair = |sc: &mut TreeNode, at: rayward_manifest::JsonPath, ch: &mut Changes| {
            let Some(p) = sc.map_entry("seccompProfile") else {
                return;
            };
            if usable(p) {
                return;
            }
            p.remove("localhostProfile");
            p.set("type", TreeNode::string("RuntimeDefault"));
            ch.add(
                &at.keys(&["seccompProfile", "type"]),
                "use seccomp profile RuntimeDefault",
            );
        };
        for_each_pod_spec(obj, |t, spec| {
            if let Some(sc) = spec.map_entry("securityContext") {
                repair(sc, t.spec_path.key("securityContext"), &mut ch);
            }
        });
        for_each_container(obj, false, |t, c| {
            let Some(sc) = c.get_mut("securityContext").filter(|n| n.is_map()) else {
                return;
            };
            if sc.get("seccompProfile").is_some_and(|p| !p.is_null()) {
                repair(sc, t.path.key("securityContext"), &mut ch);
            }
        });
        ch.list
    }
}
