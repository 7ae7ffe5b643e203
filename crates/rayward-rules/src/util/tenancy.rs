//! Namespace matching, pod descriptions and GPU detection for the whole-run rules of
//! §1.4 (network), §2-§3 (tenancy) and §4 (RBAC).

use rayward_manifest::quantity;
use rayward_manifest::{Node, PodRole, PodTemplate, Workload};

pub use rayward_manifest::names::{ns_key, same_namespace};

/// A namespace for messages.
pub fn ns_display(ns: Option<&str>) -> String {
    match ns {
        Some(n) if !n.is_empty() => format!("`{n}`"),
        _ => "(not set: kubectl's current namespace, usually `default`)".to_string(),
    }
}

/// `RayCluster `x``, `RayJob `y``.
pub fn obj_display(w: &Workload<'_>) -> String {
    format!("{} `{}`", w.obj.kind_name, w.obj.name)
}

/// What a pod template is, for messages: "the head pod of RayCluster `x`",
/// "worker group `g` of RayJob `y`", "the submitter pod of RayJob `z`".
pub fn pod_display(w: &Workload<'_>, t: &PodTemplate<'_>) -> String {
    let o = obj_display(w);
    match &t.role {
        PodRole::Head => format!("the head pod of {o}"),
        PodRole::Worker { group } if group.is_empty() => format!("a worker group of {o}"),
        PodRole::Worker { group } => format!("worker group `{group}` of {o}"),
        PodRole::Submitter => format!("the submitter pod of {o}"),
        PodRole::Workload => format!("the pods of {o}"),
    }
}

/// Whether a pod template belongs to a Ray object (head, worker or RayJob submitter).
pub fn is_ray_template(w: &Workload<'_>, t: &PodTemplate<'_>) -> bool {
    w.obj.kind.is_ray() && t.role != PodRole::Workload
}

pub use rayward_manifest::quantity::is_gpu_resource;

/// The GPUs a pod template asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuUse {
    /// GPU resources requested or limited (> 0) by any container, init containers included.
    pub resources: Vec<String>,
    /// `rayStartParams.num-gpus` > 0 (Ray is told about GPUs; the Kubernetes resource name
    /// is then unknown unless a container names it).
    pub num_gpus: bool,
}

impl GpuUse {
    pub fn any(&self) -> bool {
        self.num_gpus || !self.resources.is_empty()
    }
}

/// The GPUs a pod template uses.
pub fn gpu_use(t: &PodTemplate<'_>) -> GpuUse {
    let mut out = GpuUse::default();
    for c in t.containers() {
        for part in ["limits", "requests"] {
            let Some(m) = c.node.path(&["resources", part]) else {
                continue;
            };
            for (k, v) in m.as_map() {
                let Some(k) = k.as_str() else { continue };
                if is_gpu_resource(k)
                    && quantity::of(v).is_some_and(|q| q > 0.0)
                    && !out.resources.iter().any(|r| r == k)
                {
                    out.resources.push(k.to_string());
                }
            }
        }
    }
    out.num_gpus = t
        .ray_start_params
        .and_then(|p| p.get("num-gpus"))
        .and_then(Node::as_str)
        .and_then(quantity::parse)
        .is_some_and(|q| q > 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_namespace_is_default() {
        assert!(same_namespace(None, Some("default")));
        assert!(same_namespace(Some(""), None));
        assert!(!same_namespace(None, Some("team-a")));
        assert!(same_namespace(Some("team-a"), Some("team-a")));
    }

    #[test]
    fn gpu_resource_names() {
        for n in [
            "nvidia.com/gpu",
            "amd.com/gpu",
            "aliyun.com/gpu-mem",
            "aliyun.com/gpu-count",
            "gpu.intel.com/gpu",
        ] {
            assert!(is_gpu_resource(n), "{n}");
        }
        for n in [
            "cpu",
            "memory",
            "nvidia.com/mig-1g.5gb-x",
            "gpu",
            "google.com/tpu",
        ] {
            assert!(!is_gpu_resource(n), "{n}");
        }
    }
}
