use super::JobSpec;
use crate::fix::{Changes, Fix, FixContext};
use crate::{declare_rule, Ctx, Rule, Sink};
use rayward_manifest::Workload;
use rayward_manifest::{Node, Object};

declare_rule! {
    /// ## What it checks
    /// RayJobs, and the `spec.jobTemplate` of RayCronJobs, whose `submissionMode` is set to
    /// anything but `K8sJobMode`. A missing (or empty) `submissionMode` is `K8sJobMode`,
    /// KubeRay's default, and is not reported. What each other mode means (KubeRay's API
    /// documentation of `submissionMode` and its samples):
    ///
    /// - `HTTPMode`: the KubeRay operator itself submits the job with an HTTP request to the
    ///   cluster's dashboard Jobs API (port 8265). The Jobs API must accept job submissions
    ///   from the operator's namespace, and there is no submitter Kubernetes Job: no
    ///   `submitterConfig.backoffLimit` retries and no submitter pod whose logs keep the
    ///   job's output.
    /// - `InteractiveMode`: KubeRay does not submit anything; the RayJob waits until a user
    ///   runs `ray job submit` against the dashboard and writes the job id into
    ///   `spec.jobId`. Users need direct access to the Jobs API, the very endpoint §1.5
    ///   keeps private.
    /// - `SidecarMode`: the operator injects the submitter as a container into the Ray head
    ///   pod. It shares the head's network namespace, service account and mounted
    ///   credentials, and cannot be restricted or scheduled apart from the head.
    /// - any other value is not a mode KubeRay knows.
    ///
    /// ## Why it matters (guide §1.6)
    /// The guide asks for `submissionMode: K8sJobMode`: a separate Kubernetes Job in the
    /// RayJob's namespace runs `ray job submit`, so the dashboard's Jobs API only has to be
    /// reachable from that namespace (a NetworkPolicy can allow just the submitter pod),
    /// and submission gets a pod of its own with its own identity, retries and logs.
    ///
    /// ## Example
    /// ```yaml
    /// kind: RayJob
    /// spec:
    ///   submissionMode: HTTPMode
    /// ```
    ///
    /// ## Fix
    /// ```yaml
    /// kind: RayJob
    /// spec:
    ///   submissionMode: K8sJobMode
    /// ```
    pub struct RayjobSubmissionMode {
        id: "RW901",
        name: "rayjob-submission-mode",
        severity: Medium,
        section: "1.6",
        summary: "RayJob does not use `submissionMode: K8sJobMode`",
        fix: "Set `submissionMode: K8sJobMode` (or remove the field: it is the default).",
        scope: Object,
        fixer: Some(&RayjobSubmissionMode),
        companion: None,
        ray_kinds: &["RayJob", "RayCronJob"],
    }
}

/// Why a mode other than K8sJobMode is a problem.
fn why(mode: &str) -> String {
    match mode {
        "HTTPMode" => "the KubeRay operator submits the job itself with an HTTP request to the dashboard's Jobs API (port 8265), which must then accept submissions from the operator's namespace, and there is no submitter Kubernetes Job (no `submitterConfig.backoffLimit` retries, no submitter pod logs)".to_string(),
        "InteractiveMode" => "KubeRay does not submit the job; it waits for a user to run `ray job submit` against the dashboard and set `spec.jobId`, so users need direct access to the Jobs API".to_string(),
        "SidecarMode" => "the submitter runs as a container injected into the Ray head pod, sharing the head's network namespace, service account and mounted credentials instead of running as its own Kubernetes Job".to_string(),
        _ => "this is not a mode KubeRay knows (K8sJobMode, HTTPMode, InteractiveMode, SidecarMode)".to_string(),
    }
}

impl Rule for RayjobSubmissionMode {
    fn check(&self, w: &Workload<'_>, _cx: &Ctx<'_>, out: &mut Sink<'_>) {
        let Some(job) = JobSpec::of(w.obj) else {
            return;
        };
        let Some(node) = job.node.get("submissionMode") else {
            return;
        };
        let Some(mode) = node.as_str().map(str::trim) else {
            return;
        };
        if mode.is_empty() || mode == "K8sJobMode" {
            return;
        }
        out.report(
            w.obj,
            job.path.key("submissionMode"),
            node.pos,
            format!("{} uses `submissionMode: {mode}`: {}", job.what, why(mode)),
        );
    }
}

impl Fix for RayjobSubmissionMode {
    fn safe(&self) -> bool {
        true
    }

    /// Sets `submissionMode: K8sJobMode` (explicitly, also where it is the default). A
    /// job without an `entrypoint` (InteractiveMode waits for one) is left as it is: K8sJobMode
    /// needs one, and what to run is the user's choice.
    fn fix(&self, obj: &mut Object, _cx: &FixContext<'_>) -> Vec<crate::Change> {
        let mut ch = Changes::new(Self::META.id);
        let Some(path) = JobSpec::of(obj).map(|j| j.path) else {
            return ch.list;
        };
        let Some(job) = obj.root.at_path_mut(&path) else {
            return ch.list;
        };
        let mode = job
            .get("submissionMode")
            .and_then(Node::as_str)
            .map(str::trim);
        if mode == Some("K8sJobMode") {
            return ch.list;
        }
        let has_entrypoint = job
            .get("entrypoint")
            .and_then(Node::as_str)
            .is_some_and(|e| !e.trim().is_empty());
        if mode.is_some_and(|m| !m.is_empty()) && !has_entrypoint {
            return ch.list;
        }
        job.set("submissionMode", Node::string("K8sJobMode"));
        ch.add(
            &path.key("submissionMode"),
            "submit from a Kubernetes Job (K8sJobMode)",
        );
        ch.list
    }
}
