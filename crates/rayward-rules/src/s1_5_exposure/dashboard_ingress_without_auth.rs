use super::{
    auth_annotation, cluster_auth, container_ports, head_ray, ray_pods_by_namespace, Auth,
};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::inventory::service_selector;
use rayward_manifest::{Inventory, JsonPath, Kind, Node, Object, PodRef, PodRole, Workload};
use std::collections::HashMap;

declare_rule! {
    /// ## What it checks
    /// Two ways of putting the Ray dashboard (and with it the Jobs API) behind an Ingress
    /// without authentication:
    /// - `headGroupSpec.enableIngress: true` in any Ray cluster spec. KubeRay then creates
    ///   an Ingress to the head service's dashboard port and copies the Ray object's own
    ///   annotations onto it, so the finding is silenced by an authentication annotation
    ///   on the RayCluster / RayJob / RayService.
    /// - An `Ingress` (`networking.k8s.io/v1` or the old `extensions/v1beta1`) whose
    ///   backend (`spec.rules[].http.paths[].backend`, `spec.defaultBackend`) is a Ray
    ///   head service — `<name>-head-svc` of a RayCluster or RayService in the inputs, a
    ///   custom `headService.metadata.name`, any service named `*-head-svc`, or a Service
    ///   in the inputs selecting Ray head pods — on the dashboard port (8265 or the port
    ///   named `dashboard`), the dashboard agent (52365, `dashboard-agent`), or with no
    ///   port (the whole service), while the Ingress has no authentication annotation.
    ///
    /// Annotations accepted as authentication: ingress-nginx `auth-url`, `auth-type`,
    /// `auth-tls-verify-client: on`; F5 NGINX `nginx.org/basic-auth-secret`,
    /// `nginx.com/jwt-key`; AWS `alb.ingress.kubernetes.io/auth-type` other than `none`;
    /// Traefik `router.middlewares` naming an `auth` middleware; `konghq.com/plugins`;
    /// HAProxy `auth-type` / `auth-url`; APISIX `k8s.apisix.apache.org/auth-type`;
    /// Pomerium policies. An IP allowlist alone is not authentication.
    ///
    /// Not reported either when the targeted cluster (known from the inputs) has Ray's
    /// own token authentication (`authOptions.mode: token` or `RAY_AUTH_MODE=token`), or
    /// sets `RAY_AUTH_MODE` through a reference rayward cannot read.
    ///
    /// ## Why it matters (guide §1.5)
    /// The dashboard's Jobs API runs arbitrary code (`POST /api/jobs/`). An Ingress puts it
    /// on the ingress controller's address, usually public, and Ray itself asks nothing of
    /// callers unless token auth is on.
    ///
    /// ## Example
    /// ```yaml
    /// kind: Ingress
    /// spec:
    ///   rules:
    ///   - http:
    ///       paths:
    ///       - path: /raycluster/(.*)
    ///         backend:
    ///           service: {name: raycluster-head-svc, port: {number: 8265}}
    /// ```
    ///
    /// ## Fix
    /// Put authentication in front: e.g. ingress-nginx
    /// `nginx.ingress.kubernetes.io/auth-url` to an oauth2-proxy, or an authenticating
    /// gateway (`rayward gateway`); better, reach the dashboard with
    /// `kubectl port-forward`. Enable Ray's token auth (`authOptions.mode: token`) as well.
    pub struct DashboardIngressWithoutAuth {
        id: "RW113",
        name: "dashboard-ingress-without-auth",
        severity: High,
        section: "1.5",
        summary: "Ray dashboard published through an Ingress without authentication",
        fix: "Add authentication at the ingress (e.g. `nginx.ingress.kubernetes.io/auth-url` to an oauth2-proxy) or use port-forward; enable `authOptions.mode: token`.",
        scope: WholeRun,
        fixer: None,
        companion: None,
    }
}

