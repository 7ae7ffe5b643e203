//! The dashboard gateway (`rayward gateway`, docs/gateway.md): HTTPS with the installation's
//! serving certificate, users and the Ray token from a Secret the user creates
//! (`rayward-gateway-auth`: keys `htpasswd` and `ray-token`), reachable only inside the
//! cluster (ClusterIP), allowed out only to DNS and Ray heads' dashboard port.

use crate::component::{Spec, CONFIG_DIR, TLS_DIR};
use crate::{Component, Options};
use serde_json::{json, Value};

/// The port the gateway serves HTTPS on in its pod.
pub const PORT: u16 = 8443;
/// The Secret the gateway reads its users and the Ray token from (never written by
/// install: secrets are references).
pub const AUTH_SECRET: &str = "rayward-gateway-auth";
const AUTH_DIR: &str = "/etc/rayward/auth";

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
        config_key: "gateway.toml",
        config_text: config,
        secrets: vec![("auth", AUTH_SECRET.to_string(), AUTH_DIR)],
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
