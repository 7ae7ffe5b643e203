//! Guide §6: image security and Ray versions.

mod image_mutable_tag;
mod image_registry_not_allowed;
mod kuberay_operator_outdated;
mod ray_version_mismatch;
mod ray_version_vulnerable;

pub(crate) use ray_version_vulnerable::RayVersionVulnerable;

use crate::Rule;
use rayward_manifest::{Container, ContainerKind, JsonPath, Node, PodRole, PodTemplate, Workload};

pub(crate) const RULES: &[&dyn Rule] = &[
    &image_mutable_tag::ImageMutableTag,
    &image_registry_not_allowed::ImageRegistryNotAllowed,
    &ray_version_vulnerable::RayVersionVulnerable,
    &ray_version_mismatch::RayVersionMismatch,
    &kuberay_operator_outdated::KuberayOperatorOutdated,
];

/// One `image` field of a container. Its path and description are built only when a rule
/// reports it.
pub(crate) struct ImageUse<'a, 'b> {
    pub node: &'a Node,
    /// The reference, trimmed.
    pub image: &'a str,
    site: Site<'a, 'b>,
}

enum Site<'a, 'b> {
    Container(Option<&'b PodTemplate<'a>>, &'b Container<'a>),
    Collector(&'b JsonPath),
}

const COLLECTOR: [&str; 3] = ["historyServerOptions", "collectorOptions", "image"];

impl ImageUse<'_, '_> {
    pub fn path(&self) -> JsonPath {
        match &self.site {
            Site::Container(_, c) => c.field_path("image"),
            Site::Collector(cluster) => cluster.keys(&COLLECTOR),
        }
    }

    /// e.g. "container `ray-head` of the head group".
    pub fn who(&self) -> String {
        match &self.site {
            Site::Container(t, c) => describe(*t, c),
            Site::Collector(_) => {
                "the history-server collector container (injected into every Ray pod)".to_string()
            }
        }
    }
}

/// Calls `f` for every literal image of a workload: init and main containers of every pod
/// template, the autoscaler's `autoscalerOptions.image`, and the history-server collector
/// KubeRay injects into every Ray pod (`historyServerOptions.collectorOptions.image`). An
/// autoscaler without an image runs the head's Ray image (already seen); empty,
/// non-string and templated values (`$IMAGE`, `${IMAGE}`, `{{ .Values.image }}`,
/// `<image>`) are left out, since their value is unknown.
pub(crate) fn for_each_image<'a>(w: &Workload<'a>, mut f: impl FnMut(&ImageUse<'a, '_>)) {
    for (t, c) in &w.containers() {
        if let Some(node) = c.get("image") {
            if let Some(image) = literal(node) {
                f(&ImageUse {
                    node,
                    image,
                    site: Site::Container(*t, c),
                });
            }
        }
    }
    for cluster in &w.clusters {
        if let Some(node) = cluster.node.path(&COLLECTOR) {
            if let Some(image) = literal(node) {
                f(&ImageUse {
                    node,
                    image,
                    site: Site::Collector(&cluster.path),
                });
            }
        }
    }
}

/// An image value that can be judged: a non-empty string that is not a placeholder.
fn literal(node: &Node) -> Option<&str> {
    let image = node.as_str()?.trim();
    (!image.is_empty() && !is_templated(image)).then_some(image)
}

/// Whether an image is a placeholder filled in later by a template or `envsubst`.
pub(crate) fn is_templated(image: &str) -> bool {
    image.contains('$') || image.contains("{{") || image.contains('<')
}

/// Names a container for a message: "init container `setup` of worker group `gpu`".
pub(crate) fn describe(t: Option<&PodTemplate<'_>>, c: &Container<'_>) -> String {
    let what = match c.kind {
        ContainerKind::Init => format!("init container `{}`", c.name()),
        ContainerKind::Main => format!("container `{}`", c.name()),
        ContainerKind::Autoscaler => return "the autoscaler container".to_string(),
    };
    match t {
        Some(t) => format!("{what}{}", of_role(&t.role)),
        None => what,
    }
}

/// " of the head group", " of worker group `gpu`", … (empty for plain workloads).
fn of_role(role: &PodRole) -> String {
    match role {
        PodRole::Head => " of the head group".to_string(),
        PodRole::Worker { group } => format!(" of worker group `{group}`"),
        PodRole::Submitter => " of the submitter pod".to_string(),
        PodRole::Workload => String::new(),
    }
}

/// The image of the container Ray runs in (`containers[0]` of a head or worker pod, as
/// KubeRay's `RayContainerIndex`), when it is a literal. Cheaper than walking every
/// container: the version rules look at nothing else.
pub(crate) struct RayImage<'a> {
    pub node: &'a Node,
    pub image: &'a str,
    container: &'a Node,
    template: &'a PodTemplate<'a>,
}

impl<'a> RayImage<'a> {
    pub fn of(t: &'a PodTemplate<'a>) -> Option<RayImage<'a>> {
        if !t.role.is_ray_node() {
            return None;
        }
        let container = t.field("containers")?.as_seq().first()?;
        let node = container.get("image")?;
        Some(RayImage {
            node,
            image: literal(node)?,
            container,
            template: t,
        })
    }

    pub fn path(&self) -> JsonPath {
        self.template
            .spec_path()
            .key("containers")
            .idx(0)
            .key("image")
    }

    /// "container `ray-head` of the head group".
    pub fn who(&self) -> String {
        let name = self
            .container
            .get("name")
            .and_then(Node::as_str)
            .unwrap_or("");
        format!("container `{name}`{}", of_role(&self.template.role))
    }
}
