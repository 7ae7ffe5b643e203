//! Guide §1.2, §1.3, §1.5, §1.6: Ray's ports, dashboard and services not exposed; authentication.

mod auth_disabled;
mod auth_token_literal;
mod dashboard_ingress_without_auth;
mod head_service_exposed;
mod serve_service_exposed;
mod service_exposes_ray_ports;
mod token_auth_missing;

use crate::Rule;
use rayward_manifest::ray;
use rayward_manifest::{Container, Inventory, JsonPath, Node, Object, PodRef, Pos, Workload};
use std::collections::HashMap;

pub(crate) const RULES: &[&dyn Rule] = &[
    &head_service_exposed::HeadServiceExposed,
    &serve_service_exposed::ServeServiceExposed,
    &service_exposes_ray_ports::ServiceExposesRayPorts,
    &dashboard_ingress_without_auth::DashboardIngressWithoutAuth,
    &token_auth_missing::TokenAuthMissing,
    &auth_disabled::AuthDisabled,
    &auth_token_literal::AuthTokenLiteral,
];

/// Ray's control-plane ports: dashboard + Jobs API, GCS, Ray Client, dashboard agent
/// (which accepts job submissions too). Whoever reaches one of them runs code.
const CONTROL_PORTS: [i64; 4] = [
    ray::DASHBOARD_PORT,
    ray::GCS_PORT,
    ray::CLIENT_PORT,
    ray::DASHBOARD_AGENT_PORT,
];

// The ports KubeRay gives the head service when the head's Ray container lists none.
use rayward_manifest::ray::DEFAULT_HEAD_PORTS;

/// Service types that publish a Service outside the Kubernetes cluster.
fn exposing_type(t: &str) -> bool {
    t == "LoadBalancer" || t == "NodePort"
}

/// What a port is, by its name when it is one of KubeRay's, else by its number.
fn port_label(name: Option<&str>, port: i64) -> String {
    let what = match name {
        Some("gcs" | "gcs-server" | "redis") => Some("GCS"),
        Some("dashboard") => Some("dashboard + Jobs API"),
        Some("client") => Some("Ray Client"),
        Some("dashboard-agent") => Some("dashboard agent (accepts jobs)"),
        Some("metrics") => Some("metrics"),
        Some("serve") => Some("Serve"),
        _ => None,
    }
    .or(match port {
        ray::GCS_PORT => Some("GCS"),
        ray::DASHBOARD_PORT => Some("dashboard + Jobs API"),
        ray::CLIENT_PORT => Some("Ray Client"),
        ray::DASHBOARD_AGENT_PORT => Some("dashboard agent (accepts jobs)"),
        ray::METRICS_PORT => Some("metrics"),
        ray::SERVE_PORT => Some("Serve"),
        _ => None,
    });
    match what {
        Some(w) => format!("{w} {port}"),
        None => format!("port {port}"),
    }
}

/// Whether a port (by name or number) is one of Ray's control-plane ports.
fn is_control(name: Option<&str>, port: Option<i64>) -> bool {
    matches!(
        name,
        Some("gcs" | "gcs-server" | "redis" | "dashboard" | "client" | "dashboard-agent")
    ) || port.is_some_and(|p| CONTROL_PORTS.contains(&p))
}

/// `ports[]` of a container: (name, containerPort).
fn container_ports<'a>(c: &Container<'a>) -> Vec<(Option<&'a str>, i64)> {
    c.get("ports")
        .map(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| {
            let n = p.get("containerPort")?.as_i64()?;
            Some((p.get("name").and_then(Node::as_str), n))
        })
        .collect()
}

/// The Ray container of cluster `ci`'s head.
fn head_ray<'a>(w: &Workload<'a>, ci: usize) -> Option<Container<'a>> {
    w.head_of(ci)?
        .containers()
        .into_iter()
        .find(Container::is_ray)
}

/// Where a finding about a cluster spec as a whole points: the key that holds it
/// (`spec:`, `rayClusterSpec:`, `rayClusterConfig:`), and its path.
fn cluster_at(w: &Workload<'_>, ci: usize) -> (JsonPath, Pos) {
    let c = &w.clusters[ci];
    let mut node = &w.obj.root;
    let mut pos = c.node.pos;
    for k in c.path.as_str().split('.') {
        match node.get_entry(k) {
            Some((key, val)) => {
                pos = key.pos;
                node = val;
            }
            None => break,
        }
    }
    (c.path.clone(), pos)
}

/// How a Ray cluster authenticates requests to its dashboard, Jobs API and gRPC ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// Token authentication (`authOptions.mode: token` or `RAY_AUTH_MODE=token`).
    Token,
    /// Explicitly disabled.
    Disabled,
    /// Nothing configured.
    Off,
    /// Set through a reference or `envFrom` that rayward cannot read.
    Unknown,
}

