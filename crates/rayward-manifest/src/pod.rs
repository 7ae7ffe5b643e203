//! Typed views of every pod template an object carries, KubeRay's included.
//!
//! Views borrow the object's [`Node`] tree and carry the JSON path of what they wrap, so a
//! rule can point at `spec.workerGroupSpecs[1].template.spec.containers[0]` and its line.

use crate::node::{JsonPath, Node, Pos, Value};
use crate::object::{string_pairs, Kind, Object};

static EMPTY_MAP: Node = Node {
    value: Value::Map(Vec::new()),
    pos: Pos { line: 0, col: 0 },
};

/// What a pod template is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodRole {
    /// A plain workload: Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob.
    Workload,
    /// The head group of a Ray cluster.
    Head,
    /// A Ray worker group.
    Worker { group: String },
    /// The Kubernetes Job pod that submits a RayJob (`submitterPodTemplate`).
    Submitter,
}

impl PodRole {
    /// Head or worker: a pod KubeRay creates and runs `ray start` in.
    pub fn is_ray_node(&self) -> bool {
        matches!(self, PodRole::Head | PodRole::Worker { .. })
    }
}

/// A Ray cluster spec, wherever it sits: a RayCluster's `spec`, a RayJob's
/// `spec.rayClusterSpec`, a RayService's `spec.rayClusterConfig`, a RayCronJob's
/// `spec.jobTemplate.rayClusterSpec`.
#[derive(Clone, Debug)]
pub struct RayClusterSpec<'a> {
    pub node: &'a Node,
    pub path: JsonPath,
    /// The cluster's name when it is known statically (a RayCluster's own name); RayJob and
    /// RayService clusters get generated names.
    pub name: Option<String>,
}

impl<'a> RayClusterSpec<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }

    pub fn ray_version(&self) -> Option<&'a str> {
        self.node.get("rayVersion").and_then(Node::as_str)
    }

    /// Whether KubeRay adds its autoscaler container to the head pod.
    pub fn autoscaler_enabled(&self) -> bool {
        self.node
            .get("enableInTreeAutoscaling")
            .and_then(Node::as_bool)
            .unwrap_or(false)
    }

    /// `authOptions.mode`, when set.
    pub fn auth_mode(&self) -> Option<&'a str> {
        self.node.path(&["authOptions", "mode"])?.as_str()
    }

    pub fn head(&self) -> Option<&'a Node> {
        self.node.get("headGroupSpec")
    }

    pub fn workers(&self) -> &'a [Node] {
        self.node
            .get("workerGroupSpecs")
            .map(Node::as_seq)
            .unwrap_or(&[])
    }
}

/// One pod template.
#[derive(Clone, Debug)]
pub struct PodTemplate<'a> {
    pub role: PodRole,
    /// Path of the template (the node holding `metadata` and `spec`; empty for a Pod).
    pub path: JsonPath,
    pub node: &'a Node,
    /// Index into [`Workload::clusters`] for Ray pods.
    pub cluster: Option<usize>,
    /// `rayStartParams` of the group, for Ray pods.
    pub ray_start_params: Option<&'a Node>,
    /// Built up front for per-object rules, which all ask ([`Workload::of`]); left out of
    /// the whole-run inventory, which rarely asks and would hold them for every object.
    containers: Option<Vec<Container<'a>>>,
}

