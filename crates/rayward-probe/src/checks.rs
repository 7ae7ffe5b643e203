//! What `rayward probe` reports: one declaration per question, documented like the rules
//! (`rayward explain RW120`; `docs/probe.md`). Ids RW120–RW125 sit in guide §1.5
//! (exposure): they are the same exposure, seen from the network instead of the manifest.

use rayward_rules::declare_rule;

declare_rule! {
    /// ## What it checks
    /// The Ray dashboard's Jobs API (8265): `GET /api/jobs/` sent with no credentials.
    /// A `200` means whoever reaches the port can list jobs, and submit one: Ray runs the
    /// entrypoint of a submitted job as a shell command (CVE-2023-48022, "ShadowRay").
    /// A `401` or `403` means Ray's token authentication (Ray ≥ 2.52) or a proxy in front
    /// asks for credentials: no finding.
    ///
    /// ## Why it matters (guide §1.5)
    /// The Jobs API is remote code execution by design. Exposed without authentication it
    /// has been exploited at scale since 2023.
    ///
    /// ## Fix
    /// Turn on Ray's token authentication (`spec.authOptions.mode: token`, KubeRay ≥ 1.5.1)
    /// and keep 8265 behind an authenticating proxy (`rayward gateway`) and a NetworkPolicy.
    pub struct JobsApiOpen {
        id: "RW120",
        name: "probe-jobs-api-open",
        severity: Critical,
        section: "1.5",
        summary: "The Jobs API answers without credentials (probed)",
        fix: "Enable Ray token auth (`spec.authOptions.mode: token`) and put the dashboard behind an authenticating proxy and a NetworkPolicy.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

declare_rule! {
    /// ## What it checks
    /// The dashboard agent (52365) of a Ray node: `GET /api/job_agent/jobs/` with no
    /// credentials. Ray's token check answers `401`/`403` before any route; any other
    /// answer (the route's own `405`, a `404`, a `200`) means the request reached the job
    /// agent, which accepts `POST /api/job_agent/jobs/` (a job submission) the same way.
    ///
    /// ## Why it matters (guide §1.5)
    /// A proxy or policy that covers only 8265 is bypassed through 52365: the agent runs
    /// jobs too, on every node.
    ///
    /// ## Fix
    /// Enable Ray token auth on every node, and let only the cluster's own pods reach
    /// 52365 (a NetworkPolicy; `rayward harden` writes one).
    pub struct AgentOpen {
        id: "RW121",
        name: "probe-agent-open",
        severity: Critical,
        section: "1.5",
        summary: "The dashboard agent's job routes answer without credentials (probed)",
        fix: "Enable Ray token auth on every node and admit only the cluster's own pods to 52365.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

declare_rule! {
    /// ## What it checks
    /// The Ray Client server (10001): one read-only gRPC call with no credentials,
    /// `RayletDriver/ClusterInfo` with an empty request (type `IS_INITIALIZED`).
    /// `UNAUTHENTICATED` means it asks for a token first; any other answer means the call
    /// got past authentication: whoever reaches the port can `ray.init("ray://…")` and
    /// run code. A port that speaks TLS is not called.
    ///
    /// ## Why it matters (guide §1.5)
    /// The Ray Client runs arbitrary Python on the cluster for its caller. It is
    /// deprecated upstream, and rarely needed in Kubernetes.
    ///
    /// ## Fix
    /// Enable Ray token auth, or remove the port from the head Service and admit no one to
    /// 10001 in the NetworkPolicy.
    pub struct ClientOpen {
        id: "RW122",
        name: "probe-ray-client-open",
        severity: Critical,
        section: "1.5",
        summary: "The Ray Client port runs calls without credentials (probed)",
        fix: "Enable Ray token auth, or close 10001 (Service and NetworkPolicy).",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

declare_rule! {
    /// ## What it checks
    /// The GCS (6379): whether it speaks TLS. A TLS handshake is offered; a server that
    /// answers it speaks TLS (Ray's mutual TLS, `RAY_USE_TLS=1`). One that does not, and
    /// answers plaintext HTTP/2 instead, takes Ray's internal gRPC in the clear.
    ///
    /// ## Why it matters (guide §1.1)
    /// Without TLS the cluster's control traffic (and, without token auth, control of the
    /// cluster) is open to anyone on the pod network.
    ///
    /// ## Fix
    /// Enable Ray's mutual TLS (`rayward certs`, `rayward harden`).
    pub struct GcsPlaintext {
        id: "RW123",
        name: "probe-gcs-plaintext",
        severity: High,
        section: "1.1",
        summary: "The GCS port speaks plaintext (probed)",
        fix: "Enable Ray's mutual TLS (RAY_USE_TLS=1 with certificates from `rayward certs`).",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

declare_rule! {
    /// ## What it checks
    /// Ray Serve (8000) and the metrics port (8080): whether they answer `GET /` at all.
    /// Ray's token authentication does not cover Serve, and metrics reveal the cluster's
    /// nodes and workload.
    ///
    /// ## Why it matters (guide §1.5)
    /// What is reachable from where the probe runs is reachable by anything running
    /// there. Run from another namespace's pod, this tells whether the NetworkPolicies
    /// hold.
    ///
    /// ## Fix
    /// Expose Serve through an Ingress with authentication, and admit only Prometheus to
    /// 8080.
    pub struct PortReachable {
        id: "RW124",
        name: "probe-port-reachable",
        severity: Low,
        section: "1.5",
        summary: "A Ray Serve or metrics port answers (probed)",
        fix: "Admit only the clients that need it (NetworkPolicy); put Serve behind an authenticating Ingress.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

declare_rule! {
    /// ## What it checks
    /// The dashboard (8265): `GET /api/version` with no credentials, which Ray answers
    /// with its version when the dashboard is reachable and open. Reported as
    /// information, with the version, so that the run shows what it reached.
    ///
    /// ## Why it matters (guide §1.5, §6)
    /// A reachable dashboard tells its Ray version, and with it which CVEs apply.
    ///
    /// ## Fix
    /// Keep the dashboard private (ClusterIP, NetworkPolicy, authenticating proxy).
    pub struct DashboardReachable {
        id: "RW125",
        name: "probe-dashboard-reachable",
        severity: Info,
        section: "1.5",
        summary: "The dashboard answers and tells its Ray version (probed)",
        fix: "Keep the dashboard private: ClusterIP Service, NetworkPolicy, authenticating proxy.",
        scope: Object,
        fixer: None,
        companion: None,
    }
}

/// Every probe check, for listings and docs.
pub fn all() -> [&'static rayward_rules::RuleMeta; 6] {
    [
        &JobsApiOpen::META,
        &AgentOpen::META,
        &ClientOpen::META,
        &GcsPlaintext::META,
        &PortReachable::META,
        &DashboardReachable::META,
    ]
}
