use super::make_cluster_ip;
use super::{container_ports, exposing_type, head_ray, port_label, DEFAULT_HEAD_PORTS};
use crate::fix::{Changes, Fix, FixContext};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{JsonPath, Kind, Node, Object, Workload};

declare_rule! {
    /// ## What it checks
    /// The head service KubeRay creates for a Ray cluster (RayCluster, RayJob
    /// `rayClusterSpec`, RayService `rayClusterConfig`, RayCronJob): reported when
    /// `headGroupSpec.serviceType` or `headGroupSpec.headService.spec.type` is
    /// `LoadBalancer` or `NodePort` (the custom `headService` type wins when both are
    /// set, as in KubeRay). The message lists the ports that become reachable: the custom
    /// `headService` ports, plus the head Ray container's `ports` (KubeRay's defaults GCS
    /// 6379, dashboard + Jobs API 8265, Ray Client 10001, Serve 8000 when it lists none),
    /// plus metrics 8080.
    ///
    /// An internal load balancer is still reported: it opens the head to the whole VPC.
    /// For a RayService, KubeRay gives the Serve service the same type unless
    /// `serveService.spec.type` says otherwise.
    ///
    /// ## Why it matters (guide §1.2, §1.3, §1.6)
    /// The head service carries Ray's control plane. Anyone who reaches 8265 submits jobs
    /// (arbitrary code, CVE-2023-48022 "ShadowRay"), and 6379 / 10001 give the same through
    /// the GCS and Ray Client. Ray's token authentication, where enabled, is one shared
    /// static secret; it is no reason to publish these ports.
    ///
    /// ## Example
    /// ```yaml
    /// headGroupSpec:
    ///   serviceType: LoadBalancer
    /// ```
    ///
    /// ## Fix
    /// `serviceType: ClusterIP` (the default). Reach the dashboard with
    /// `kubectl port-forward svc/<cluster>-head-svc 8265`, or through an authenticating
    /// proxy (`rayward gateway`) that is the only thing exposed.
    pub struct HeadServiceExposed {
        id: "RW110",
        name: "head-service-exposed",
        severity: Critical,
        section: "1.6",
        summary: "Ray head service is a LoadBalancer or NodePort",
        fix: "Set `serviceType: ClusterIP` (and no `headService.spec.type` LoadBalancer/NodePort); use port-forward or an authenticating proxy.",
        scope: Object,
        fixer: Some(&HeadServiceExposed),
        companion: None,
    }
}

impl Rule for HeadServiceExposed {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        for (ci, cluster) in w.clusters.iter().enumerate() {
            let Some(head) = cluster.head() else { continue };
            let head_path = cluster.path.key("headGroupSpec");
            let custom = head.path(&["headService", "spec", "type"]);
            let (node, path, what) =
                match custom.filter(|n| n.as_str().is_some_and(|s| !s.is_empty())) {
                    Some(n) => (
                        n,
                        head_path.keys(&["headService", "spec", "type"]),
                        "custom head service",
                    ),
                    None => match head.get("serviceType") {
                        Some(n) => (n, head_path.key("serviceType"), "head service"),
                        None => continue,
                    },
                };
            let Some(ty) = node.as_str().filter(|t| exposing_type(t)) else {
                continue;
            };
            let mut ports: Vec<(Option<&str>, i64)> = head
                .path(&["headService", "spec", "ports"])
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("name").and_then(Node::as_str),
                        p.get("port")?.as_i64()?,
                    ))
                })
                .collect();
            let own = head_ray(w, ci)
                .map(|c| container_ports(&c))
                .unwrap_or_default();
            if own.is_empty() {
                ports.extend(DEFAULT_HEAD_PORTS.iter().map(|(n, p)| (Some(*n), *p)));
            } else {
                ports.extend(own);
            }
            ports.push((Some("metrics"), 8080));
            let mut seen = Vec::new();
            let labels: Vec<String> = ports
                .into_iter()
                .filter(|(_, p)| {
                    let new = !seen.contains(p);
                    seen.push(*p);
                    new
                })
                .map(|(n, p)| port_label(n, p))
                .collect();
            let reach = if ty == "NodePort" {
                "on every node's IP"
            } else {
                "through a cloud load balancer"
            };
            let serve = if w.obj.kind == Kind::RayService && what == "head service" {
                " (KubeRay gives the Serve service this type too)"
            } else {
                ""
            };
            out.report(
                w.obj,
                path,
                node.pos,
                format!(
                    "{what} is `{ty}`{serve}: {} become reachable from outside the cluster \
                     {reach}; whoever reaches the dashboard, GCS or Ray Client runs code",
                    labels.join(", ")
                ),
            );
        }
    }
}

impl Fix for HeadServiceExposed {
    fn safe(&self) -> bool {
        true
    }

    /// `headGroupSpec.serviceType: ClusterIP` on every cluster, and a custom
    /// `headService` that is a LoadBalancer or NodePort turned into ClusterIP (without the
    /// fields only external services may carry).
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let clusters: Vec<JsonPath> = Workload::templates_of(obj)
            .clusters
            .iter()
            .map(|c| c.path.clone())
            .collect();
        for cp in clusters {
            let Some(head) = obj
                .root
                .at_path_mut(&cp)
                .and_then(|c| c.get_mut("headGroupSpec"))
                .filter(|h| h.is_map())
            else {
                continue;
            };
            let hp = cp.key("headGroupSpec");
            if head.get("serviceType").and_then(Node::as_str) != Some("ClusterIP") {
                head.set("serviceType", Node::string("ClusterIP"));
                ch.add(&hp.key("serviceType"), "set `serviceType: ClusterIP`");
            }
            if let Some(spec) = head
                .get_mut("headService")
                .and_then(|s| s.get_mut("spec"))
                .filter(|s| s.is_map())
            {
                make_cluster_ip(spec, &hp.keys(&["headService", "spec"]), &mut ch);
            }
        }
        ch.list
    }
}
