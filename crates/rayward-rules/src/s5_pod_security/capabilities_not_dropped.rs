use crate::fix::{for_each_container, security_context, Changes, Fix, FixContext};
use crate::util::pod_security::{describe_container, normalize_cap};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Node as TreeNode, Object};
use rayward_manifest::{Node, Workload};

declare_rule! {
    /// ## What it checks
    /// Containers whose `securityContext.capabilities.drop` does not contain `ALL`
    /// (any case, with or without `CAP_`): Ray head and worker containers, init containers,
    /// the autoscaler (`autoscalerOptions.securityContext`), RayJob submitters and plain
    /// workloads. Capabilities exist only at container level; a pod-level
    /// `securityContext` cannot drop them. Reported at `drop` when it is set, else at the
    /// nearest of `capabilities`, `securityContext` or the container.
    ///
    /// ## Why it matters (guide §5)
    /// Without `drop: [ALL]` the container keeps the runtime's default set: `CHOWN`,
    /// `DAC_OVERRIDE`, `FOWNER`, `SETUID`, `SETGID`, `NET_RAW` (spoofing on the pod
    /// network), `MKNOD` and more. Any process that becomes root in the container (and Ray
    /// images hand out root through passwordless `sudo` unless RW502 is fixed) gets all of
    /// them. Ray needs none: head and worker processes bind unprivileged ports. Pod
    /// Security "restricted" requires `drop: [ALL]`.
    ///
    /// ## Example
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   securityContext:
    ///     capabilities:
    ///       drop: ["NET_RAW"]
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// containers:
    /// - name: ray-worker
    ///   securityContext:
    ///     capabilities:
    ///       drop: ["ALL"]
    /// ```
    /// Add back only what is needed, e.g. `add: ["NET_BIND_SERVICE"]` for a port below 1024.
    pub struct CapabilitiesNotDropped {
        id: "RW507",
        name: "capabilities-not-dropped",
        severity: Medium,
        section: "5",
        summary: "Container does not drop ALL capabilities",
        fix: "Set `securityContext.capabilities.drop: [\"ALL\"]` on the container.",
        scope: Object,
        fixer: Some(&CapabilitiesNotDropped),
        companion: None,
    }
}

impl Rule for CapabilitiesNotDropped {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (t, c) in w.containers() {
            let sc = c.get("securityContext").filter(|n| n.is_map());
            let caps = sc
                .and_then(|s| s.get("capabilities"))
                .filter(|n| n.is_map());
            let drop = caps.and_then(|s| s.get("drop")).filter(|n| !n.is_null());
            let path = c.path.keys(&["securityContext", "capabilities", "drop"]);
            let who = || describe_container(t, &c);
            match drop {
                Some(d) => {
                    let names: Vec<&str> = d.as_seq().iter().filter_map(Node::as_str).collect();
                    if names.iter().any(|n| normalize_cap(n) == "ALL") {
                        continue;
                    }
                    let what = if names.is_empty() {
                        "drops no capabilities".to_string()
                    } else {
                        format!("drops {} but not ALL", names.join(", "))
                    };
                    out.report(w.obj, path, d.pos, format!("{who} {what}", who = who()));
                }
                None => {
                    let pos = caps.or(sc).map_or(c.pos, |n| n.pos);
                    out.report(
                        w.obj,
                        path,
                        pos,
                        format!(
                            "{who} keeps the runtime's default capabilities (no `drop: [ALL]`)",
                            who = who()
                        ),
                    );
                }
            }
        }
    }
}

impl Fix for CapabilitiesNotDropped {
    fn safe(&self) -> bool {
        true
    }

    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        for_each_container(obj, true, |t, c| {
            let Some(caps) = security_context(c).and_then(|s| s.map_entry("capabilities")) else {
                return;
            };
            let at = t.path.keys(&["securityContext", "capabilities", "drop"]);
            let has_all = caps.get("drop").is_some_and(|d| {
                d.as_seq()
                    .iter()
                    .filter_map(TreeNode::as_str)
                    .any(|n| normalize_cap(n) == "ALL")
            });
            if has_all {
                return;
            }
            match caps.get_mut("drop").filter(|d| d.is_seq()) {
                Some(d) => d.push(TreeNode::string("ALL")),
                None => {
                    caps.set("drop", TreeNode::new_seq(vec![TreeNode::string("ALL")]));
                }
            }
            ch.add(&at, "drop ALL capabilities");
        });
        ch.list
    }
}
