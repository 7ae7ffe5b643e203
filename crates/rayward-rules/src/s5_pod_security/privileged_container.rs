use crate::fix::{for_each_container, security_context, Changes, Fix, FixContext};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;
use rayward_manifest::{Node as TreeNode, Object};

declare_rule! {
    /// ## What it checks
    /// Containers with `securityContext.privileged: true`, in any pod template: Ray head
    /// and worker groups, the autoscaler, RayJob submitters, init containers and plain
    /// workloads.
    ///
    /// ## Why it matters (guide §5)
    /// A privileged container has every capability and sees the node's devices: code that
    /// reaches Ray (and any Ray job is arbitrary code) owns the node. GPU access does not
    /// need it; the device plugin grants GPUs to unprivileged containers.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   securityContext:
    ///     privileged: true
    /// ```
    ///
    /// ## Fix
    /// Remove `privileged: true`; grant the narrow capability or device actually needed.
    pub struct PrivilegedContainer {
        id: "RW501",
        name: "privileged-container",
        severity: Critical,
        section: "5",
        summary: "Container runs privileged",
        fix: "Remove `securityContext.privileged: true`; grant only the capability or device the workload needs.",
        scope: Object,
        fixer: Some(&PrivilegedContainer),
        companion: None,
    }
}

impl Rule for PrivilegedContainer {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (_, c) in w.containers() {
            if let Some((n, path)) = c.security("privileged") {
                if n.as_bool() == Some(true) {
                    out.report(
                        w.obj,
                        path,
                        n.pos,
                        format!("container `{}` runs privileged", c.name()),
                    );
                }
            }
        }
    }
}

impl Fix for PrivilegedContainer {
    fn safe(&self) -> bool {
        true
    }

    /// Every container gets `privileged: false`: explicit, and what Pod Security
    /// `restricted` expects.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        for_each_container(obj, true, |t, c| {
            let Some(sc) = security_context(c) else {
                return;
            };
            if sc.get("privileged").and_then(TreeNode::as_bool) != Some(false)
                && sc.set("privileged", TreeNode::boolean(false))
            {
                ch.add(
                    &t.path.keys(&["securityContext", "privileged"]),
                    "set `privileged: false`",
                );
            }
        });
        ch.list
    }
}