impl<'a> PodTemplate<'a> {
    /// The pod spec (`spec` of the template).
    pub fn spec(&self) -> &'a Node {
        self.node.get("spec").unwrap_or(&EMPTY_MAP)
    }

    pub fn spec_path(&self) -> JsonPath {
        self.path.key("spec")
    }

    /// Where a finding about the pod as a whole should point.
    pub fn pos(&self) -> Pos {
        self.node.get("spec").map_or(self.node.pos, |s| s.pos)
    }

    /// The template's own labels.
    pub fn labels(&self) -> Vec<(&'a str, &'a str)> {
        string_pairs(self.node.path(&["metadata", "labels"]))
    }

    /// A field of the pod spec.
    pub fn field(&self, key: &str) -> Option<&'a Node> {
        self.spec().get(key)
    }

    /// Init containers first, then containers, as Kubernetes starts them. Built once when
    /// the workload is resolved; every rule asks for them.
    pub fn containers(&self) -> Vec<Container<'a>> {
        match &self.containers {
            Some(c) => c.clone(),
            None => self.build_containers(),
        }
    }

    fn build_containers(&self) -> Vec<Container<'a>> {
        let spec = self.spec();
        let sp = self.spec_path();
        let mut out = Vec::new();
        for (key, kind) in [
            ("initContainers", ContainerKind::Init),
            ("containers", ContainerKind::Main),
        ] {
            let list_path = sp.key(key);
            if let Some(list) = spec.get(key) {
                for (i, c) in list.as_seq().iter().enumerate() {
                    out.push(Container {
                        kind,
                        index: i,
                        path: list_path.idx(i),
                        node: c,
                        pos: c.pos,
                        pod_spec: spec,
                        pod_spec_path: sp.clone(),
                        ray_node: self.role.is_ray_node(),
                    });
                }
            }
        }
        out
    }
}

/// Where a container comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    Main,
    Init,
    /// KubeRay's in-tree autoscaler, configured by `autoscalerOptions`.
    Autoscaler,
}

/// One container with the pod it runs in.
#[derive(Clone, Debug)]
pub struct Container<'a> {
    pub kind: ContainerKind,
    pub index: usize,
    pub path: JsonPath,
    /// The container (for the autoscaler: `autoscalerOptions`, or an empty map when the
    /// autoscaler is enabled with KubeRay's defaults).
    pub node: &'a Node,
    /// Where a finding about a missing field points.
    pub pos: Pos,
    pub pod_spec: &'a Node,
    pub pod_spec_path: JsonPath,
    ray_node: bool,
}

/// Security-context fields that a pod-level `securityContext` sets for every container.
pub const POD_LEVEL_FIELDS: &[&str] = &[
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "seccompProfile",
    "seLinuxOptions",
    "windowsOptions",
    "appArmorProfile",
];

/// An `env` entry.
#[derive(Clone, Debug)]
pub struct EnvVar<'a> {
    pub name: &'a str,
    /// The literal `value`, when set.
    pub value: Option<&'a Node>,
    pub value_from: Option<&'a Node>,
    pub node: &'a Node,
    pub path: JsonPath,
}

