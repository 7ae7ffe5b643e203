use super::JobSpec;
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::{Node, PodRole, Workload};

declare_rule! {
    /// ## What it checks
    /// RayJobs, and the `spec.jobTemplate` of RayCronJobs, that create their own cluster
    /// (`rayClusterSpec`, no `clusterSelector`) whose head pod runs no history collector:
    /// no container runs `rayward history collect` (its `command` and `args` together hold
    /// `history collect`). Jobs with `clusterSelector` run on a cluster they do not own: its
    /// owner's concern.
    ///
    /// ## Why it matters (guide §1.5.2, §9)
    /// "The native Ray Dashboard is only available when the Ray cluster is running. You
    /// cannot obtain historical logs and monitoring data after the cluster is terminated."
    /// A job's cluster is deleted with it (`shutdownAfterJobFinishes: true`, RW903), and
    /// with the cluster go the driver's traceback, every worker's logs, the task and actor
    /// tables and the job's final state: the evidence of a failed or misused job, exactly
    /// when it is needed. A collector ships them to object storage as the job runs
    /// (docs/history.md).
    ///
    /// Severity info: losing evidence is not an opening by itself, and only the user can
    /// choose a store, so harden without `--history` cannot fix it and its default
    /// `--fail-on low` stays unchanged for jobs that keep no history.
    ///
    /// ## Example
    /// ```yaml
    /// kind: RayJob
    /// spec:
    ///   shutdownAfterJobFinishes: true
    ///   rayClusterSpec:
    ///     headGroupSpec:
    ///       template:
    ///         spec:
    ///           containers: [{name: ray-head, image: rayproject/ray:2.60.0}]
    /// ```
    ///
    /// ## Fix
    /// `rayward harden --history s3://BUCKET/PREFIX` adds the collector to every head and
    /// worker pod, with the export variables, the shared session volume, the preStop, the
    /// grace period and egress to the store:
    /// ```yaml
    ///           containers:
    ///           - name: ray-head
    ///             ...
    ///           - name: rayward-history
    ///             args: [history, collect, --store, s3://BUCKET/PREFIX, --head, ...]
    /// ```
    pub struct RayjobNoHistory {
        id: "RW904",
        name: "rayjob-no-history",
        severity: Info,
        section: "9",
        summary: "RayJob's cluster runs no history collector: its logs and job states are lost with the cluster",
        fix: "Run `rayward harden --history STORE_URL` to add the history collector (`rayward history collect`) to the job's Ray pods.",
        scope: Object,
        fixer: None,
        companion: None,
        ray_kinds: &["RayJob", "RayCronJob"],
    }
}

/// Whether a container runs `rayward history collect`.
pub(crate) fn is_collector(c: &Node) -> bool {
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|k| c.get(k).map(Node::as_seq).unwrap_or(&[]))
        .filter_map(Node::as_str)
        .collect();
    words.windows(2).any(|w| w == ["history", "collect"])
}

impl Rule for RayjobNoHistory {
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
        let collected = w
            .templates
            .iter()
            .filter(|t| t.role == PodRole::Head)
            .any(|t| {
                t.node
                    .path(&["spec", "containers"])
                    .map(Node::as_seq)
                    .unwrap_or(&[])
                    .iter()
                    .any(is_collector)
            });
        if collected {
            return;
        }
        let when = if job
            .node
            .get("shutdownAfterJobFinishes")
            .and_then(Node::as_bool)
            == Some(true)
        {
            "is deleted when the job finishes"
        } else {
            "ends"
        };
        out.report(
            w.obj,
            job.path.key("rayClusterSpec"),
            cs_key.pos,
            format!(
                "{} creates its own RayCluster without a history collector: once the cluster {when}, the job's logs, tracebacks, task and actor tables and final state are gone",
                job.what
            ),
        );
    }
}
