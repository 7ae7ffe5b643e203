//! The dashboard gateway (`rayward gateway`, docs/gateway.md): HTTPS with the installation's
//! serving certificate, users and the Ray token from a Secret the user creates
//! (`rayward-gateway-auth`: keys `htpasswd` and `ray-token`), reachable only inside the
//! cluster (ClusterIP), allowed out only to DNS and Ray heads' dashboard port.
//!
//! With `--gateway-discovery NAMESPACES` it is one gateway for every Ray cluster of those
//! namespaces (docs/gateway.md, Discovery): `[discovery]` and `[kubernetes]` in its config,
//! a token, and the RBAC for exactly that: list and watch of RayClusters, head Services and
//! EndpointSlices, and get of Secrets (each cluster's Ray token), by a Role in each watched
//! namespace only; TokenReviews and SubjectAccessReviews cluster-wide (they are
//! cluster-scoped). Installed with the history server, it fronts it too: both mount the
//! assertion key Secret the user creates ([`HISTORY_KEY_SECRET`]).

use crate::component::{Spec, CONFIG_DIR, TLS_DIR};
use crate::{Component, Options};
use serde_json::{json, Value};

/// The port the gateway serves HTTPS on in its pod.
pub const PORT: u16 = 8443;
/// The Secret the gateway reads its users and the Ray token from (never written by
/// install: secrets are references).
pub const AUTH_SECRET: &str = "rayward-gateway-auth";
const AUTH_DIR: &str = "/etc/rayward/auth";
/// The Secret (key `key`) the discovering gateway signs its assertions to the history
/// server with and the server verifies them with: created by the user, never by install.
pub const HISTORY_KEY_SECRET: &str = "rayward-history-key";
/// Where both mount it.
pub const HISTORY_KEY_DIR: &str = "/etc/rayward/history-key";

/// The port of `http[s]://HOST[:PORT]` (80 or 443 when absent).
pub fn upstream_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((_, p)) if !authority.ends_with(']') => p.parse().ok(),
        _ => Some(if scheme == "https" { 443 } else { 80 }),
    }
}

/// Egress to the cluster DNS (kube-dns / CoreDNS in kube-system).
pub fn dns_egress() -> Value {
    json!({
        "to": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
    })
}

pub fn spec(opts: &Options) -> Spec {
    if opts.gateway_discovery.is_empty() {
        single_spec(opts)
    } else {
        discovery_spec(opts)
    }
}