impl<'a> Container<'a> {
    pub fn name(&self) -> &'a str {
        match self.kind {
            ContainerKind::Autoscaler => "autoscaler",
            _ => self.node.get("name").and_then(Node::as_str).unwrap_or(""),
        }
    }

    /// The container Ray runs in: the first container of a head or worker pod (KubeRay's
    /// `RayContainerIndex`).
    pub fn is_ray(&self) -> bool {
        self.ray_node && self.kind == ContainerKind::Main && self.index == 0
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }

    /// The path of a field of this container.
    pub fn field_path(&self, key: &str) -> JsonPath {
        self.path.key(key)
    }

    /// The position of a field, or of the container when it is missing.
    pub fn field_pos(&self, key: &str) -> Pos {
        self.node.get(key).map_or(self.pos, |n| n.pos)
    }

    pub fn image(&self) -> Option<&'a str> {
        self.node.get("image").and_then(Node::as_str)
    }

    /// Every `env` entry with a name.
    pub fn env(&self) -> Vec<EnvVar<'a>> {
        let base = self.path.key("env");
        self.node
            .get("env")
            .map(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                Some(EnvVar {
                    name: e.get("name")?.as_str()?,
                    value: e.get("value").filter(|v| !v.is_null()),
                    value_from: e.get("valueFrom"),
                    node: e,
                    path: base.idx(i),
                })
            })
            .collect()
    }

    /// The env entry of that name (the last one wins, as in Kubernetes).
    pub fn env_var(&self, name: &str) -> Option<EnvVar<'a>> {
        let list = self.node.get("env")?.as_seq();
        let (i, e) = list
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| e.get("name").and_then(Node::as_str) == Some(name))?;
        Some(EnvVar {
            name: e.get("name")?.as_str()?,
            value: e.get("value").filter(|v| !v.is_null()),
            value_from: e.get("valueFrom"),
            node: e,
            path: self.path.key("env").idx(i),
        })
    }

    /// The literal value of an env var.
    pub fn env_value(&self, name: &str) -> Option<&'a str> {
        self.env_var(name)?.value?.as_str()
    }

    /// A security-context field as it applies to this container: the container's own
    /// setting, else the pod's for the fields a pod-level context can set.
    pub fn security(&self, field: &str) -> Option<(&'a Node, JsonPath)> {
        if let Some(n) = self.node.path(&["securityContext", field]) {
            return Some((n, self.path.keys(&["securityContext", field])));
        }
        if POD_LEVEL_FIELDS.contains(&field) {
            if let Some(n) = self.pod_spec.path(&["securityContext", field]) {
                return Some((n, self.pod_spec_path.keys(&["securityContext", field])));
            }
        }
        None
    }

    /// Path and position for a finding about a security-context field that is missing or
    /// wrong: the field itself when set, else the container's `securityContext`, else the
    /// container.
    pub fn security_at(&self, field: &str) -> (JsonPath, Pos) {
        if let Some((n, p)) = self.security(field) {
            return (p, n.pos);
        }
        match self.node.get("securityContext") {
            Some(sc) => (self.path.keys(&["securityContext", field]), sc.pos),
            None => (self.path.keys(&["securityContext", field]), self.pos),
        }
    }
}

/// An object with its pod templates and Ray cluster specs resolved.
#[derive(Clone, Debug)]
pub struct Workload<'a> {
    pub obj: &'a Object,
    pub clusters: Vec<RayClusterSpec<'a>>,
    pub templates: Vec<PodTemplate<'a>>,
}

