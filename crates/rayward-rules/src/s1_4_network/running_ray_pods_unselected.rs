use crate::util::network::is_ingress_policy;
use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::inventory::policy_selector;
use rayward_manifest::ray::{CLUSTER_LABEL, NODE_TYPE_LABEL};
use rayward_manifest::{Inventory, JsonPath, Kind, LabelValue, Labels, Object, Selector};
use std::borrow::Cow;

declare_rule! {
    /// ## What it checks
    /// Running Ray pods (Pods labelled `ray.io/node-type`, as KubeRay labels the head and
    /// worker pods it creates) that no ingress NetworkPolicy of their namespace selects,
    /// judged by the labels the pods really carry. Pods that have finished (`Succeeded`,
    /// `Failed`) are left out: they listen on nothing. The rule judges Pod objects, so it
    /// speaks in `rayward audit --cluster` (or on a `kubectl get pods -o yaml` dump).
    ///
    /// RW140 judges the pods a Ray object *will* create, from the labels KubeRay is
    /// expected to add. This rule judges the pods that exist: a policy written against a
    /// label the operator version in use does not set, a pod created by hand, or a pod
    /// relabelled after the fact shows up here and not there.
    ///
    /// ## Why it matters (guide §1.4)
    /// A pod no NetworkPolicy selects accepts connections from every pod of the Kubernetes
    /// cluster. On a Ray pod those are the Jobs API (8265), the dashboard agent (52365),
    /// the GCS (6379) and the Ray Client (10001): code execution for whoever connects.
    ///
    /// ## Example
    /// ```yaml
    /// apiVersion: v1
    /// kind: Pod
    /// metadata:
    ///   name: team-a-head-x7k2p
    ///   namespace: ml
    ///   labels: {ray.io/cluster: team-a, ray.io/node-type: head}
    /// # ...while the namespace's only policy selects {app: team-a}
    /// ```
    ///
    /// ## Fix
    /// Select Ray pods by the labels KubeRay sets on every one of them
    /// (`ray.io/cluster: <name>`, plus `ray.io/node-type` to tell head from workers), as
    /// the policies `rayward harden` generates do, then check again live.
    pub struct RunningRayPodsUnselected {
        id: "RW143",
        name: "running-ray-pods-unselected",
        severity: High,
        section: "1.4",
        summary: "Running Ray pods that no ingress NetworkPolicy selects",
        fix: "Add or fix an ingress NetworkPolicy so that its podSelector matches the pods' real labels (`ray.io/cluster: <name>`).",
        scope: JudgesOthers,
        fixer: None,
        companion: None,
    }
}

/// Whether the Pod is a Ray node that still runs.
fn is_running_ray_pod(o: &Object) -> bool {
    if o.kind != Kind::Pod || !o.labels().iter().any(|(k, _)| *k == NODE_TYPE_LABEL) {
        return false;
    }
    let phase = o
        .root
        .path(&["status", "phase"])
        .and_then(|n| n.as_str())
        .unwrap_or("");
    !matches!(phase, "Succeeded" | "Failed")
}

impl Rule for RunningRayPodsUnselected {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let policies: Vec<(&Object, Selector)> = inv
            .of_kind(Kind::NetworkPolicy)
            .map(|(_, np)| np)
            .filter(|np| is_ingress_policy(np))
            .map(|np| (np, policy_selector(np)))
            .collect();
        for pod in inv.objects.iter().filter(|o| is_running_ray_pod(o)) {
            let labels: Labels<'_> = pod
                .labels()
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), LabelValue::Known(Cow::Borrowed(v))))
                .collect();
            let selected = policies
                .iter()
                .any(|(np, sel)| np.namespace == pod.namespace && sel.matches(&labels));
            if selected {
                continue;
            }
            let cluster = pod
                .labels()
                .into_iter()
                .find(|(k, _)| *k == CLUSTER_LABEL)
                .map_or_else(
                    || "no `ray.io/cluster` label".to_string(),
                    |(_, v)| format!("cluster `{v}`"),
                );
            let in_ns = policies
                .iter()
                .filter(|(np, _)| np.namespace == pod.namespace)
                .count();
            out.report(
                pod,
                JsonPath::root().keys(&["metadata", "labels"]),
                pod.root
                    .path(&["metadata", "labels"])
                    .map_or_else(|| object_pos(pod), |n| n.pos),
                format!(
                    "running Ray pod `{}` ({cluster}) is selected by none of the {in_ns} ingress NetworkPolicies of its namespace: every pod can reach its Ray ports",
                    pod.name
                ),
            );
        }
    }
}
