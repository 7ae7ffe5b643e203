//! Guide §1.6 and §9: RayJob submission and one job per cluster.

pub(crate) mod rayjob_no_history;
mod rayjob_no_shutdown;
mod rayjob_shared_cluster;
mod rayjob_submission_mode;

use crate::Rule;
use rayward_manifest::{JsonPath, Kind, Node, Object};

pub(crate) const RULES: &[&dyn Rule] = &[
    &rayjob_submission_mode::RayjobSubmissionMode,
    &rayjob_shared_cluster::RayjobSharedCluster,
    &rayjob_no_shutdown::RayjobNoShutdown,
    &rayjob_no_history::RayjobNoHistory,
];

/// A RayJob spec: a RayJob's `spec`, or the `spec.jobTemplate` a RayCronJob creates its
/// RayJobs from.
pub(crate) struct JobSpec<'a> {
    pub node: &'a Node,
    pub path: JsonPath,
    /// "RayJob" or "RayCronJob job template", for messages.
    pub what: &'static str,
}

impl<'a> JobSpec<'a> {
    pub fn of(obj: &'a Object) -> Option<JobSpec<'a>> {
        let spec_path = JsonPath::root().key("spec");
        let (node, path, what) = match obj.kind {
            Kind::RayJob => (obj.root.get("spec")?, spec_path, "RayJob"),
            Kind::RayCronJob => (
                obj.root.path(&["spec", "jobTemplate"])?,
                spec_path.key("jobTemplate"),
                "RayCronJob job template",
            ),
            _ => return None,
        };
        node.is_map().then_some(JobSpec { node, path, what })
    }

    /// The `clusterSelector` when it selects something: KubeRay then runs the job on an
    /// existing RayCluster and ignores `rayClusterSpec`.
    /// Returns the key node (where findings point: the `clusterSelector:` line) and the map.
    pub fn cluster_selector(&self) -> Option<(&'a Node, &'a Node)> {
        self.node
            .get_entry("clusterSelector")
            .filter(|(_, v)| !v.as_map().is_empty())
    }
}
