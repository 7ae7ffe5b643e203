use super::make_cluster_ip;
use super::{container_ports, exposing_type, head_ray, port_label, CONTROL_PORTS};
use crate::fix::{Changes, Fix, FixContext};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{JsonPath, Kind, Node, Object, Workload};

declare_rule! {
    /// ## What it checks
    /// A RayService whose `spec.serveService.spec.type` is `LoadBalancer` or `NodePort`:
    /// Ray Serve's HTTP port (8000) is published outside the cluster.
    ///
    /// Serve is meant for clients, so this is medium: the finding asks you to confirm the
    /// exposure is intended and authenticated. When the Serve service would carry one of
    /// Ray's control-plane ports (a `serveService` port or `targetPort` of 8265, 6379,
    /// 10001 or 52365, or the head's `serve` container port set to one of them) the message
    /// says the finding is critical: that publishes the dashboard, GCS or Ray Client.
    ///
    /// A RayService without `serveService.spec.type` inherits
    /// `headGroupSpec.serviceType`; RW110 reports that setting.
    ///
    /// ## Why it matters (guide §1.5, §1.6)
    /// Ray Serve has no authentication of its own: every deployment behind the route is
    /// callable by anyone who reaches the load balancer, at your GPU bill's expense.
    ///
    /// ## Example
    /// ```yaml
    /// kind: RayService
    /// spec:
    ///   serveService:
    ///     spec:
    ///       type: LoadBalancer
    /// ```
    ///
    /// ## Fix
    /// Keep the Serve service `ClusterIP` and publish it through an Ingress or gateway that
    /// authenticates callers; if it must be a load balancer, restrict its source ranges
    /// (`loadBalancerSourceRanges`, the cloud's ACL) and authenticate in the application.
    pub struct ServeServiceExposed {
        id: "RW111",
        name: "serve-service-exposed",
        severity: Medium,
        section: "1.6",
        summary: "RayService publishes its Serve service as a LoadBalancer or NodePort",
        fix: "Keep `serveService` ClusterIP behind an authenticating Ingress/gateway, or restrict the load balancer's source ranges.",
        scope: Object,
        fixer: Some(&ServeServiceExposed),
        companion: None,
        ray_kinds: &["RayService"],
    }
}

const CRITICAL_FIX: &str = "Route only Serve's port (8000) through `serveService`; never 8265, 6379, 10001 or 52365, which run code on the cluster.";

impl Rule for ServeServiceExposed {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        if w.obj.kind != Kind::RayService {
            return;
        }
        let Some(spec) = w.obj.root.path(&["spec", "serveService", "spec"]) else {
            return;
        };
        let Some(ty_node) = spec.get("type") else {
            return;
        };
        let Some(ty) = ty_node.as_str().filter(|t| exposing_type(t)) else {
            return;
        };
        let path = JsonPath::root().keys(&["spec", "serveService", "spec", "type"]);
        let mut control: Vec<String> = Vec::new();
        let mut note = |name: Option<&str>, n: i64| {
            let label = port_label(name, n);
            if CONTROL_PORTS.contains(&n) && !control.contains(&label) {
                control.push(label);
            }
        };
        for p in spec.get("ports").map(Node::as_seq).unwrap_or(&[]) {
            let name = p.get("name").and_then(Node::as_str);
            for key in ["port", "targetPort"] {
                if let Some(n) = p.get(key).and_then(Node::as_i64) {
                    note(name, n);
                }
            }
        }
        if !w.clusters.is_empty() {
            if let Some(head) = head_ray(w, 0) {
                for (name, n) in container_ports(&head) {
                    if name == Some("serve") {
                        note(None, n);
                    }
                }
            }
        }
        if control.is_empty() {
            out.report(
                w.obj,
                path,
                ty_node.pos,
                format!(
                    "Serve service is `{ty}`: Ray Serve (8000) is reachable from outside the \
                     cluster and has no authentication of its own"
                ),
            );
        } else {
            out.report_fix(
                w.obj,
                path,
                ty_node.pos,
                format!(
                    "Serve service is `{ty}` and carries {}: treat as critical, this \
                     publishes Ray's control plane (job submission = code execution)",
                    control.join(", ")
                ),
                CRITICAL_FIX,
            );
        }
    }
}

impl Fix for ServeServiceExposed {
    fn safe(&self) -> bool {
        true
    }

    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        if obj.kind != Kind::RayService {
            return ch.list;
        }
        if let Some(spec) = obj
            .root
            .at_path_mut(&JsonPath::root().keys(&["spec", "serveService", "spec"]))
            .filter(|s| s.is_map())
        {
            make_cluster_ip(
                spec,
                &JsonPath::root().keys(&["spec", "serveService", "spec"]),
                &mut ch,
            );
        }
        ch.list
    }
}
