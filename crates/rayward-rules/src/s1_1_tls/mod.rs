//! Guide §1.1: TLS between Ray nodes.

mod fix;
mod tls_inconsistent;
mod tls_not_enabled;

pub use fix::TlsFix;

use crate::Rule;
use rayward_manifest::{Container, JsonPath, Node, PodRole, PodTemplate, Pos, Workload};

pub(crate) const RULES: &[&dyn Rule] = &[
    &tls_not_enabled::TlsNotEnabled,
    &tls_inconsistent::TlsInconsistent,
];

/// The variables Ray needs besides `RAY_USE_TLS=1`: the node's certificate and key, and the
/// CA every peer's certificate must chain to.
const CERT_VARS: [&str; 3] = [
    "RAY_TLS_SERVER_CERT",
    "RAY_TLS_SERVER_KEY",
    "RAY_TLS_CA_CERT",
];

/// How a container's environment configures Ray's TLS.
#[derive(Debug, PartialEq, Eq)]
enum Tls {
    /// `RAY_USE_TLS` is absent, empty or false.
    Off,
    /// `RAY_USE_TLS` is true (or comes from a reference, which we take as meant to enable
    /// it); `missing` lists the certificate variables that are set nowhere.
    On { missing: Vec<&'static str> },
    /// Not set in `env`, but the container has `envFrom`, which may set it.
    Unknown,
}

/// Ray reads `RAY_USE_TLS` as a boolean: `1` or `true` (any case) turn TLS on.
fn truthy(v: &str) -> bool {
    let v = v.trim();
    v == "1" || v.eq_ignore_ascii_case("true")
}

/// Whether the container has a non-empty `envFrom` (ConfigMaps or Secrets we cannot see).
fn has_env_from(c: &Container<'_>) -> bool {
    c.get("envFrom").is_some_and(|n| !n.as_seq().is_empty())
}

/// The last `env` entry named `name` (as Kubernetes resolves duplicates). Reads the
/// nodes directly: this runs for every Ray container of every cluster.
fn env_entry<'a>(c: &Container<'a>, name: &str) -> Option<&'a Node> {
    c.get("env")?
        .as_seq()
        .iter()
        .rev()
        .find(|e| e.get("name").and_then(Node::as_str) == Some(name))
}

/// The literal value of an env entry (`None` when unset or null).
fn literal(e: &Node) -> Option<&str> {
    e.get("value")
        .filter(|v| !v.is_null())
        .and_then(Node::as_str)
}

/// Whether an env var is set to something: a non-empty literal or a `valueFrom` reference.
fn env_is_set(c: &Container<'_>, name: &str) -> bool {
    env_entry(c, name)
        .is_some_and(|e| e.get("valueFrom").is_some() || literal(e).is_some_and(|v| !v.is_empty()))
}

fn tls_of(c: &Container<'_>) -> Tls {
    let env_from = has_env_from(c);
    let on = match env_entry(c, "RAY_USE_TLS") {
        Some(e) => match literal(e) {
            Some(v) => truthy(v),
            None => e.get("valueFrom").is_some(),
        },
        None if env_from => return Tls::Unknown,
        None => false,
    };
    if !on {
        return Tls::Off;
    }
    let missing = if env_from {
        Vec::new()
    } else {
        CERT_VARS
            .into_iter()
            .filter(|v| !env_is_set(c, v))
            .collect()
    };
    Tls::On { missing }
}

/// `tlsOptions.enabled: true`: the operator (feature gate `RayClusterMTLS`, with
/// cert-manager) issues certificates and sets the TLS env on every Ray pod itself.
fn operator_mtls(cluster: &Node) -> bool {
    cluster
        .path(&["tlsOptions", "enabled"])
        .and_then(Node::as_bool)
        == Some(true)
}

/// A Ray group of a cluster: its template and its Ray container.
struct Group<'t, 'a> {
    template: &'t PodTemplate<'a>,
    ray: Container<'a>,
}

impl Group<'_, '_> {
    fn label(&self) -> String {
        match &self.template.role {
            PodRole::Worker { group } => format!("worker group `{group}`"),
            _ => "head group".to_string(),
        }
    }
}

/// The head and worker groups of cluster `ci` that have a Ray container.
fn groups<'t, 'a>(w: &'t Workload<'a>, ci: usize) -> Vec<Group<'t, 'a>> {
    w.templates
        .iter()
        .filter(|t| t.cluster == Some(ci) && t.role.is_ray_node())
        .filter_map(|t| {
            let ray = t.containers().into_iter().find(Container::is_ray)?;
            Some(Group { template: t, ray })
        })
        .collect()
}

/// Where a finding about a container's TLS env points: the `env` key when the container
/// has one, else the container itself.
fn env_at(c: &Container<'_>) -> (JsonPath, Pos) {
    let pos = c.node.get_entry("env").map_or(c.pos, |(k, _)| k.pos);
    (c.field_path("env"), pos)
}
