use crate::{declare_rule, object_pos, Ctx, Rule, Sink};
use rayward_manifest::{Inventory, JsonPath, Kind};

declare_rule! {
    /// ## What it checks
    /// Namespaces that hold Ray objects (RayCluster, RayJob, RayService, RayCronJob) while
    /// the inputs hold no `ResourceQuota` for that namespace. Reported once per namespace,
    /// at its first Ray object. Objects without `metadata.namespace` count as one
    /// namespace, the one they will be applied to.
    ///
    /// ## Why it matters (guide §2-§3)
    /// Ray clusters autoscale, and any job can ask for more workers. Without a quota one
    /// team's cluster (or a hijacked one mining coins) can take every CPU, GPU and byte of
    /// memory of the Kubernetes cluster.
    ///
    /// ## Example
    /// A file with a RayCluster in namespace `team-a` and no `ResourceQuota` in `team-a`.
    ///
    /// ## Fix
    /// Add a `ResourceQuota` to the namespace capping `requests.cpu`, `requests.memory`,
    /// `limits.cpu`, `limits.memory` and `requests.nvidia.com/gpu` (`rayward harden`
    /// sizes one from the clusters' maximum replicas). If the quota is managed elsewhere,
    /// disable this rule in the config.
    pub struct NamespaceWithoutQuota {
        id: "RW202",
        name: "namespace-without-quota",
        severity: Medium,
        section: "3",
        summary: "Namespace with Ray objects has no ResourceQuota",
        fix: "Add a ResourceQuota for the namespace capping CPU, memory and GPUs.",
        scope: JudgesOthers,
        fixer: None,
        companion: Some("a ResourceQuota per namespace sized from the clusters' maximum replicas"),
    }
}

impl Rule for NamespaceWithoutQuota {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for ns in inv.namespaces() {
            let has_quota = inv
                .of_kind(Kind::ResourceQuota)
                .any(|(_, q)| q.namespace.as_deref() == ns);
            if has_quota {
                continue;
            }
            let mut ray = inv
                .objects
                .iter()
                .filter(|o| o.kind.is_ray() && o.namespace.as_deref() == ns);
            let Some(first) = ray.next() else { continue };
            let count = 1 + ray.count();
            let ns_name = ns.map_or_else(|| "(not set)".to_string(), |n| format!("`{n}`"));
            out.report(
                first,
                JsonPath::root().keys(&["metadata", "namespace"]),
                object_pos(first),
                format!("namespace {ns_name} holds {count} Ray object(s) and no ResourceQuota"),
            );
        }
    }
}