impl<'a> Workload<'a> {
    /// Finds every pod template in `obj`, with their containers resolved once for the
    /// rules. Objects without any give an empty workload.
    pub fn of(obj: &'a Object) -> Workload<'a> {
        let mut w = Self::templates_of(obj);
        for t in &mut w.templates {
            t.containers = Some(t.build_containers());
        }
        w
    }

    /// Like [`Workload::of`], without resolving containers up front.
    pub fn templates_of(obj: &'a Object) -> Workload<'a> {
        let mut w = Workload {
            obj,
            clusters: Vec::new(),
            templates: Vec::new(),
        };
        let root = &obj.root;
        let spec_path = JsonPath::root().key("spec");
        match obj.kind {
            Kind::Pod => w.push_template(PodRole::Workload, JsonPath::root(), root, None),
            Kind::Deployment
            | Kind::StatefulSet
            | Kind::DaemonSet
            | Kind::ReplicaSet
            | Kind::Job => {
                if let Some(t) = root.path(&["spec", "template"]) {
                    w.push_template(PodRole::Workload, spec_path.key("template"), t, None);
                }
            }
            Kind::CronJob => {
                if let Some(t) = root.path(&["spec", "jobTemplate", "spec", "template"]) {
                    let p = spec_path.keys(&["jobTemplate", "spec", "template"]);
                    w.push_template(PodRole::Workload, p, t, None);
                }
            }
            Kind::RayCluster => {
                if let Some(spec) = root.get("spec") {
                    w.push_cluster(spec, spec_path, Some(obj.name.clone()));
                }
            }
            Kind::RayJob => {
                if let Some(spec) = root.get("spec") {
                    w.push_ray_job(spec, spec_path);
                }
            }
            Kind::RayCronJob => {
                if let Some(spec) = root.path(&["spec", "jobTemplate"]) {
                    w.push_ray_job(spec, spec_path.key("jobTemplate"));
                }
            }
            Kind::RayService => {
                if let Some(spec) = root.path(&["spec", "rayClusterConfig"]) {
                    w.push_cluster(spec, spec_path.key("rayClusterConfig"), None);
                }
            }
            _ => {}
        }
        w
    }

    fn push_template(
        &mut self,
        role: PodRole,
        path: JsonPath,
        node: &'a Node,
        cluster: Option<usize>,
    ) {
        if !node.is_map() {
            return;
        }
        self.templates.push(PodTemplate {
            role,
            path,
            node,
            cluster,
            ray_start_params: None,
            containers: None,
        });
    }

    fn push_ray_job(&mut self, spec: &'a Node, path: JsonPath) {
        if let Some(cs) = spec.get("rayClusterSpec") {
            self.push_cluster(cs, path.key("rayClusterSpec"), None);
        }
        if let Some(t) = spec.get("submitterPodTemplate") {
            self.push_template(
                PodRole::Submitter,
                path.key("submitterPodTemplate"),
                t,
                None,
            );
        }
    }

    fn push_cluster(&mut self, spec: &'a Node, path: JsonPath, name: Option<String>) {
        if !spec.is_map() {
            return;
        }
        let ci = self.clusters.len();
        self.clusters.push(RayClusterSpec {
            node: spec,
            path: path.clone(),
            name,
        });
        if let Some(head) = spec.get("headGroupSpec") {
            if let Some(t) = head.get("template") {
                let p = path.keys(&["headGroupSpec", "template"]);
                self.push_template(PodRole::Head, p, t, Some(ci));
                if let Some(last) = self.templates.last_mut() {
                    last.ray_start_params = head.get("rayStartParams");
                }
            }
        }
        if let Some(groups) = spec.get("workerGroupSpecs") {
            for (i, g) in groups.as_seq().iter().enumerate() {
                let Some(t) = g.get("template") else { continue };
                let group = g
                    .get("groupName")
                    .and_then(Node::as_str)
                    .unwrap_or("")
                    .to_string();
                let p = path.key("workerGroupSpecs").idx(i).key("template");
                self.push_template(PodRole::Worker { group }, p, t, Some(ci));
                if let Some(last) = self.templates.last_mut() {
                    last.ray_start_params = g.get("rayStartParams");
                }
            }
        }
    }

    /// The template of a Ray cluster's head, if any.
    pub fn head_of(&self, cluster: usize) -> Option<&PodTemplate<'a>> {
        self.templates
            .iter()
            .find(|t| t.cluster == Some(cluster) && t.role == PodRole::Head)
    }

    /// The autoscaler container of a cluster, when KubeRay will add one.
    pub fn autoscaler(&self, cluster: usize) -> Option<Container<'a>> {
        let c = self.clusters.get(cluster)?;
        if !c.autoscaler_enabled() {
            return None;
        }
        let head = self.head_of(cluster);
        let (node, pos) = match c.get("autoscalerOptions") {
            Some(n) if n.is_map() => (n, n.pos),
            _ => (
                &EMPTY_MAP,
                c.node
                    .get("enableInTreeAutoscaling")
                    .map_or(c.node.pos, |n| n.pos),
            ),
        };
        Some(Container {
            kind: ContainerKind::Autoscaler,
            index: 0,
            path: c.path.key("autoscalerOptions"),
            node,
            pos,
            pod_spec: head.map_or(&EMPTY_MAP, |h| h.spec()),
            pod_spec_path: head.map_or_else(JsonPath::root, |h| h.spec_path()),
            ray_node: false,
        })
    }

    /// Every container of every template, plus the autoscaler containers.
    pub fn containers(&self) -> Vec<(Option<&PodTemplate<'a>>, Container<'a>)> {
        let mut out = Vec::new();
        for t in &self.templates {
            for c in t.containers() {
                out.push((Some(t), c));
            }
        }
        for ci in 0..self.clusters.len() {
            if let Some(a) = self.autoscaler(ci) {
                out.push((self.head_of(ci), a));
            }
        }
        out
    }
}
