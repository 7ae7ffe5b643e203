use crate::fix::{for_each_container, security_context, Changes, Fix, FixContext};
use crate::util::pod_security::{describe_container, effective_security, shown};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;
use rayward_manifest::{Node as TreeNode, Object};

declare_rule! {
    /// ## What it checks
    /// Containers whose `securityContext.allowPrivilegeEscalation` is not explicitly
    /// `false`: set to `true`, set to something that is not a boolean, or missing (the
    /// Kubernetes default is to allow it). Every container counts: Ray head and worker
    /// containers, init containers, the autoscaler (`autoscalerOptions.securityContext`),
    /// RayJob submitters and plain workloads. The field exists only on containers; a
    /// pod-level `securityContext` cannot set it.
    ///
    /// A privileged container is RW501's finding: with `allowPrivilegeEscalation: false`
    /// beside it (a combination Kubernetes rejects) this rule stays quiet, so one cause
    /// gives one finding and fixing RW501 clears it.
    ///
    /// ## Why it matters (guide §5)
    /// Without `no_new_privs` a process in the container can gain privileges through
    /// setuid binaries or file capabilities. The official Ray images
    /// (`rayproject/ray`) run as the `ray` user (uid 1000) *with passwordless `sudo`*
    /// (`ray ALL=NOPASSWD: ALL` in their Dockerfile): any Ray job, which is arbitrary
    /// code, and anyone who reached an unauthenticated Jobs API, is root in the container
    /// after one `sudo`, even with `runAsNonRoot: true`. `allowPrivilegeEscalation: false`
    /// is what makes `sudo` fail.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   image: rayproject/ray:2.52.0
    ///   securityContext:
    ///     runAsNonRoot: true
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   image: rayproject/ray:2.52.0
    ///   securityContext:
    ///     allowPrivilegeEscalation: false
    /// ```
    pub struct PrivilegeEscalationAllowed {
        id: "RW502",
        name: "privilege-escalation-allowed",
        severity: High,
        section: "5",
        summary: "Container may gain privileges (allowPrivilegeEscalation not false)",
        fix: "Set `securityContext.allowPrivilegeEscalation: false` on the container.",
        scope: Object,
        fixer: Some(&PrivilegeEscalationAllowed),
        companion: None,
    }
}

impl Rule for PrivilegeEscalationAllowed {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (t, c) in w.containers() {
            let who = || describe_container(t, &c);
            let ape = effective_security(&c, "allowPrivilegeEscalation");
            match ape {
                Some((n, _)) if n.as_bool() == Some(false) => {}
                Some((n, path)) => {
                    let what = match n.as_bool() {
                        Some(true) => "sets `allowPrivilegeEscalation: true`".to_string(),
                        _ => format!(
                            "sets `allowPrivilegeEscalation` to {}, not the boolean false",
                            shown(n)
                        ),
                    };
                    out.report(w.obj, path, n.pos, format!("{who} {what}", who = who()));
                }
                None => {
                    let (path, pos) = c.security_at("allowPrivilegeEscalation");
                    out.report(
                        w.obj,
                        path,
                        pos,
                        format!(
                            "{who} does not set `allowPrivilegeEscalation: false` \
                             (Kubernetes allows escalation by default)",
                            who = who()
                        ),
                    );
                }
            }
        }
    }
}

impl Fix for PrivilegeEscalationAllowed {
    fn safe(&self) -> bool {
        true
    }

    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        for_each_container(obj, true, |t, c| {
            let Some(sc) = security_context(c) else {
                return;
            };
            if sc
                .get("allowPrivilegeEscalation")
                .and_then(TreeNode::as_bool)
                != Some(false)
                && sc.set("allowPrivilegeEscalation", TreeNode::boolean(false))
            {
                ch.add(
                    &t.path
                        .keys(&["securityContext", "allowPrivilegeEscalation"]),
                    "set `allowPrivilegeEscalation: false`",
                );
            }
        });
        ch.list
    }
}
