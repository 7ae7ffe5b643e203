use crate::util::network::{is_ingress_policy, kuberay_ingress_policy, selected_pods, Want};
use crate::util::tenancy::{ns_display, ns_key, pod_display};
use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::{Inventory, JsonPath, Kind, Object, PodRef, PodRole};
use std::collections::{HashMap, HashSet};

declare_rule! {
    /// ## What it checks
    /// Ray head and worker pods (of RayCluster, RayJob, RayService and RayCronJob) that no
    /// ingress NetworkPolicy in the inputs selects. A NetworkPolicy restricts ingress when
    /// its `policyTypes` lists `Ingress` or is absent; it selects a pod when its
    /// `podSelector` matches the labels KubeRay will put on the pod (`ray.io/cluster`,
    /// `ray.io/node-type`, `ray.io/group`, … plus the template's own labels).
    ///
    /// KubeRay's own `spec.networkPolicy` (KubeRay ≥ 1.7, alpha and behind a feature gate)
    /// counts as coverage for every pod of that cluster, unless its `mode` is
    /// `DenyAllEgress`, which leaves ingress open.
    ///
    /// When a namespace holds Ray pods and no NetworkPolicy at all, the rule reports once,
    /// at the namespace's first Ray object. When NetworkPolicies exist but leave some Ray
    /// pods out, it reports each uncovered pod template (head or worker group).
    /// Objects without `metadata.namespace` are taken to be in `default`.
    ///
    /// ## Why it matters (guide §1.4)
    /// Ray has no authorization: whoever reaches the Jobs API (8265), the dashboard agent
    /// (52365), the GCS (6379) or the Ray Client port (10001) runs code in the cluster.
    /// Kubernetes lets every pod reach every pod until a NetworkPolicy selects it, so one
    /// compromised pod anywhere in the cluster is enough.
    ///
    /// ## Example
    /// ```yaml
    /// apiVersion: ray.io/v1
    /// kind: RayCluster
    /// metadata: {name: team-a, namespace: ml}
    /// spec:
    ///   headGroupSpec:
    ///     template: {spec: {containers: [{name: ray-head, image: rayproject/ray:2.52.0}]}}
    /// # ...and no NetworkPolicy in namespace ml
    /// ```
    ///
    /// ## Fix
    /// Add ingress NetworkPolicies that select KubeRay's real labels, and admit only the
    /// cluster's own pods and the clients that need Ray:
    /// ```yaml
    /// apiVersion: networking.k8s.io/v1
    /// kind: NetworkPolicy
    /// metadata: {name: team-a-ray, namespace: ml}
    /// spec:
    ///   podSelector:
    ///     matchLabels: {ray.io/cluster: team-a}
    ///   policyTypes: [Ingress]
    ///   ingress:
    ///   - from:
    ///     - podSelector:
    ///         matchLabels: {ray.io/cluster: team-a}
    /// ```
    /// `rayward harden` generates such policies. On KubeRay ≥ 1.7 `spec.networkPolicy:
    /// {mode: DenyAll}` does the same (the autoscaler then needs an egress rule to the API
    /// server, which KubeRay does not add).
    pub struct RayPodsWithoutNetworkPolicy {
        id: "RW140",
        name: "ray-pods-without-network-policy",
        severity: High,
        section: "1.4",
        summary: "Ray pods that no ingress NetworkPolicy selects",
        fix: "Add an ingress NetworkPolicy selecting the cluster's pods by `ray.io/cluster: <name>` that admits only the cluster's own pods and the clients that need Ray.",
        scope: JudgesOthers,
        fixer: None,
        companion: Some("NetworkPolicies `<name>-ray-head` and `<name>-ray-worker` on KubeRay's labels"),
    }
}

impl Rule for RayPodsWithoutNetworkPolicy {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let policies: Vec<&Object> = inv.of_kind(Kind::NetworkPolicy).map(|(_, o)| o).collect();
        let with_policy: HashSet<&str> = policies
            .iter()
            .map(|np| ns_key(np.namespace.as_deref()))
            .collect();
        let ingress: Vec<&Object> = policies
            .iter()
            .copied()
            .filter(|np| is_ingress_policy(np))
            .collect();
        let covered: HashSet<(usize, usize)> =
            selected_pods(inv, &ingress, inv.ray_pods(), Want::FirstPolicyPerPod)
                .into_iter()
                .flatten()
                .map(|p| (p.obj, p.template))
                .collect();

        let mut order: Vec<&str> = Vec::new();
        let mut uncovered: HashMap<&str, Vec<&PodRef>> = HashMap::new();
        for p in inv.ray_pods() {
            let w = &inv.workloads[p.obj];
            let t = &w.templates[p.template];
            let kuberay = t
                .cluster
                .and_then(|c| w.clusters.get(c))
                .is_some_and(|c| kuberay_ingress_policy(c).is_some());
            if kuberay {
                continue;
            }
            if covered.contains(&(p.obj, p.template)) {
                continue;
            }
            let ns = ns_key(inv.pod_namespace(p));
            uncovered
                .entry(ns)
                .or_insert_with(|| {
                    order.push(ns);
                    Vec::new()
                })
                .push(p);
        }

        for ns in order {
            let pods = &uncovered[ns];
            if !with_policy.contains(ns) {
                let first = &inv.objects[pods[0].obj];
                let mut objs: Vec<usize> = pods.iter().map(|p| p.obj).collect();
                objs.dedup();
                out.report(
                    first,
                    JsonPath::root().keys(&["metadata", "namespace"]),
                    object_pos(first),
                    format!(
                        "namespace {} holds {} Ray pod template(s) in {} object(s) and no NetworkPolicy: every pod of the Kubernetes cluster can reach their Jobs API (8265), dashboard agent (52365), GCS (6379) and Ray Client (10001) ports",
                        ns_display(first.namespace.as_deref()),
                        pods.len(),
                        objs.len()
                    ),
                );
                continue;
            }
            for p in pods {
                let w = &inv.workloads[p.obj];
                let t = &w.templates[p.template];
                let node_type = if t.role == PodRole::Head {
                    "head"
                } else {
                    "worker"
                };
                let cluster = t
                    .cluster
                    .and_then(|c| w.clusters.get(c))
                    .and_then(|c| c.name.as_deref())
                    .unwrap_or("<generated name>");
                out.report(
                    w.obj,
                    t.path.clone(),
                    t.pos(),
                    format!(
                        "{} is selected by no ingress NetworkPolicy of namespace {} (KubeRay labels it `ray.io/cluster={cluster}`, `ray.io/node-type={node_type}`): any pod can reach its Ray ports",
                        pod_display(w, t),
                        ns_display(w.obj.namespace.as_deref()),
                    ),
                );
            }
        }
    }
}
