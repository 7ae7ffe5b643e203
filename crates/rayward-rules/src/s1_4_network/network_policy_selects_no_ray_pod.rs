use crate::util::network::{looks_meant_for_ray, selected_pods, selector_text, Want};
use crate::util::tenancy::{ns_display, ns_key};
use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::{Inventory, JsonPath, Kind, Object};
use std::collections::HashMap;

declare_rule! {
    /// ## What it checks
    /// NetworkPolicies that look written for Ray (their name, or a key or value of their
    /// `podSelector`, has a word starting with `ray`, such as `ray-head-ingress` or
    /// `app: ray-cluster-head`) but select no pod of the inputs in their namespace, while
    /// that namespace does hold Ray objects. Pods are matched on the labels KubeRay really
    /// sets. The rule stays quiet when the namespace holds no Ray object with pods in the
    /// inputs (the pods may come from elsewhere; a RayJob with only a `clusterSelector`
    /// does not count), and when the policy selects some other pod of the inputs (say, the
    /// proxy in front of the dashboard). Objects without
    /// `metadata.namespace` are taken to be in `default`.
    ///
    /// ## Why it matters (guide §1.4)
    /// A policy that selects nothing protects nothing, silently. The guide's own example
    /// selects `app: ray-cluster-head` and `app: ray-cluster-worker`, labels KubeRay never
    /// sets: copied as is, it leaves the dashboard, the Jobs API and the GCS open while
    /// looking like protection.
    ///
    /// ## Example
    /// ```yaml
    /// kind: NetworkPolicy
    /// metadata: {name: ray-head-ingress}
    /// spec:
    ///   podSelector:
    ///     matchLabels: {app: ray-cluster-head}
    /// ```
    ///
    /// ## Fix
    /// Select the labels KubeRay puts on its pods:
    /// ```yaml
    /// spec:
    ///   podSelector:
    ///     matchLabels:
    ///       ray.io/cluster: my-cluster   # the RayCluster's name
    ///       ray.io/node-type: head       # or worker; ray.io/group: <group> for one group
    /// ```
    pub struct NetworkPolicySelectsNoRayPod {
        id: "RW141",
        name: "network-policy-selects-no-ray-pod",
        severity: Medium,
        section: "1.4",
        summary: "NetworkPolicy meant for Ray selects no Ray pod",
        fix: "Select KubeRay's labels: `ray.io/cluster: <cluster name>` with `ray.io/node-type: head` or `worker` (or `ray.io/group: <group>`).",
        scope: JudgesOthers,
        fixer: None,
        companion: None,
    }
}

impl Rule for NetworkPolicySelectsNoRayPod {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let policies: Vec<&Object> = inv
            .of_kind(Kind::NetworkPolicy)
            .map(|(_, o)| o)
            .filter(|np| looks_meant_for_ray(np))
            .collect();
        if policies.is_empty() {
            return;
        }
        // Per namespace: Ray objects that create Ray pods, RayCluster names. (A RayJob with
        // only a `clusterSelector` points at a cluster outside the inputs.)
        let mut ray_objects: HashMap<&str, usize> = HashMap::new();
        let mut clusters: HashMap<&str, Vec<&str>> = HashMap::new();
        for w in &inv.workloads {
            if w.obj.kind.is_ray() && w.templates.iter().any(|t| t.role.is_ray_node()) {
                let ns = ns_key(w.obj.namespace.as_deref());
                *ray_objects.entry(ns).or_default() += 1;
                let names = clusters.entry(ns).or_default();
                names.extend(w.clusters.iter().filter_map(|c| c.name.as_deref()));
            }
        }
        let selected = selected_pods(inv, &policies, inv.pods.iter(), Want::FirstPodPerPolicy);
        for (np, sel) in policies.into_iter().zip(selected) {
            let ns = np.namespace.as_deref();
            let Some(&count) = ray_objects.get(ns_key(ns)) else {
                continue;
            };
            if !sel.is_empty() {
                continue;
            }
            let ps = np.root.path(&["spec", "podSelector"]);
            let (pos, path) = match (ps, np.root.get("spec")) {
                (Some(n), _) | (None, Some(n)) => {
                    (n.pos, JsonPath::root().keys(&["spec", "podSelector"]))
                }
                (None, None) => (
                    object_pos(np),
                    JsonPath::root().keys(&["spec", "podSelector"]),
                ),
            };
            let clusters: &[&str] = clusters
                .get(ns_key(ns))
                .map_or(&[], |c| &c[..c.len().min(3)]);
            let example = clusters.first().copied().unwrap_or("<cluster name>");
            let names = if clusters.is_empty() {
                String::new()
            } else {
                format!(
                    " (clusters here: {})",
                    clusters
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.report(
                np,
                path,
                pos,
                format!(
                    "NetworkPolicy `{}` selects `{}`, which no pod in namespace {} carries, so it protects none of the {} Ray object(s) there: KubeRay labels its pods `ray.io/cluster={example}`, `ray.io/node-type=head` or `worker`, `ray.io/group=<group>`{names}",
                    np.name,
                    selector_text(ps),
                    ns_display(ns),
                    count,
                ),
            );
        }
    }
}
