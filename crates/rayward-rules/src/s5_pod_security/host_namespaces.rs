use crate::fix::{for_each_pod_spec, Changes, Fix, FixContext};
use crate::util::pod_security::describe_pod;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;
use rayward_manifest::{Node as TreeNode, Object};

/// The pod fields that share a node namespace, and what sharing it gives away.
const FIELDS: &[(&str, &str)] = &[
    (
        "hostNetwork",
        "the node's network namespace: its ports (Ray's included) open on the node's IP, out of reach of NetworkPolicies",
    ),
    (
        "hostPID",
        "the node's process namespace: every process of the node is visible and, with the right capability, traceable",
    ),
    (
        "hostIPC",
        "the node's IPC namespace: shared memory of every process on the node is reachable",
    ),
];

declare_rule! {
    /// ## What it checks
    /// Pod templates with `hostNetwork: true`, `hostPID: true` or `hostIPC: true`: Ray
    /// head and worker groups, RayJob submitters and plain workloads. Each field is
    /// reported once per pod template, at the field.
    ///
    /// ## Why it matters (guide §5)
    /// - `hostNetwork`: the pod's Ray ports (GCS 6379, dashboard and Jobs API 8265,
    ///   Ray Client 10001, dashboard agent 52365) listen on the node's own address,
    ///   outside the reach of NetworkPolicies (most network plugins do not enforce them
    ///   for host-network pods), and services bound only to the node's loopback interface
    ///   become reachable from Ray jobs.
    /// - `hostPID`: a Ray job sees every process of the node, their command lines and
    ///   environment (secrets of other pods), and can signal or trace them.
    /// - `hostIPC`: shared memory segments of other workloads on the node are readable.
    ///
    /// Ray itself needs none of them (its object store uses the pod's own `/dev/shm`). Some
    /// high-speed GPU interconnect setups ask for `hostNetwork`; prefer a device plugin or a
    /// multi-NIC CNI, and otherwise suppress the rule for that object with a reason
    /// (`rayward.io/ignore: "RW504 # GPUDirect needs the host network"`).
    ///
    /// ## Example
    /// ```yaml
    /// headGroupSpec:
    ///   template:
    ///     spec:
    ///       hostNetwork: true
    ///       containers:
    ///       - name: ray-head
    /// ```
    ///
    /// ## Fix
    /// Remove `hostNetwork`, `hostPID` and `hostIPC` (they default to `false`).
    pub struct HostNamespaces {
        id: "RW504",
        name: "host-namespaces",
        severity: Critical,
        section: "5",
        summary: "Pod shares the node's network, PID or IPC namespace",
        fix: "Remove `hostNetwork`, `hostPID` and `hostIPC` from the pod spec (default false).",
        scope: Object,
        fixer: Some(&HostNamespaces),
        companion: None,
    }
}

impl Rule for HostNamespaces {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for t in &w.templates {
            for (field, gives) in FIELDS {
                let Some(n) = t.field(field) else { continue };
                if n.as_bool() != Some(true) {
                    continue;
                }
                out.report_fix(
                    w.obj,
                    t.spec_path().key(field),
                    n.pos,
                    format!("{} sets `{field}: true`, sharing {gives}", describe_pod(t)),
                    format!("Remove `{field}: true` from the pod spec."),
                );
            }
        }
    }
}

impl Fix for HostNamespaces {
    fn safe(&self) -> bool {
        false
    }

    /// `hostNetwork`, `hostPID` and `hostIPC` set to true become false. Not a safe fix: a
    /// pod may rely on them, so the webhook leaves it to the user.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        for_each_pod_spec(obj, |t, spec| {
            for (field, _) in FIELDS {
                if spec.get(field).and_then(TreeNode::as_bool) == Some(true) {
                    spec.set(field, TreeNode::boolean(false));
                    ch.add(&t.spec_path.key(field), format!("set `{field}: false`"));
                }
            }
        });
        ch.list
    }
}
