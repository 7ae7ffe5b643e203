use crate::util::network::{
    is_ingress_policy, kuberay_ingress_policy, looks_meant_for_ray, open_sources, ports_text,
    selected_pods, PortSet, Want,
};
use crate::util::tenancy::{obj_display, pod_display};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Inventory, JsonPath, Kind, Node, Object, Workload};

declare_rule! {
    /// ## What it checks
    /// Ingress rules that let every source reach Ray's sensitive ports: 6379 (GCS), 8265
    /// (dashboard and Jobs API), 10001 (Ray Client), 52365 (dashboard agent), the ports
    /// `rayStartParams` moves them to, and every port when a rule has no `ports`. A source
    /// is "every source" when the rule has no or an empty `from`, or a peer is empty,
    /// `namespaceSelector: {}` (with no or an empty `podSelector`: every pod of every
    /// namespace), `podSelector: {}` alone (every pod of the policy's namespace), or
    /// `ipBlock.cidr` `0.0.0.0/0` or `::/0` (whatever its `except`).
    ///
    /// It reads the ingress NetworkPolicies that select Ray pods of the inputs, and those
    /// that look written for Ray (a word of the name or of the `podSelector` starts with
    /// `ray`) even when they select nothing yet (RW141 reports that), so a policy is right
    /// once its labels are fixed. It also reads the `ingressRules` of KubeRay's own
    /// `spec.networkPolicy` (`head`, `worker`, `workerGroups[]`). Findings point at the
    /// open peer (or at the rule when it has no `from`). Named ports are resolved through
    /// the Ray containers' `ports`; UDP and SCTP entries are not Ray's.
    ///
    /// ## Why it matters (guide §1.4)
    /// Ray does not check who calls it: reaching the Jobs API or the dashboard agent
    /// (which accepts job submission directly) is running code. The guide's own example
    /// admits `podSelector: {}` (every pod of the namespace) to the dashboard and the Ray
    /// Client port; in a shared namespace that is every other team's workload.
    ///
    /// ## Example
    /// ```yaml
    /// spec:
    ///   podSelector:
    ///     matchLabels: {ray.io/node-type: head}
    ///   ingress:
    ///   - from:
    ///     - podSelector: {}
    ///     ports:
    ///     - {protocol: TCP, port: 8265}
    /// ```
    ///
    /// ## Fix
    /// Admit only the cluster's own pods and the clients that need Ray, by label:
    /// ```yaml
    ///   ingress:
    ///   - from:
    ///     - podSelector:
    ///         matchLabels: {ray.io/cluster: my-cluster}
    ///   - from:
    ///     - podSelector:
    ///         matchLabels: {app: ray-dashboard-proxy}
    ///     ports:
    ///     - {protocol: TCP, port: 8265}
    /// ```
    pub struct NetworkPolicyOpenRayPorts {
        id: "RW142",
        name: "network-policy-open-ray-ports",
        severity: High,
        section: "1.4",
        summary: "NetworkPolicy admits every source to Ray's ports",
        fix: "Replace the open source with selectors for the cluster's own pods (`ray.io/cluster: <name>`) and the named clients that need Ray.",
        scope: JudgesOthers,
        fixer: None,
        companion: None,
    }
}

impl Rule for NetworkPolicyOpenRayPorts {
    /// KubeRay's `spec.networkPolicy.{head,worker,workerGroups[]}.ingressRules`.
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (ci, c) in w.clusters.iter().enumerate() {
            let Some(np) = kuberay_ingress_policy(c) else {
                continue;
            };
            let mut ports = PortSet::default();
            for t in w.templates.iter().filter(|t| t.cluster == Some(ci)) {
                ports.add_template(t);
            }
            let base = c.path.key("networkPolicy");
            let mut sets: Vec<(JsonPath, &Node, String)> = Vec::new();
            for key in ["head", "worker"] {
                if let Some(rules) = np.path(&[key, "ingressRules"]) {
                    sets.push((
                        base.keys(&[key, "ingressRules"]),
                        rules,
                        format!("{key} pods"),
                    ));
                }
            }
            for (k, g) in np
                .get("workerGroups")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                if let Some(rules) = g.get("ingressRules") {
                    let name = g.get("groupName").and_then(Node::as_str).unwrap_or("?");
                    sets.push((
                        base.key("workerGroups").idx(k).key("ingressRules"),
                        rules,
                        format!("worker group `{name}`"),
                    ));
                }
            }
            for (path, rules, target) in sets {
                for (i, rule) in rules.as_seq().iter().enumerate() {
                    let admitted = ports.admitted(rule.get("ports"));
                    if admitted.is_empty() {
                        continue;
                    }
                    for o in open_sources(rule, &path.idx(i)) {
                        out.report(
                            w.obj,
                            o.path,
                            o.pos,
                            format!(
                                "{}'s networkPolicy ingress rule {i} for the {target} lets {} reach {}",
                                obj_display(w),
                                o.who,
                                ports_text(&admitted)
                            ),
                        );
                    }
                }
            }
        }
    }

    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let policies: Vec<&Object> = inv
            .of_kind(Kind::NetworkPolicy)
            .map(|(_, o)| o)
            .filter(|np| is_ingress_policy(np) && np.root.path(&["spec", "ingress"]).is_some())
            .collect();
        let all_selected = selected_pods(inv, &policies, inv.ray_pods(), Want::All);
        for (np, selected) in policies.into_iter().zip(all_selected) {
            let Some(rules) = np.root.path(&["spec", "ingress"]) else {
                continue;
            };
            if selected.is_empty() && !looks_meant_for_ray(np) {
                continue;
            }
            let base = JsonPath::root().keys(&["spec", "ingress"]);
            let mut found = Vec::new();
            for (i, rule) in rules.as_seq().iter().enumerate() {
                let open = open_sources(rule, &base.idx(i));
                if !open.is_empty() {
                    found.push((i, rule, open));
                }
            }
            if found.is_empty() {
                continue;
            }
            let mut ports = PortSet::default();
            for p in &selected {
                ports.add_template(&inv.workloads[p.obj].templates[p.template]);
            }
            let target = if selected.is_empty() {
                "the Ray pods it is meant for".to_string()
            } else {
                let mut names: Vec<String> = selected
                    .iter()
                    .take(3)
                    .map(|p| {
                        let w = &inv.workloads[p.obj];
                        pod_display(w, &w.templates[p.template])
                    })
                    .collect();
                if selected.len() > 3 {
                    names.push(format!("{} more", selected.len() - 3));
                }
                names.join(", ")
            };
            for (i, rule, open) in found {
                let admitted = ports.admitted(rule.get("ports"));
                if admitted.is_empty() {
                    continue;
                }
                for o in open {
                    out.report(
                        np,
                        o.path,
                        o.pos,
                        format!(
                            "NetworkPolicy `{}` ingress rule {i} lets {} reach {} of {target}",
                            np.name,
                            o.who,
                            ports_text(&admitted)
                        ),
                    );
                }
            }
        }
    }
}