/// The egress rule to the kube-apiserver: its address is not known in advance (the
/// `kubernetes` Service's endpoints), so its ports to anywhere, as for watch.
pub fn api_server_egress() -> Value {
    json!({"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]})
}

/// What the discovering gateway may do in each watched namespace: what kube-rs' watcher
/// needs (list, watch) on the three kinds it follows, and a get of Secrets (it reads each
/// cluster's token Secret by name, never lists them; the names come from the clusters, so
/// `resourceNames` cannot narrow it further at install time).
pub fn discovery_rules() -> Vec<Value> {
    vec![
        json!({"apiGroups": ["ray.io"], "resources": ["rayclusters"], "verbs": ["list", "watch"]}),
        json!({"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]}),
        json!({"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}),
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
    ]
}

fn discovery_spec(opts: &Options) -> Spec {
    let ns = &opts.namespace;
    let watched = opts
        .gateway_discovery
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let history = opts.history_behind_gateway();
    let history_lines = if history {
        format!(
            "# Sessions of terminated clusters: rayward history serve, under the same identities\n\
             # and authorization; the key (Secret {HISTORY_KEY_SECRET}, key `key`, which install\n\
             # does not write) signs who is asking, so serve asks for no second login.\n\
             history_upstream = \"{up}\"\n\
             history_key_file = \"{HISTORY_KEY_DIR}/key\"\n",
            up = crate::history::upstream_url(ns),
        )
    } else {
        String::new()
    };
    let config = format!(
        "# rayward gateway for every Ray cluster of the namespaces in [discovery]\n\
         # (docs/gateway.md, Discovery). Edit with\n\
         #   kubectl -n {ns} edit configmap rayward-gateway\n\
         # and restart the Deployment. A namespace added here also needs the Role\n\
         # rayward-gateway in it (rayward install --gateway-discovery prints it).\n\
         # Browser users and the session key (the same on every replica) live in the\n\
         # Secret {AUTH_SECRET} (keys htpasswd, session-key), which install does not\n\
         # write; Kubernetes identities need no entry anywhere.\n\
         listen = \"0.0.0.0:{PORT}\"\n\
         \n\
         [tls]\n\
         cert = \"{TLS_DIR}/tls.crt\"\n\
         key = \"{TLS_DIR}/tls.key\"\n\
         \n\
         [auth]\n\
         htpasswd = \"{AUTH_DIR}/htpasswd\"\n\
         \n\
         # The login form and its cookie: one login for every cluster and their history.\n\
         [session]\n\
         key_file = \"{AUTH_DIR}/session-key\"\n\
         \n\
         # Any other bearer token: TokenReview, then a SubjectAccessReview on the target\n\
         # RayCluster (verbs ray:read, ray:write, ray:admin in ray.io; example Roles in\n\
         # docs/gateway.md). In-cluster credentials: the pod's ServiceAccount.\n\
         [kubernetes]\n\
         # audiences = [\"rayward-gateway\"]\n\
         \n\
         # The audit log as JSON lines on standard output (the container's log).\n\
         [audit]\n\
         path = \"-\"\n\
         \n\
         # Every RayCluster of these namespaces (those of RayJobs and RayServices too), at\n\
         # /clusters/NAMESPACE/NAME/; each one's Ray token from its own Secret.\n\
         [discovery]\n\
         namespaces = [{watched}]\n\
         {history_lines}\
         \n\
         # htpasswd users: user = \"viewer\" | \"submitter\" | \"admin\", and the clusters each\n\
         # role holds on, e.g.\n\
         #   [roles.viewer]\n\
         #   clusters = [\"team-a/*\"]\n\
         # Users without a role may do nothing.\n\
         [users]\n",
    );
    let mut secrets = vec![("auth", AUTH_SECRET.to_string(), AUTH_DIR)];
    let mut egress = vec![dns_egress(), api_server_egress()];
    // Each watched namespace's Ray heads, on the dashboard port discovery defaults to.
    egress.push(json!({
        "to": opts.gateway_discovery.iter().map(|n| json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}},
            "podSelector": {"matchLabels": {"ray.io/node-type": "head"}},
        })).collect::<Vec<_>>(),
        "ports": [{"port": 8265, "protocol": "TCP"}],
    }));
    if history {
        secrets.push((
            "history-key",
            HISTORY_KEY_SECRET.to_string(),
            HISTORY_KEY_DIR,
        ));
        egress.push(json!({
            "to": [{"podSelector": {"matchLabels": crate::meta::selector(Component::History)}}],
            "ports": [{"port": crate::history::PORT, "protocol": "TCP"}],
        }));
    }
    let mut spec = single_spec(opts);
    spec.config_text = config;
    spec.cluster_rules = vec![
        json!({"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}),
        json!({"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}),
    ];
    spec.roles_in = opts
        .gateway_discovery
        .iter()
        .map(|n| (n.clone(), discovery_rules()))
        .collect();
    spec.secrets = secrets;
    spec.egress = egress;
    spec
}

fn single_spec(opts: &Options) -> Spec {
    let config = format!(
        "# rayward gateway (docs/gateway.md). Edit with\n\
         #   kubectl -n {ns} edit configmap rayward-gateway\n\
         # and restart the Deployment. Users and the Ray token live in the Secret\n\
         # {AUTH_SECRET} (keys htpasswd, ray-token), which install does not write.\n\
         listen = \"0.0.0.0:{PORT}\"\n\
         upstream = \"{up}\"\n\
         \n\
         [tls]\n\
         cert = \"{TLS_DIR}/tls.crt\"\n\
         key = \"{TLS_DIR}/tls.key\"\n\
         \n\
         [ray_token]\n\
         file = \"{AUTH_DIR}/ray-token\"\n\
         \n\
         [auth]\n\
         htpasswd = \"{AUTH_DIR}/htpasswd\"\n\
         \n\
         # The audit log as JSON lines on standard output (the container's log).\n\
         [audit]\n\
         path = \"-\"\n\
         \n\
         # user = \"viewer\" | \"submitter\" | \"admin\"; users without a role may do nothing.\n\
         [users]\n",
        ns = opts.namespace,
        up = opts.gateway_upstream,
    );
    let ray_port = upstream_port(&opts.gateway_upstream).unwrap_or(8265);
    Spec {
        component: Component::Gateway,
        replicas: 2,
        args: vec![
            "gateway".into(),
            "--config".into(),
            format!("{CONFIG_DIR}/gateway.toml"),
        ],
        port_name: "https",
        container_port: PORT,
        service_port: 443,
        scheme: "HTTPS",
        // The gateway answers /healthz itself, unauthenticated (docs/gateway.md).
        readiness_path: "/healthz",
        liveness_path: "/healthz",
        cluster_rules: Vec::new(),
        cluster_write_rules: Vec::new(),
        namespace_rules: Vec::new(),
        roles_in: Vec::new(),
        config_key: "gateway.toml",
        config_text: config,
        secrets: vec![("auth", AUTH_SECRET.to_string(), AUTH_DIR)],
        ingress: None,
        egress: vec![
            dns_egress(),
            json!({
                "to": [{
                    "namespaceSelector": {},
                    "podSelector": {"matchLabels": {"ray.io/node-type": "head"}},
                }],
                "ports": [{"port": ray_port, "protocol": "TCP"}],
            }),
        ],
        requests: json!({"cpu": "100m", "memory": "64Mi"}),
        limits: json!({"cpu": "1", "memory": "256Mi"}),
        disruption: json!({"minAvailable": 1}),
        admin_port: None,
        init_containers: Vec::new(),
        extra_volumes: Vec::new(),
        extra_mounts: Vec::new(),
    }
}
