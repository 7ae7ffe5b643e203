use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::ray::NODE_TYPE_LABEL;
use rayward_manifest::{Inventory, JsonPath, Kind, Object};

/// The Pod Security Admission label that makes the API server refuse pods breaking a level.
const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

declare_rule! {
    /// ## What it checks
    /// `Namespace` objects that hold Ray workloads (a RayCluster, RayJob, RayService or
    /// RayCronJob, or a running Ray pod, i.e. a Pod labelled `ray.io/node-type`) while the
    /// Namespace has no `pod-security.kubernetes.io/enforce` label, or enforces only
    /// `privileged`. The rule judges the Namespace objects of the run, so it speaks when
    /// they are there: always in `rayward audit --cluster`, which reads every namespace
    /// with its labels, and in files that carry their Namespace.
    ///
    /// ## Why it matters (guide §5, §2)
    /// The pod-security rules (RW501–RW508) judge the manifests rayward sees. Pod Security
    /// Admission is what stops the manifests it does not see: a privileged pod created by
    /// hand, by another controller, or by anyone the namespace's RBAC lets in. Without an
    /// `enforce` level the namespace that runs Ray code accepts any pod.
    ///
    /// ## Example
    /// ```yaml
    /// apiVersion: v1
    /// kind: Namespace
    /// metadata: {name: ml}
    /// ---
    /// apiVersion: ray.io/v1
    /// kind: RayCluster
    /// metadata: {name: team-a, namespace: ml}
    /// ```
    ///
    /// ## Fix
    /// ```sh
    /// kubectl label namespace ml pod-security.kubernetes.io/enforce=restricted \
    ///   pod-security.kubernetes.io/enforce-version=latest
    /// ```
    /// `rayward harden --namespace NS` emits the labelled Namespace. Where a workload of
    /// the namespace cannot meet `restricted`, enforce `baseline` and set `warn` and
    /// `audit` to `restricted`.
    pub struct NamespaceWithoutPodSecurity {
        id: "RW509",
        name: "namespace-without-pod-security",
        severity: Medium,
        section: "5",
        summary: "Namespace running Ray has no Pod Security Admission enforce level",
        fix: "Label the namespace `pod-security.kubernetes.io/enforce: restricted` (or `baseline` with `warn`/`audit: restricted`).",
        scope: JudgesOthers,
        fixer: None,
        companion: None,
    }
}

/// Whether `o` is a Ray workload: a Ray object, or a Pod KubeRay labelled a Ray node.
fn is_ray_workload(o: &Object) -> bool {
    o.kind.is_ray()
        || (o.kind == Kind::Pod && o.labels().iter().any(|(k, _)| *k == NODE_TYPE_LABEL))
}

impl Rule for NamespaceWithoutPodSecurity {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (_, ns) in inv.of_kind(Kind::Namespace) {
            let level = ns
                .labels()
                .into_iter()
                .find(|(k, _)| *k == ENFORCE)
                .map(|(_, v)| v);
            let mut ray = inv
                .objects
                .iter()
                .filter(|o| o.namespace.as_deref() == Some(ns.name.as_str()) && is_ray_workload(o));
            let Some(first) = ray.next() else { continue };
            let count = 1 + ray.count();
            let (path, what) = match level {
                None => (
                    JsonPath::root().keys(&["metadata", "name"]),
                    "no `pod-security.kubernetes.io/enforce` label".to_string(),
                ),
                Some(l) if l.trim().eq_ignore_ascii_case("privileged") => (
                    JsonPath::root().keys(&["metadata", "labels", ENFORCE]),
                    "Pod Security `enforce: privileged`, which admits any pod".to_string(),
                ),
                Some(_) => continue,
            };
            let pos = ns
                .root
                .path(&["metadata", "labels", ENFORCE])
                .map_or_else(|| object_pos(ns), |n| n.pos);
            out.report(
                ns,
                path,
                pos,
                format!(
                    "namespace `{}` runs {count} Ray workload(s) (first: {} `{}`) with {what}",
                    ns.name, first.kind_name, first.name
                ),
            );
        }
    }
}
