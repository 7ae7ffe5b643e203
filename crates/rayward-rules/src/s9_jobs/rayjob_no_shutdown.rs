use super::JobSpec;
use crate::fix::{Changes, Fix, FixContext};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Object;
use rayward_manifest::{Node, Workload};

declare_rule! {
    /// ## What it checks
    /// RayJobs, and the `spec.jobTemplate` of RayCronJobs, that create their own cluster
    /// (`rayClusterSpec`, no `clusterSelector`) but do not delete it when the job ends:
    /// `shutdownAfterJobFinishes` is missing or not `true` (KubeRay's default is `false`).
    ///
    /// A `deletionStrategy` (feature gate `RayJobDeletionPolicy`) counts when it deletes the
    /// cluster both after success and after failure: `onSuccess` and `onFailure` with policy
    /// `DeleteCluster` or `DeleteSelf`, or `deletionRules` with such a policy for
    /// `jobStatus: SUCCEEDED` and for `jobStatus: FAILED` (or `jobDeploymentStatus: Failed`).
    /// `DeleteWorkers` keeps the head, and with it the dashboard, so it does not count.
    /// Jobs with `clusterSelector` run on a cluster they do not own and are RW902's concern.
    ///
    /// ## Why it matters (guide §9)
    /// "One job per cluster" only isolates jobs if the cluster goes away with its job. A
    /// cluster left running keeps its dashboard and Jobs API (port 8265, which runs code),
    /// GCS and Ray Client ports open, its service account token mounted and its resources
    /// reserved, with nobody watching it; the next person who reaches it can run jobs on
    /// it. A RayCronJob without it keeps reusing the same cluster between runs.
    ///
    /// ## Example
    /// ```yaml
    /// kind: RayJob
    /// spec:
    ///   entrypoint: python train.py
    ///   rayClusterSpec:
    ///     headGroupSpec: ...
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// kind: RayJob
    /// spec:
    ///   entrypoint: python train.py
    ///   shutdownAfterJobFinishes: true
    ///   ttlSecondsAfterFinished: 60
    ///   rayClusterSpec:
    ///     headGroupSpec: ...
    /// ```
    pub struct RayjobNoShutdown {
        id: "RW903",
        name: "rayjob-no-shutdown",
        severity: Low,
        section: "9",
        summary: "RayJob's own RayCluster keeps running after the job (`shutdownAfterJobFinishes` not true)",
        fix: "Set `shutdownAfterJobFinishes: true` (and a short `ttlSecondsAfterFinished`) so the cluster is deleted when the job ends.",
        scope: Object,
        fixer: Some(&RayjobNoShutdown),
        companion: None,
        ray_kinds: &["RayJob", "RayCronJob"],
    }
}

/// Policies that delete the head (and with it every port of the cluster).
fn deletes_cluster(policy: Option<&Node>) -> bool {
    matches!(
        policy.and_then(Node::as_str),
        Some("DeleteCluster" | "DeleteSelf")
    )
}

/// Whether a `deletionStrategy` deletes the cluster after success and after failure.
fn deletion_covers(ds: &Node) -> (bool, bool) {
    let mut success = deletes_cluster(ds.path(&["onSuccess", "policy"]));
    let mut failure = deletes_cluster(ds.path(&["onFailure", "policy"]));
    for rule in ds.get("deletionRules").map(Node::as_seq).unwrap_or(&[]) {
        if !deletes_cluster(rule.get("policy")) {
            continue;
        }
        let cond = |k: &str| rule.path(&["condition", k]).and_then(Node::as_str);
        match (cond("jobStatus"), cond("jobDeploymentStatus")) {
            (Some("SUCCEEDED"), _) => success = true,
            (Some("FAILED"), _) | (_, Some("Failed")) => failure = true,
            _ => {}
        }
    }
    (success, failure)
}

