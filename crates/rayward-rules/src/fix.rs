//! Fixes: how a rule's finding is made to go away by rewriting the object, for
//! `rayward harden` and the admission webhook's patches.
//!
//! A fix lives in the file of the rule it fixes (DESIGN: "fixes live beside the rules they
//! fix") and is reached through [`Rule::fixer`](crate::Rule::fixer). Fixes edit the
//! object's [`Node`] tree in place, so whatever they do not touch keeps its form and its
//! position, and report each edit as a [`Change`]. Running a fix on its own output
//! changes nothing (harden is idempotent). Rules whose findings are answered by new
//! objects beside the Ray object (NetworkPolicies, quota, the ServiceAccount) are fixed by
//! the companion generators of `rayward-harden`, not here.

use crate::settings::Settings;
use rayward_manifest::edit::Step;
use rayward_manifest::{ContainerKind, JsonPath, Node, Object, PodRole, Workload};
use serde::Serialize;

/// One edit a fix made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The rule whose finding this answers.
    pub rule_id: &'static str,
    /// Where in the object (`spec.headGroupSpec.serviceType`).
    pub json_path: String,
    /// What was done, in a few words (most are fixed texts: a hardened object of
    /// thousands of worker groups makes tens of thousands of changes).
    pub description: std::borrow::Cow<'static, str>,
}

/// The choices fixes need. Every field has a safe default.
#[derive(Clone, Debug)]
pub struct FixOptions {
    /// Secret holding the CA (`ca.crt`, `ca.key`) that the cert init container reads.
    pub ca_secret: String,
    /// Image of the init container running `rayward certs node`.
    pub cert_image: String,
    /// CPU request and limit for containers that set none.
    pub default_cpu: String,
    /// Memory request and limit for containers that set none.
    pub default_memory: String,
    /// Namespace for every Ray object (fixes RW201); `None` leaves namespaces as they are.
    pub namespace: Option<String>,
}

impl Default for FixOptions {
    fn default() -> Self {
        FixOptions {
            ca_secret: "rayward-ray-ca".into(),
            cert_image: "ghcr.io/rayward/rayward:0.1.0".into(),
            default_cpu: "1".into(),
            default_memory: "2Gi".into(),
            namespace: None,
        }
    }
}

/// What every fix gets.
pub struct FixContext<'a> {
    pub options: &'a FixOptions,
    pub settings: &'a Settings,
}

/// A rule's fix.
pub trait Fix: Send + Sync {
    /// True when the fix needs no choice from the user and cannot break a working
    /// deployment by itself (no new Secret, image or object it relies on): these are the
    /// fixes of `Options::safe_only`, which the webhook applies as patches.
    fn safe(&self) -> bool;

    /// Rewrites `obj` so the rule no longer reports it (as far as it can without guessing),
    /// and says what it did. Changes nothing when there is nothing to fix.
    fn fix(&self, obj: &mut Object, cx: &FixContext<'_>) -> Vec<Change>;

    /// The fix's type name: which rules share one fix (RW101 and RW102 share the TLS
    /// fix). The fixes are unit structs, so their addresses cannot tell them apart.
    fn fix_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// Collects [`Change`]s for one rule.
pub struct Changes {
    rule_id: &'static str,
    pub list: Vec<Change>,
}

impl Changes {
    pub fn new(rule_id: &'static str) -> Changes {
        Changes {
            rule_id,
            list: Vec::new(),
        }
    }

    pub fn add(&mut self, path: &JsonPath, description: impl Into<std::borrow::Cow<'static, str>>) {
        self.list.push(Change {
            rule_id: self.rule_id,
            json_path: path.to_string(),
            description: description.into(),
        });
    }
}

/// Where a container sits, found on a read-only view and reached again for editing.
#[derive(Clone, Debug)]
pub struct ContainerTarget {
    pub kind: ContainerKind,
    pub role: Option<PodRole>,
    /// The container (for the autoscaler: `autoscalerOptions`, which may not exist yet).
    pub path: JsonPath,
    /// The pod spec it runs in (the head's for the autoscaler).
    pub pod_spec_path: JsonPath,
    /// The container Ray runs in.
    pub is_ray: bool,
    /// For the autoscaler: the cluster spec that holds `autoscalerOptions`.
    pub cluster_path: Option<JsonPath>,
}

impl ContainerTarget {
    /// Every container of a workload, the autoscalers included.
    pub fn all(w: &Workload<'_>) -> Vec<ContainerTarget> {
        let mut out = Vec::new();
        for t in &w.templates {
            for c in t.containers() {
                out.push(ContainerTarget {
                    kind: c.kind,
                    role: Some(t.role.clone()),
                    path: c.path.clone(),
                    pod_spec_path: c.pod_spec_path.clone(),
                    is_ray: c.is_ray(),
                    cluster_path: None,
                });
            }
        }
        for ci in 0..w.clusters.len() {
            if let Some(a) = w.autoscaler(ci) {
                out.push(ContainerTarget {
                    kind: a.kind,
                    role: None,
                    path: a.path.clone(),
                    pod_spec_path: a.pod_spec_path.clone(),
                    is_ray: false,
                    cluster_path: Some(w.clusters[ci].path.clone()),
                });
            }
        }
        out
    }

    /// The container node, mutably; the autoscaler's `autoscalerOptions` is created when
    /// missing.
    pub fn node_mut<'n>(&self, root: &'n mut Node) -> Option<&'n mut Node> {
        match &self.cluster_path {
            Some(cp) => root.at_path_mut(cp)?.map_entry("autoscalerOptions"),
            None => root.at_path_mut(&self.path),
        }
    }
}