impl Rule for DashboardIngressWithoutAuth {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        if auth_annotation(w.obj).is_some() {
            return;
        }
        for (ci, cluster) in w.clusters.iter().enumerate() {
            let Some(n) = cluster.head().and_then(|h| h.get("enableIngress")) else {
                continue;
            };
            if n.as_bool() != Some(true)
                || matches!(cluster_auth(w, ci), Auth::Token | Auth::Unknown)
            {
                continue;
            }
            out.report(
                w.obj,
                cluster.path.keys(&["headGroupSpec", "enableIngress"]),
                n.pos,
                "`enableIngress: true` makes KubeRay publish the dashboard and Jobs API through \
                 an Ingress, and none of this object's annotations (copied onto it) adds \
                 authentication",
            );
        }
    }

    fn check_inventory(&self, inv: &Inventory<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let mut ingresses = inv.of_kind(Kind::Ingress).peekable();
        if ingresses.peek().is_none() {
            return;
        }
        let heads = HeadServices::new(inv);
        for (_, ing) in ingresses {
            if auth_annotation(ing).is_some() {
                continue;
            }
            for (b, path, route) in backends(ing) {
                check_backend(inv, &heads, ing, b, path, &route, out);
            }
        }
    }
}

/// A backend of an Ingress: the service name, its port, and the node to point at.
struct Backend<'a> {
    service: &'a str,
    name_node: &'a Node,
    port_number: Option<i64>,
    port_name: Option<&'a str>,
    name_key: &'static str,
}

fn backend(b: &Node) -> Option<Backend<'_>> {
    if let Some(s) = b.get("service") {
        let name_node = s.get("name")?;
        return Some(Backend {
            service: name_node.as_str()?,
            name_node,
            port_number: s.path(&["port", "number"]).and_then(Node::as_i64),
            port_name: s.path(&["port", "name"]).and_then(Node::as_str),
            name_key: "service.name",
        });
    }
    let name_node = b.get("serviceName")?;
    let port = b.get("servicePort");
    Some(Backend {
        service: name_node.as_str()?,
        name_node,
        port_number: port.and_then(Node::as_i64),
        port_name: port.filter(|p| p.as_i64().is_none()).and_then(Node::as_str),
        name_key: "serviceName",
    })
}

/// Every backend of an Ingress, with its path and a description of the route.
fn backends(ing: &Object) -> Vec<(Backend<'_>, JsonPath, String)> {
    let mut out = Vec::new();
    let spec_path = JsonPath::root().key("spec");
    let Some(spec) = ing.spec() else { return out };
    for key in ["defaultBackend", "backend"] {
        if let Some(b) = spec.get(key).and_then(backend) {
            let p = spec_path.key(key);
            out.push((b, p, "its default backend".to_string()));
        }
    }
    for (ri, rule) in spec
        .get("rules")
        .map(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let host = rule.get("host").and_then(Node::as_str).unwrap_or("*");
        let Some(paths) = rule.path(&["http", "paths"]) else {
            continue;
        };
        for (pi, p) in paths.as_seq().iter().enumerate() {
            let Some(b) = p.get("backend").and_then(backend) else {
                continue;
            };
            let route = format!(
                "`{host}{}`",
                p.get("path").and_then(Node::as_str).unwrap_or("/")
            );
            let path = spec_path
                .key("rules")
                .idx(ri)
                .keys(&["http", "paths"])
                .idx(pi)
                .key("backend");
            out.push((b, path, route));
        }
    }
    out
}

/// The Ray head services the inputs tell us about, by namespace and name.
struct HeadServices<'i> {
    /// `<cluster>-head-svc` and custom head service names → (workload, cluster).
    by_name: HashMap<(Option<&'i str>, String), (usize, usize)>,
    /// RayJob-made clusters get generated names: `<rayjob>-<suffix>-head-svc`.
    job_prefixes: HashMap<Option<&'i str>, Vec<(String, usize, usize)>>,
    /// Services of the inputs, by namespace and name.
    services: HashMap<(Option<&'i str>, &'i str), &'i Object>,
    /// Ray head pods, by namespace.
    head_pods: HashMap<Option<&'i str>, Vec<&'i PodRef<'i>>>,
}

impl<'i> HeadServices<'i> {
    fn new(inv: &'i Inventory<'i>) -> Self {
        let mut by_name = HashMap::new();
        let mut job_prefixes: HashMap<_, Vec<_>> = HashMap::new();
        for (oi, w) in inv.workloads.iter().enumerate() {
            let ns = w.obj.namespace.as_deref();
            for (ci, c) in w.clusters.iter().enumerate() {
                if let Some(custom) = c
                    .head()
                    .and_then(|h| h.path(&["headService", "metadata", "name"]))
                    .and_then(Node::as_str)
                {
                    by_name.insert((ns, custom.to_string()), (oi, ci));
                }
                match w.obj.kind {
                    Kind::RayCluster | Kind::RayService => {
                        by_name.insert((ns, format!("{}-head-svc", w.obj.name)), (oi, ci));
                    }
                    Kind::RayJob | Kind::RayCronJob => {
                        job_prefixes.entry(ns).or_default().push((
                            format!("{}-", w.obj.name),
                            oi,
                            ci,
                        ));
                    }
                    _ => {}
                }
            }
        }
        let services = inv
            .of_kind(Kind::Service)
            .map(|(_, s)| ((s.namespace.as_deref(), s.name.as_str()), s))
            .collect();
        let mut head_pods = ray_pods_by_namespace(inv);
        for pods in head_pods.values_mut() {
            pods.retain(|p| inv.workloads[p.obj].templates[p.template].role == PodRole::Head);
        }
        HeadServices {
            by_name,
            job_prefixes,
            services,
            head_pods,
        }
    }

