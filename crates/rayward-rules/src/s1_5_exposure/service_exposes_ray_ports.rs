use super::{container_ports, exposing_type, is_control, port_label};
use crate::{declare_rule, Ctx, Rule, RuleMeta, Sink};
use rayward_manifest::inventory::service_selector;
use rayward_manifest::{Inventory, JsonPath, Kind, LabelValue, Node};

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
    }
}

impl Rule for ServiceExposesRayPorts {
    fn meta(&self) -> &'static RuleMeta {
        &Self::META
    }

    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
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
            let mut named: Vec<(&str, i64)> = Vec::new();
            let mut owners: Vec<String> = Vec::new();
            for p in inv.select(ns, &sel) {
                let w = &inv.workloads[p.obj];
                let t = &w.templates[p.template];
                if !t.role.is_ray_node() {
                    continue;
                }
                let owner = match p.labels.iter().find(|(k, _)| k == "ray.io/cluster") {
                    Some((_, LabelValue::Known(c))) => format!("Ray cluster `{c}`"),
                    _ => format!("{} `{}`", w.obj.kind_name, w.obj.name),
                };
                if !owners.contains(&owner) {
                    owners.push(owner);
                }
                for c in t.containers() {
                    for (name, n) in container_ports(&c) {
                        if let Some(name) = name {
                            named.push((name, n));
                        }
                    }
                }
            }
            if owners.is_empty() {
                continue;
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
                            let n = name.and_then(|name| {
                                named.iter().find(|(k, _)| *k == name).map(|(_, n)| *n)
                            });
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
