use super::{container_ports, exposing_type, is_control, port_label, ray_pods_by_namespace};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::inventory::service_selector;
use rayward_manifest::{Inventory, JsonPath, Kind, Node, PodRef};

declare_rule! {
    /// ## What it checks
    /// Core `Service` objects of type `LoadBalancer` or `NodePort`, or with
    /// `externalIPs`, that select Ray head or worker pods (pods of a RayCluster, RayJob,
    /// RayService or RayCronJob in the same namespace, with the labels KubeRay puts on
    /// them) and publish one of Ray's control-plane ports: a `port` or `targetPort` of
    /// 8265 (dashboard + Jobs API), 6379 (GCS), 10001 (Ray Client) or 52365 (dashboard
    /// agent), or a named `targetPort` that the selected pods' containers map to one of
    /// them (or one of KubeRay's names `gcs-server`, `dashboard`, `client`,
    /// `dashboard-agent`). One finding per offending `ports[]` entry.
    ///
    /// `ClusterIP` services are not reported (the §1.4 NetworkPolicy rules cover in-cluster
    /// reachability), nor are services that publish only Serve (8000) or metrics (8080).
    ///
    /// ## Why it matters (guide §1.2, §1.3, §1.5)
    /// A hand-written Service bypasses the head group's `serviceType` and is the usual way
    /// the dashboard ends up on the internet. Ray runs whatever reaches these ports; the
    /// dashboard agent accepts job submissions directly, so a proxy that covers 8265 alone
    /// does not help when 52365 is published.
    ///
    /// ## Example
    /// ```yaml
    /// kind: Service
    /// spec:
    ///   type: LoadBalancer
    ///   selector: {ray.io/node-type: head}
    ///   ports:
    ///   - {name: dashboard, port: 8265}
    /// ```
    ///
    /// ## Fix
    /// Make it `ClusterIP` and use `kubectl port-forward` or an authenticating proxy, or
    /// drop the control-plane ports from it.
    pub struct ServiceExposesRayPorts {
        id: "RW112",
        name: "service-exposes-ray-ports",
        severity: Critical,
        section: "1.5",
        summary: "A LoadBalancer/NodePort Service publishes Ray's dashboard, GCS, client or agent port",
        fix: "Make the Service ClusterIP (port-forward or an authenticating proxy for access), or remove Ray's control-plane ports from it.",
        scope: WholeRun,
        fixer: None,
        companion: None,
    }
}

impl Rule for ServiceExposesRayPorts {
    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let mut pods_by_ns = None;
        for (_, svc) in inv.of_kind(Kind::Service) {
            let Some(spec) = svc.spec() else { continue };
            let ty = spec
                .get("type")
                .and_then(Node::as_str)
                .unwrap_or("ClusterIP");
            let external_ips = spec
                .get("externalIPs")
                .is_some_and(|n| !n.as_seq().is_empty());
            if !exposing_type(ty) && !external_ips {
                continue;
            }
            let Some(sel) = service_selector(svc) else {
                continue;
            };
            let ns = svc.namespace.as_deref();
            let pods = pods_by_ns.get_or_insert_with(|| ray_pods_by_namespace(inv));
            let selected: Vec<&PodRef> = pods
                .get(&ns)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .copied()
                .filter(|p| sel.matches(&p.labels))
                .collect();
            if selected.is_empty() {
                continue;
            }
            // Named target ports, resolved through the selected pods' containers (only
            // read when a port names its target).
            let named = |name: &str| -> Option<i64> {
                selected.iter().find_map(|p| {
                    let t = &inv.workloads[p.obj].templates[p.template];
                    t.containers().iter().find_map(|c| {
                        container_ports(c)
                            .into_iter()
                            .find(|(n, _)| *n == Some(name))
                            .map(|(_, port)| port)
                    })
                })
            };
            let mut objs: Vec<usize> = selected.iter().map(|p| p.obj).collect();
            objs.dedup();
            objs.sort_unstable();
            objs.dedup();
            let mut owners: Vec<String> = objs
                .iter()
                .take(3)
                .map(|&oi| {
                    let o = inv.workloads[oi].obj;
                    format!("{} `{}`", o.kind_name, o.name)
                })
                .collect();
            if objs.len() > 3 {
                owners.push(format!("{} more", objs.len() - 3));
            }
            let how = if exposing_type(ty) {
                format!("`{ty}` Service")
            } else {
                "Service with `externalIPs`".to_string()
            };
            let ports_path = JsonPath::root().keys(&["spec", "ports"]);
            for (i, p) in spec
                .get("ports")
                .map(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .enumerate()
            {
                let port = p.get("port").and_then(Node::as_i64);
                let target = p.get("targetPort");
                let (t_name, t_num) = match target {
                    Some(t) => match t.as_i64() {
                        Some(n) => (None, Some(n)),
                        None => {
                            let name = t.as_str();
                            let n = name.and_then(&named);
                            (name, n)
                        }
                    },
                    None => (None, port),
                };
                let hit = is_control(None, port)
                    || is_control(None, t_num)
                    || (t_num.is_none() && is_control(t_name, None));
                if !hit {
                    continue;
                }
                let reached = match t_num {
                    Some(n) => port_label(t_name, n),
                    None => format!("`{}`", t_name.unwrap_or("?")),
                };
                out.report(
                    svc,
                    ports_path.idx(i),
                    p.pos,
                    format!(
                        "{how} publishes port {} (to {reached}) of {} outside the cluster",
                        port.map_or_else(|| "?".to_string(), |n| n.to_string()),
                        owners.join(", ")
                    ),
                );
            }
        }
    }
}