    fn cluster_of(&self, ns: Option<&str>, name: &str) -> Option<(usize, usize)> {
        if let Some(c) = self.by_name.get(&(ns, name.to_string())) {
            return Some(*c);
        }
        if !name.ends_with("-head-svc") {
            return None;
        }
        self.job_prefixes
            .get(&ns)?
            .iter()
            .find(|(prefix, _, _)| name.starts_with(prefix.as_str()))
            .map(|(_, oi, ci)| (*oi, *ci))
    }
}

fn is_dashboard(name: Option<&str>, number: Option<i64>) -> bool {
    matches!(name, Some("dashboard" | "dashboard-agent")) || matches!(number, Some(8265 | 52365))
}

fn check_backend(
    inv: &Inventory<'_>,
    heads: &HeadServices<'_>,
    ing: &Object,
    b: Backend<'_>,
    path: JsonPath,
    route: &str,
    out: &mut Sink<'_>,
) {
    let ns = ing.namespace.as_deref();
    let svc = heads.services.get(&(ns, b.service)).copied();
    let mut cluster = heads.cluster_of(ns, b.service);
    let mut head = cluster.is_some() || b.service.ends_with("-head-svc");
    if let Some(sel) = svc.and_then(service_selector) {
        let selected = heads
            .head_pods
            .get(&ns)
            .and_then(|pods| pods.iter().find(|p| sel.matches(&p.labels)));
        if let Some(p) = selected {
            head = true;
            if cluster.is_none() {
                cluster = inv.workloads[p.obj].templates[p.template]
                    .cluster
                    .map(|ci| (p.obj, ci));
            }
        }
    }
    if !head {
        return;
    }
    if let Some((oi, ci)) = cluster {
        if matches!(
            cluster_auth(&inv.workloads[oi], ci),
            Auth::Token | Auth::Unknown
        ) {
            return;
        }
    }
    let dashboard = match (b.port_number, b.port_name) {
        (None, None) => true,
        (number, name) => {
            // Through a Service of the inputs: follow its port to the target port.
            let entry = svc.and_then(|s| {
                s.root.path(&["spec", "ports"])?.as_seq().iter().find(|p| {
                    (number.is_some() && p.get("port").and_then(Node::as_i64) == number)
                        || (name.is_some() && p.get("name").and_then(Node::as_str) == name)
                })
            });
            match entry {
                Some(e) => {
                    let t = e.get("targetPort");
                    is_dashboard(
                        e.get("name").and_then(Node::as_str),
                        e.get("port").and_then(Node::as_i64),
                    ) || is_dashboard(t.and_then(Node::as_str), t.and_then(Node::as_i64))
                }
                None => {
                    // A KubeRay head service: its ports are the head container's.
                    let custom = cluster
                        .and_then(|(oi, ci)| head_ray(&inv.workloads[oi], ci))
                        .map(|c| container_ports(&c))
                        .unwrap_or_default()
                        .into_iter()
                        .any(|(n, p)| {
                            matches!(n, Some("dashboard" | "dashboard-agent")) && Some(p) == number
                        });
                    custom || is_dashboard(name, number)
                }
            }
        }
    };
    if !dashboard {
        return;
    }
    let port = match (b.port_number, b.port_name) {
        (Some(n), _) => format!(":{n}"),
        (None, Some(n)) => format!(":{n}"),
        _ => String::new(),
    };
    let mut at = path;
    for k in b.name_key.split('.') {
        at = at.key(k);
    }
    out.report(
        ing,
        at,
        b.name_node.pos,
        format!(
            "Ingress routes {route} to the Ray dashboard / Jobs API (`{}{port}`) with no \
             authentication annotation: whoever reaches the ingress can submit jobs",
            b.service
        ),
    );
}