/// The authentication of cluster `ci`: `authOptions` first, then `RAY_AUTH_MODE` on the
/// head's Ray container.
fn cluster_auth(w: &Workload<'_>, ci: usize) -> Auth {
    let c = &w.clusters[ci];
    match c.auth_mode() {
        Some("token") => return Auth::Token,
        Some("disabled") => return Auth::Disabled,
        _ => {}
    }
    if c.node
        .path(&["authOptions", "enableK8sTokenAuth"])
        .and_then(Node::as_bool)
        == Some(true)
    {
        return Auth::Token;
    }
    let Some(head) = head_ray(w, ci) else {
        return Auth::Off;
    };
    match head.env_var("RAY_AUTH_MODE") {
        Some(e) => match e.value.and_then(Node::as_str) {
            Some(v) if v.trim().eq_ignore_ascii_case("token") => Auth::Token,
            Some(v) if v.trim().eq_ignore_ascii_case("disabled") => Auth::Disabled,
            Some(_) => Auth::Off,
            None if e.value_from.is_some() => Auth::Unknown,
            None => Auth::Off,
        },
        None if head.get("envFrom").is_some_and(|n| !n.as_seq().is_empty()) => Auth::Unknown,
        None => Auth::Off,
    }
}

/// A test on an annotation's value.
/// Fields a Service may carry only when it is reachable from outside the cluster; the
/// API server refuses most of them on a ClusterIP Service.
const EXTERNAL_ONLY: &[&str] = &[
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "loadBalancerClass",
    "allocateLoadBalancerNodePorts",
    "externalIPs",
];

/// Turns a Service spec of type LoadBalancer or NodePort into ClusterIP, dropping what
/// only external Services may carry (node ports included).
pub(crate) fn make_cluster_ip(spec: &mut Node, path: &JsonPath, ch: &mut crate::fix::Changes) {
    let Some(ty) = spec.get("type").and_then(Node::as_str) else {
        return;
    };
    if !exposing_type(ty) {
        return;
    }
    let was = ty.to_string();
    spec.set("type", Node::string("ClusterIP"));
    ch.add(&path.key("type"), format!("`{was}` becomes `ClusterIP`"));
    for f in EXTERNAL_ONLY {
        if spec.remove(f) {
            ch.add(&path.key(f), "remove: only external Services carry it");
        }
    }
    if let Some(ports) = spec.get_mut("ports") {
        for (i, p) in ports.seq_mut().iter_mut().enumerate() {
            if p.remove("nodePort") {
                ch.add(
                    &path.key("ports").idx(i).key("nodePort"),
                    "remove the node port",
                );
            }
        }
    }
}

type ValueTest = Option<fn(&str) -> bool>;

/// Annotations that put authentication in front of an Ingress's backends, for the
/// controllers in common use. A value test, when given, must hold too.
const AUTH_ANNOTATIONS: &[(&str, ValueTest)] = &[
    // ingress-nginx (community): external auth (oauth2-proxy, …) or basic/digest auth.
    ("nginx.ingress.kubernetes.io/auth-url", None),
    ("nginx.ingress.kubernetes.io/auth-type", None),
    // ingress-nginx: client certificates required.
    (
        "nginx.ingress.kubernetes.io/auth-tls-verify-client",
        Some(|v| v.eq_ignore_ascii_case("on")),
    ),
    // F5 NGINX Ingress Controller.
    ("nginx.org/basic-auth-secret", None),
    ("nginx.com/jwt-key", None),
    // AWS Load Balancer Controller: `cognito` or `oidc`.
    (
        "alb.ingress.kubernetes.io/auth-type",
        Some(|v| !v.eq_ignore_ascii_case("none")),
    ),
    // Traefik: a middleware chain with an auth middleware (basicAuth, forwardAuth, …).
    (
        "traefik.ingress.kubernetes.io/router.middlewares",
        Some(|v| v.to_ascii_lowercase().contains("auth")),
    ),
    // Kong: plugins (key-auth, oidc, jwt, …) attached to the route.
    ("konghq.com/plugins", None),
    // HAProxy controllers.
    ("haproxy.org/auth-type", None),
    ("haproxy-ingress.github.io/auth-type", None),
    ("haproxy-ingress.github.io/auth-url", None),
    ("ingress.kubernetes.io/auth-type", None),
    ("ingress.kubernetes.io/auth-url", None),
    // Apache APISIX.
    ("k8s.apisix.apache.org/auth-type", None),
    // Pomerium: an identity-aware proxy; any policy means authenticated access.
    ("ingress.pomerium.io/policy", None),
    ("ingress.pomerium.io/allowed_users", None),
    ("ingress.pomerium.io/allowed_groups", None),
    ("ingress.pomerium.io/allowed_domains", None),
    (
        "ingress.pomerium.io/allow_any_authenticated_user",
        Some(|v| v == "true"),
    ),
];

/// The first authentication annotation of an object, if any.
fn auth_annotation(obj: &Object) -> Option<&'static str> {
    AUTH_ANNOTATIONS.iter().find_map(|(key, test)| {
        let v = obj.annotation(key)?.trim();
        (!v.is_empty() && test.is_none_or(|t| t(v))).then_some(*key)
    })
}

/// Ray head and worker pods by namespace, so rules that match many Services or Ingresses
/// against pods look only at the pods of the right namespace.
fn ray_pods_by_namespace<'i>(
    inv: &'i Inventory<'_>,
) -> HashMap<Option<&'i str>, Vec<&'i PodRef<'i>>> {
    let mut by_ns: HashMap<Option<&str>, Vec<&PodRef>> = HashMap::new();
    for p in inv.ray_pods() {
        by_ns.entry(inv.pod_namespace(p)).or_default().push(p);
    }
    by_ns
}
