use crate::registry;
use crate::s6_images::RayVersionVulnerable;
use crate::{declare_rule, object_pos, Ctx, Finding, Rule, Scope, Sink};
use rayward_manifest::ray::{CLUSTER_LABEL, GROUP_LABEL, NODE_TYPE_LABEL};
use rayward_manifest::{Inventory, JsonPath, Kind, Object, PodRole};
use std::collections::BTreeSet;

declare_rule! {
    /// ## What it checks
    /// Running Ray pods that still break a rule their owner no longer breaks. A Pod
    /// labelled `ray.io/cluster: C` and `ray.io/node-type: head|worker` (as KubeRay labels
    /// the pods it creates) is compared with the pod template of its group in the
    /// RayCluster `C` of the same namespace (`headGroupSpec`, or the `workerGroupSpecs`
    /// entry whose `groupName` is the pod's `ray.io/group`). Every per-object rule that
    /// reports the pod but not that template is listed. RayJobs and RayServices create a
    /// RayCluster of their own, which `rayward audit --cluster` reads like any other.
    ///
    /// A pod whose owner is not among the objects read is not judged (there is nothing
    /// to compare); its own findings stand.
    ///
    /// ## Why it matters (guide §5)
    /// KubeRay does not restart running pods when a RayCluster's template changes. After
    /// someone fixes a privileged container, a mounted token or a vulnerable image in the
    /// RayCluster, the manifest and a file audit say the cluster is fixed, while the pods
    /// created before the fix still run the old spec: the cluster stays exposed until
    /// they are recreated.
    ///
    /// ## Example
    /// A RayCluster `team-a` without `privileged: true`, and its running head pod
    /// `team-a-head-x7k2p` created while the template still had it.
    ///
    /// ## Fix
    /// Recreate the pods so that KubeRay builds them from the fixed template:
    /// ```sh
    /// kubectl delete pod -n ml -l ray.io/cluster=team-a
    /// ```
    /// (for a RayService, roll out a new cluster by changing `rayClusterConfig`; for a
    /// RayJob, the next run uses the fixed spec).
    pub struct RayPodOlderThanOwner {
        id: "RW510",
        name: "ray-pod-older-than-owner",
        severity: High,
        section: "5",
        summary: "Running Ray pod still breaks rules its owner RayCluster now passes",
        fix: "Delete the pod (or restart the cluster) so that KubeRay recreates it from the fixed template.",
        scope: JudgesOthers,
        fixer: None,
        companion: None,
    }
}

/// The value of label `key` of `o`.
fn label<'o>(o: &'o Object, key: &str) -> Option<&'o str> {
    o.labels()
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Whether `path` is `prefix` or lies under it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// Whether `f` is about `o`.
fn about(f: &Finding, o: &Object) -> bool {
    f.object.kind == o.kind_name && f.object.namespace == o.namespace && f.object.name == o.name
}

/// Rules that judge one pod spec on its own: the ones a pod and its template can both
/// break.
fn per_object(id: &str) -> bool {
    registry::find(id).is_some_and(|r| r.meta().scope == Scope::Object)
}

impl Rule for RayPodOlderThanOwner {
    fn check_findings(
        &self,
        inv: &Inventory<'_>,
        found: &[Finding],
        _cx: &Ctx<'_>,
        out: &mut Sink<'_>,
    ) {
        for pod in inv.of_kind(Kind::Pod).map(|(_, o)| o) {
            let (Some(cluster), Some(node_type)) =
                (label(pod, CLUSTER_LABEL), label(pod, NODE_TYPE_LABEL))
            else {
                continue;
            };
            let Some((owner_at, owner)) = inv
                .of_kind(Kind::RayCluster)
                .find(|(_, o)| o.name == cluster && o.namespace == pod.namespace)
            else {
                continue;
            };
            let group = label(pod, GROUP_LABEL);
            let Some(template) =
                inv.workloads[owner_at]
                    .templates
                    .iter()
                    .find(|t| match (&t.role, node_type) {
                        (PodRole::Head, "head") => true,
                        (PodRole::Worker { group: g }, "worker") => Some(g.as_str()) == group,
                        _ => false,
                    })
            else {
                continue;
            };
            let prefix = template.path.to_string();
            let others: Vec<String> = inv.workloads[owner_at]
                .templates
                .iter()
                .map(|t| t.path.to_string())
                .filter(|p| *p != prefix)
                .collect();
            let on_pod: BTreeSet<&str> = found
                .iter()
                .filter(|f| about(f, pod) && per_object(f.rule_id))
                .map(|f| f.rule_id)
                .collect();
            if on_pod.is_empty() {
                continue;
            }
            let on_template: BTreeSet<&str> = found
                .iter()
                // A finding under this group's template, or about the whole cluster (a Ray
                // setting judged once per cluster, the cluster's Ray version wherever it is
                // reported), holds for this pod's group.
                .filter(|f| {
                    about(f, owner)
                        && (under(&f.path, &prefix)
                            || !others.iter().any(|o| under(&f.path, o))
                            || f.rule_id == RayVersionVulnerable::META.id)
                })
                .map(|f| f.rule_id)
                .collect();
            let stale: Vec<String> = on_pod
                .difference(&on_template)
                .map(|id| {
                    let name = registry::find(id).map_or("", |r| r.meta().name);
                    format!("{id} ({name})")
                })
                .collect();
            if stale.is_empty() {
                continue;
            }
            let group_text = match group {
                Some(g) if node_type == "worker" => format!("worker group `{g}`"),
                _ => format!("{node_type} group"),
            };
            out.report(
                pod,
                JsonPath::root().keys(&["metadata", "name"]),
                object_pos(pod),
                format!(
                    "Ray pod `{}` still breaks {} while the {group_text} of its RayCluster `{cluster}` no longer does: it was created before the fix and keeps the old spec until it is recreated",
                    pod.name,
                    stale.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn paths_under_a_template() {
        assert!(under(
            "spec.headGroupSpec.template",
            "spec.headGroupSpec.template"
        ));
        assert!(under(
            "spec.workerGroupSpecs[1].template.spec.containers[0].image",
            "spec.workerGroupSpecs[1].template"
        ));
        assert!(!under(
            "spec.workerGroupSpecs[10].template.spec",
            "spec.workerGroupSpecs[1]"
        ));
        assert!(!under(
            "spec.headGroupSpec.templateX",
            "spec.headGroupSpec.template"
        ));
    }
}