impl Rule for RayjobNoShutdown {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let Some(job) = JobSpec::of(w.obj) else {
            return;
        };
        if job.cluster_selector().is_some() {
            return;
        }
        let Some((cs_key, cs)) = job.node.get_entry("rayClusterSpec") else {
            return;
        };
        if !cs.is_map() {
            return;
        }
        let shutdown = job.node.get("shutdownAfterJobFinishes");
        if shutdown.and_then(Node::as_bool) == Some(true) {
            return;
        }
        let what = job.what;
        if let Some((ds_key, ds)) = job.node.get_entry("deletionStrategy") {
            let outcome = match deletion_covers(ds) {
                (true, true) => return,
                (true, false) => "fails",
                (false, true) => "succeeds",
                (false, false) => "finishes",
            };
            out.report(
                w.obj,
                job.path.key("deletionStrategy"),
                ds_key.pos,
                format!(
                    "{what} creates its own RayCluster, but its `deletionStrategy` does not delete the cluster (`DeleteCluster` or `DeleteSelf`) when the job {outcome}: the cluster and its open ports outlive the job"
                ),
            );
            return;
        }
        let (pos, state) = match shutdown {
            Some(n) if n.as_bool() == Some(false) => (n.pos, "is `false`"),
            Some(n) => (n.pos, "is not the boolean `true`"),
            None => (cs_key.pos, "is not set (default `false`)"),
        };
        out.report(
            w.obj,
            job.path.key("shutdownAfterJobFinishes"),
            pos,
            format!(
                "{what} creates its own RayCluster, but `shutdownAfterJobFinishes` {state}: the cluster, its dashboard/Jobs API and other open ports keep running after the job ends"
            ),
        );
    }
}

impl Fix for RayjobNoShutdown {
    fn safe(&self) -> bool {
        true
    }

    /// Sets `shutdownAfterJobFinishes: true` on a job that creates its own cluster;
    /// `ttlSecondsAfterFinished` is left unset, which KubeRay reads as 0: the cluster goes
    /// as soon as the job ends (a user who wants time to read logs sets it). A job
    /// with a `deletionStrategy` is left alone: KubeRay refuses both together, and which
    /// outcome should delete what is the user's choice.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let Some(path) = JobSpec::of(obj)
            .filter(|j| j.cluster_selector().is_none())
            .filter(|j| j.node.get("rayClusterSpec").is_some_and(Node::is_map))
            .filter(|j| j.node.get("deletionStrategy").is_none())
            .map(|j| j.path)
        else {
            return ch.list;
        };
        if let Some(job) = obj.root.at_path_mut(&path) {
            if job.get("shutdownAfterJobFinishes").and_then(Node::as_bool) != Some(true) {
                job.set("shutdownAfterJobFinishes", Node::boolean(true));
                ch.add(
                    &path.key("shutdownAfterJobFinishes"),
                    "delete the cluster when the job finishes",
                );
            }
        }
        ch.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayward_manifest::{load_bytes, Limits};

    fn covers(yaml: &str) -> (bool, bool) {
        let l = load_bytes("t.yaml", yaml.as_bytes(), &Limits::default());
        let o = &l.objects[0];
        deletion_covers(o.root.path(&["spec", "deletionStrategy"]).unwrap())
    }

    #[test]
    fn deletion_strategies() {
        let head = "apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: j}\nspec:\n  deletionStrategy:\n";
        assert_eq!(
            covers(&format!("{head}    onSuccess: {{policy: DeleteCluster}}\n    onFailure: {{policy: DeleteNone}}\n")),
            (true, false)
        );
        assert_eq!(
            covers(&format!("{head}    deletionRules:\n    - {{condition: {{jobStatus: SUCCEEDED}}, policy: DeleteSelf}}\n    - {{condition: {{jobDeploymentStatus: Failed}}, policy: DeleteCluster}}\n")),
            (true, true)
        );
        assert_eq!(
            covers(&format!("{head}    deletionRules:\n    - {{condition: {{jobStatus: FAILED}}, policy: DeleteWorkers}}\n")),
            (false, false)
        );
    }
}