/// Where a pod template sits.
#[derive(Clone, Debug)]
pub struct PodTarget {
    pub role: PodRole,
    /// The pod spec (`…template.spec`).
    pub spec_path: JsonPath,
    pub cluster: Option<usize>,
}

impl PodTarget {
    pub fn all(w: &Workload<'_>) -> Vec<PodTarget> {
        w.templates
            .iter()
            .map(|t| PodTarget {
                role: t.role.clone(),
                spec_path: t.spec_path(),
                cluster: t.cluster,
            })
            .collect()
    }

    /// The pod spec, mutably; created empty under the template when missing.
    pub fn spec_mut<'n>(&self, root: &'n mut Node) -> Option<&'n mut Node> {
        let mut steps = rayward_manifest::edit::steps(&self.spec_path);
        let last = steps.pop();
        let template = root.at_mut(&steps)?;
        match last {
            Some(Step::Key(k)) => template.map_entry(&k),
            // A Pod: the object itself holds `spec`.
            _ => Some(template),
        }
    }
}

/// Sets `key` of the mapping at `parent` and records the change when it changed.
pub fn set_field(
    parent: &mut Node,
    parent_path: &JsonPath,
    key: &str,
    value: Node,
    changes: &mut Changes,
    description: impl Into<std::borrow::Cow<'static, str>>,
) {
    if parent.set(key, value) {
        changes.add(&parent_path.key(key), description);
    }
}

/// The `env` entry named `name` of a container, mutably (the last one, which wins).
pub fn env_entry_mut<'n>(container: &'n mut Node, name: &str) -> Option<&'n mut Node> {
    container
        .get_mut("env")?
        .seq_mut()
        .iter_mut()
        .rev()
        .find(|e| e.get("name").and_then(Node::as_str) == Some(name))
}

/// Sets an env var to a literal value on a container: the existing entry's value is
/// replaced (and any `valueFrom` dropped), else an entry is appended. Returns whether it
/// changed anything.
pub fn set_env(container: &mut Node, name: &str, value: &str) -> bool {
    if let Some(e) = env_entry_mut(container, name) {
        let same =
            e.get("value").and_then(Node::as_str) == Some(value) && e.get("valueFrom").is_none();
        if same {
            return false;
        }
        e.remove("valueFrom");
        e.set("value", Node::string(value));
        return true;
    }
    match container.seq_entry("env") {
        Some(env) => {
            env.push(Node::map_of([
                ("name", Node::string(name)),
                ("value", Node::string(value)),
            ]));
            true
        }
        None => false,
    }
}

/// Runs `f` on every container of a Ray object (init containers, sidecars and the
/// autoscaler included) with the path of the container. With `create_autoscaler`, a
/// missing `autoscalerOptions` is created for an enabled autoscaler (for fields only a
/// container can set); without, the autoscaler is visited only when it has one.
pub fn for_each_container(
    obj: &mut Object,
    create_autoscaler: bool,
    mut f: impl FnMut(&ContainerTarget, &mut Node),
) {
    let targets = ContainerTarget::all(&Workload::templates_of(obj));
    for t in targets {
        let node = if create_autoscaler {
            t.node_mut(&mut obj.root)
        } else {
            obj.root.at_path_mut(&t.path)
        };
        if let Some(n) = node.filter(|n| n.is_map()) {
            f(&t, n);
        }
    }
}

/// Runs `f` on every pod spec of a Ray object (created when a template has none).
pub fn for_each_pod_spec(obj: &mut Object, mut f: impl FnMut(&PodTarget, &mut Node)) {
    let targets = PodTarget::all(&Workload::templates_of(obj));
    for t in targets {
        if let Some(n) = t.spec_mut(&mut obj.root).filter(|n| n.is_map()) {
            f(&t, n);
        }
    }
}

/// A container's `securityContext`, created when missing; `None` when it holds something
/// else than a mapping (left for the rule to report).
pub fn security_context(container: &mut Node) -> Option<&mut Node> {
    container.map_entry("securityContext")
}
