use super::JobSpec;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;

declare_rule! {
    /// ## What it checks
    /// RayJobs, and the `spec.jobTemplate` of RayCronJobs, with a non-empty
    /// `clusterSelector`: KubeRay then submits the job to an existing RayCluster that
    /// matches the labels (and ignores `rayClusterSpec`) instead of creating a cluster for
    /// the job. An empty `clusterSelector: {}` selects nothing and is not reported.
    ///
    /// ## Why it matters (guide §9)
    /// The guide's "one job per cluster": a RayJob should run in a RayCluster of its own,
    /// so jobs are isolated by their containers and a failing or malicious job cannot read
    /// another job's objects, logs, runtime environments or credentials, or take the shared
    /// cluster down. Every job on a shared cluster runs with the same service account, the
    /// same mounted secrets and the same open ports as the others, and the cluster has to
    /// stay up (and reachable) between jobs.
    ///
    /// ## Example
    /// ```yaml
    /// kind: RayJob
    /// spec:
    ///   entrypoint: python train.py
    ///   clusterSelector:
    ///     ray.io/cluster: shared-cluster
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// kind: RayJob
    /// spec:
    ///   entrypoint: python train.py
    ///   shutdownAfterJobFinishes: true
    ///   rayClusterSpec:
    ///     headGroupSpec: ...
    /// ```
    pub struct RayjobSharedCluster {
        id: "RW902",
        name: "rayjob-shared-cluster",
        severity: Medium,
        section: "9",
        summary: "RayJob runs on an existing, shared RayCluster (`clusterSelector`)",
        fix: "Give the RayJob its own `rayClusterSpec` (with `shutdownAfterJobFinishes: true`) instead of `clusterSelector`.",
        scope: Object,
        fixer: None,
        companion: None,
        ray_kinds: &["RayJob", "RayCronJob"],
    }
}

impl Rule for RayjobSharedCluster {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let Some(job) = JobSpec::of(w.obj) else {
            return;
        };
        let Some((key, sel)) = job.cluster_selector() else {
            return;
        };
        let labels: Vec<String> = sel
            .as_map()
            .iter()
            .filter_map(|(k, v)| Some(format!("{}={}", k.as_str()?, v.as_str().unwrap_or(""))))
            .collect();
        out.report(
            w.obj,
            job.path.key("clusterSelector"),
            key.pos,
            format!(
                "{} runs on an existing RayCluster selected by `clusterSelector` ({}): the cluster is shared with other jobs, so this job is not isolated from them",
                job.what,
                labels.join(", ")
            ),
        );
    }
}
