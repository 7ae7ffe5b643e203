//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Secure-by-default tooling for Ray on Kubernetes.
///
/// Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or input error.
#[derive(Parser, Debug)]
#[command(name = "rayward", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Audit Kubernetes manifests (RayCluster, RayJob, RayService, RayCronJob and the
    /// objects around them) against the Ray security guide.
    Audit(AuditArgs),
    /// List the rule catalog.
    Rules(RulesArgs),
    /// Print one rule's documentation.
    Explain(ExplainArgs),
    /// Certificates for Ray's mutual TLS between nodes: a CA, node certificates, checks.
    Certs(CertsArgs),
    /// Rewrite Ray objects to their secure form and generate what must sit beside them
    /// (NetworkPolicies, ServiceAccount, quota, TLS), as YAML for `kubectl apply`.
    Harden(HardenArgs),
    /// Authenticating, authorizing, auditing proxy in front of the Ray dashboard and Jobs
    /// API (`--config FILE`; see docs/gateway.md), or `passwd` to manage its users.
    Gateway(GatewayArgs),
    /// Kubernetes admission webhook: the audit rules (and harden's safe fixes) applied to
    /// Ray objects and the Services/Ingresses that could expose them.
    Webhook(WebhookArgs),
    /// Ask running Ray endpoints, read-only, whether they answer without credentials
    /// (Jobs API, dashboard agent, Ray Client) and whether the GCS speaks TLS; targets
    /// given as HOST[:PORT] or discovered with --cluster (docs/probe.md).
    Probe(ProbeArgs),
    /// The audit of a running cluster kept current: objects re-judged as they change,
    /// findings as Prometheus metrics on /metrics, /healthz and /readyz (docs/watch.md).
    Watch(WatchArgs),
    /// Print every object of rayward's in-cluster deployment (webhook, gateway, watch) for
    /// `kubectl apply -f -`, or with --uninstall what to delete (docs/install.md).
    Install(InstallArgs),
    /// Ask the API server whether rayward's installation is healthy (after `linkerd
    /// check`): one line per check, a fix for each failure; exit 1 on any failure.
    Check(CheckArgs),
    /// The dashboard of terminated Ray clusters: `collect` (a sidecar per Ray pod) copies
    /// events, logs and dashboard snapshots to object storage (docs/history.md).
    History(HistoryArgs),
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Install the admission webhook (with none of --webhook, --gateway, --watch,
    /// --history: all).
    #[arg(long)]
    pub webhook: bool,
    /// Install the dashboard gateway.
    #[arg(long)]
    pub gateway: bool,
    /// Install the live audit (rayward watch).
    #[arg(long)]
    pub watch: bool,
    /// Install the Ray history server (`rayward history serve`, docs/history.md).
    #[arg(long)]
    pub history: bool,
    /// The store the history server reads (s3://, gs:// or az://; the collectors' store).
    #[arg(long, value_name = "URL", default_value = rayward_install::history_default_store())]
    pub history_store: String,
    /// The Secret holding the history store's credentials (key `credentials`, KEY=value
    /// lines); without it, the server's workload identity gives access.
    #[arg(long, value_name = "NAME")]
    pub history_credentials_secret: Option<String>,
    /// The Ray image the dashboard's static build is copied from (match your clusters'
    /// Ray version).
    #[arg(long, value_name = "IMAGE", default_value = rayward_install::history_default_dashboard_image())]
    pub history_dashboard_image: String,
    /// Namespace of every namespaced object.
    #[arg(short = 'n', long, default_value = "rayward-system", value_name = "NS")]
    pub namespace: String,
    /// Serving certificates: `generate` (a new CA now; see --reuse-from-cluster),
    /// `cert-manager` (Issuers and Certificates, caBundle by cainjector), or `secret:NAME`
    /// (an existing kubernetes.io/tls Secret; needs --ca-bundle with the webhook).
    #[arg(long, default_value = "generate", value_name = "MODE")]
    pub certs: String,
    /// With --certs=secret:NAME: the CA certificate (PEM) that signed the Secret's
    /// certificate, for the webhook configurations' caBundle.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// With --certs=generate: keep the serving certificates already in the cluster (the
    /// Secrets rayward-webhook-tls and rayward-gateway-tls of --namespace) instead of
    /// minting a new CA, so re-applying rotates nothing.
    #[arg(long)]
    pub reuse_from_cluster: bool,
    /// Kubeconfig file for --reuse-from-cluster (default: $KUBECONFIG, ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context for --reuse-from-cluster (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The rayward image every component runs, REPOSITORY[:TAG].
    #[arg(long, default_value = concat!("rayward:", env!("CARGO_PKG_VERSION")), value_name = "IMAGE")]
    pub image: String,
    /// Pin the image by digest (sha256:...): recommended, the pods then run exactly the
    /// image that was checked.
    #[arg(long, value_name = "DIGEST")]
    pub image_digest: Option<String>,
    /// The Ray dashboard the gateway fronts.
    #[arg(
        long,
        default_value = "http://raycluster-head-svc.default.svc:8265",
        value_name = "URL"
    )]
    pub gateway_upstream: String,
    /// One gateway for every Ray cluster of these namespaces (comma-separated) instead of
    /// one upstream: [discovery] and [kubernetes] in its config, and the RBAC and
    /// NetworkPolicy for exactly that. With --history too, the history server sits behind
    /// it under one login (both mount the Secret rayward-history-key, which you create).
    #[arg(
        long,
        value_name = "NS[,NS...]",
        value_delimiter = ',',
        conflicts_with = "gateway_upstream"
    )]
    pub gateway_discovery: Vec<String>,
    /// Print what to delete (every object install makes, cluster-scoped ones included)
    /// for `kubectl delete -f -`.
    #[arg(long)]
    pub uninstall: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Namespace of the installation.
    #[arg(short = 'n', long, default_value = "rayward-system", value_name = "NS")]
    pub namespace: String,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CheckFormat::Text)]
    pub output: CheckFormat,
    /// Also connect to the webhook at HOST:PORT (e.g. a `kubectl port-forward` of its
    /// Service) and require its certificate to verify against the configurations'
    /// caBundle under the Service's DNS name, as the API server does.
    #[arg(long, value_name = "HOST:PORT")]
    pub webhook_address: Option<String>,
    /// Seconds one request to the API server (or the webhook) may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub request_timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: HistoryCommand,
}

#[derive(Subcommand, Debug)]
pub enum HistoryCommand {
    /// Run beside one Ray container: receive Ray's exported events on a loopback
    /// endpoint, ship the session's logs, snapshot the dashboard API (head), and store
    /// everything under one prefix per namespace/kind/name/session; flush on SIGTERM.
    Collect(Box<HistoryCollectArgs>),
    /// List the stored clusters and sessions (read from the per-node indexes only):
    /// namespace, kind, name, session, nodes, start, end and the jobs' final states.
    Ls(HistoryLsArgs),
    /// Serve the dashboard of stored sessions behind the gateway's authentication: the
    /// listing of readable clusters and sessions, and Ray's own UI per session under
    /// /clusters/NAMESPACE/KIND/NAME/SESSION/, read-only, authorized by namespace.
    Serve(HistoryServeArgs),
    /// Delete stored sessions past the retention bounds (age, sessions per cluster, total
    /// bytes); a session still being written is never deleted.
    Gc(HistoryGcArgs),
}

#[derive(Args, Debug)]
pub struct HistoryGcArgs {
    /// Store URL, as for `history collect`.
    #[arg(long, value_name = "URL")]
    pub store: String,

    /// A mounted file of KEY=value lines for the store.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Delete sessions last updated longer ago than this (s, m, h, d, w: `30d`).
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<String>,

    /// Keep only the newest N sessions of each cluster.
    #[arg(long, value_name = "N")]
    pub max_sessions_per_cluster: Option<u64>,

    /// Past this size, delete the sessions updated longest ago (`50GiB`, `500MB`).
    #[arg(long, value_name = "SIZE")]
    pub max_total_bytes: Option<String>,

    /// An unfinished session counts as still being written (never deleted) for this long
    /// after its last write.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub grace: String,

    /// Print the decisions, delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = HistoryFormat::Text)]
    pub format: HistoryFormat,
}

#[derive(Args, Debug)]
pub struct HistoryServeArgs {
    /// The server's TOML config (docs/history.md#serve).
    #[arg(long, value_name = "FILE")]
    pub config: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct HistoryLsArgs {
    /// Store URL, as for `history collect`.
    #[arg(long, value_name = "URL")]
    pub store: String,

    /// A mounted file of KEY=value lines for the store.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Only this namespace (repeatable); the others are not read.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = HistoryFormat::Text)]
    pub format: HistoryFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct HistoryCollectArgs {
    /// Store URL: a directory, file:///DIR, s3://BUCKET/PREFIX (S3-compatible: set
    /// AWS_ENDPOINT_URL), gs://BUCKET/PREFIX or az://CONTAINER/PREFIX. Credentials come
    /// from the environment (workload identity) or --credentials-file, never the URL.
    #[arg(long, value_name = "URL")]
    pub store: String,

    /// A mounted file of KEY=value lines for the store (e.g. AWS_ACCESS_KEY_ID=…).
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,

    /// Namespace of the Ray cluster.
    #[arg(long, value_name = "NS")]
    pub namespace: String,

    /// KubeRay kind the cluster belongs to: RayCluster, RayJob or RayService.
    #[arg(long, value_name = "KIND", default_value = "RayCluster")]
    pub kind: String,

    /// Name of the RayCluster, RayJob or RayService.
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// This node's name in the store (the pod's name).
    #[arg(long, value_name = "NAME")]
    pub node: String,

    /// This is the head: also snapshot the dashboard API at --dashboard.
    #[arg(long)]
    pub head: bool,

    /// The head's dashboard (plain HTTP on the pod); the token is read from
    /// RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, as Ray reads it.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8265")]
    pub dashboard: String,

    /// Ray's temp dir (holding session_latest), shared with the Ray container.
    #[arg(long, value_name = "DIR", default_value = "/tmp/ray")]
    pub ray_dir: PathBuf,

    /// Address of the event endpoint (/v1/events, loopback peers only), /healthz and
    /// /metrics.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8084")]
    pub listen: std::net::SocketAddr,

    /// Local buffer for events and snapshots while the store is unreachable.
    #[arg(long, value_name = "DIR", default_value = "/tmp/rayward-history-spool")]
    pub spool_dir: PathBuf,

    /// Bound of the local buffer, in MiB; past it the oldest entries are dropped (counted).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub spool_mib: u64,

    /// Largest event POST accepted, in MiB (larger ones get 413).
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub max_event_body_mib: u64,

    /// Log bytes shipped per round at most, in MiB (bounds the time of one round).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub log_round_mib: u64,

    /// Seconds between rounds (logs, spool, index).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub interval: f64,

    /// Seconds between dashboard snapshots (head).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub snapshot_interval: f64,

    /// Least seconds between two writes of the index (the final flush writes at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub index_interval: f64,

    /// Seconds the final flush may take after SIGTERM (keep it under the pod's
    /// terminationGracePeriodSeconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 25.0)]
    pub final_flush: f64,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace to watch (repeatable; default: the context's namespace).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Watch every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespaces")]
    pub all_namespaces: bool,

    /// Label selector for the Ray objects.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Address of /metrics, /healthz and /readyz (plain HTTP).
    #[arg(long, default_value = "0.0.0.0:9464", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,

    /// Milliseconds of quiet after a change before the whole-run rules run again.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    pub settle_ms: u64,

    /// Write no Kubernetes Events (findings stay in /metrics).
    #[arg(long)]
    pub no_events: bool,

    /// Lowest severity that gets an Event on its object.
    #[arg(long, default_value = "medium", value_name = "SEVERITY")]
    pub event_severity: String,

    /// Events written per second at most (on average; bursts of --event-burst).
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub event_rate: f64,

    /// Events written at once at most.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub event_burst: u32,

    /// Minutes after which a finding still active is announced again (its Event's count
    /// goes up); keep it under the API server's Event TTL (60 minutes by default).
    #[arg(long, default_value_t = 30, value_name = "MINUTES")]
    pub event_repeat_minutes: u64,

    /// Elect a leader through a Lease: only the leader writes Events (run two or more
    /// replicas with this).
    #[arg(long)]
    pub leader_elect: bool,

    /// Namespace of the Lease (default: the context's; in a pod, its own).
    #[arg(long, value_name = "NS", requires = "leader_elect")]
    pub lease_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(long, default_value = "rayward-watch", value_name = "NAME")]
    pub lease_name: String,

    /// Seconds a silent leader keeps the Lease (failover takes at most this long).
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub lease_duration_seconds: u64,

    /// This replica's name in the Lease and in Events (default: $POD_NAME, else the host
    /// name and process id).
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,

    /// Config file (default: .rayward.toml upward from the current folder).
    #[arg(short, long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Use no config file.
    #[arg(long)]
    pub no_config: bool,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Hosts to probe: `HOST` (every Ray port) or `HOST:PORT`.
    #[arg(required_unless_present = "cluster")]
    pub targets: Vec<String>,

    /// Discover every Ray head Service (its cluster IP and ports) and head Pod (its pod
    /// IP) in the cluster, and probe those. From a pod, this shows what the
    /// NetworkPolicies let that pod reach.
    #[arg(long, conflicts_with = "targets")]
    pub cluster: bool,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub context: Option<String>,

    /// Namespace to search (repeatable; default: the context's namespace).
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        requires = "cluster"
    )]
    pub namespaces: Vec<String>,

    /// Search every namespace.
    #[arg(short = 'A', long, requires = "cluster", conflicts_with = "namespaces")]
    pub all_namespaces: bool,

    /// Seconds each question may take (connect included).
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
    pub timeout: f64,

    /// Questions in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit 1 when a finding is at least this severe (default: high; `none` never).
    #[arg(long, value_name = "SEVERITY", default_value = "high")]
    pub fail_on: String,

    /// Colour in the text report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Args, Debug)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: WebhookCommand,
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Serve /validate, /mutate, /healthz, /readyz and /metrics over HTTPS.
    Serve(WebhookServeArgs),
    /// Print the manifests of deploy/ with the caBundle (and namespace, image) filled in.
    Manifests(WebhookManifestsArgs),
}

#[derive(Args, Debug)]
pub struct WebhookServeArgs {
    /// Serving certificate (PEM chain); re-read when it changes.
    #[arg(long, value_name = "FILE", default_value = "/etc/rayward/tls/tls.crt")]
    pub cert: PathBuf,
    /// Private key of the certificate (PEM).
    #[arg(long, value_name = "FILE", default_value = "/etc/rayward/tls/tls.key")]
    pub key: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: std::net::SocketAddr,
    /// Mode of /validate (the paths /validate/enforce|warn|dry-run choose their own).
    #[arg(long, default_value = "enforce", value_parser = ["enforce", "warn", "dry-run"])]
    pub mode: String,
    /// In enforce mode, deny when a finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", default_value = "high")]
    pub deny_at: String,
    /// The webhook's own namespace, never checked (default: $POD_NAMESPACE).
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Config file (rules and settings as for audit); none by default.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Largest request body accepted.
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds between checks of the certificate files.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub reload_seconds: u64,
}

#[derive(Args, Debug)]
pub struct WebhookManifestsArgs {
    /// The CA certificate (PEM) that signed the serving certificate: the caBundle.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: PathBuf,
    /// Namespace to install into.
    #[arg(long, default_value = "rayward-system")]
    pub namespace: String,
    /// Image of rayward.
    #[arg(long)]
    pub image: Option<String>,
}

#[derive(Args, Debug)]
pub struct HardenArgs {
    /// Files or folders to harden (folders are searched for .yaml, .yml and .json);
    /// `-` reads standard input.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Write one file per input (same relative name) and companions.yaml into DIR instead
    /// of one multi-document stream on standard output.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Print a unified diff per changed or new object instead of the YAML.
    #[arg(long)]
    pub diff: bool,

    /// Put every object in this namespace and emit the Namespace with Pod Security
    /// `restricted` labels.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Answer plaintext cloud keys (RW801) with workload identity: remove the literal key
    /// env vars (containers and runtimeEnvYAML) and annotate the Ray pods' ServiceAccount
    /// for ACK RRSA (`rrsa:ROLE_NAME`), EKS IRSA (`irsa:ROLE_ARN`) or GKE
    /// (`gke:GSA_EMAIL`). Without it, RW801 stays a finding (docs/harden.md).
    #[arg(long, value_name = "PROVIDER:IDENTITY")]
    pub workload_identity: Option<String>,

    /// Also allow these sources to reach the dashboard/Jobs API (8265) and Ray Client
    /// (10001): a CIDR, a namespace name, or namespace labels `key=value,…` (repeatable).
    /// Default: only the cluster's own pods.
    #[arg(long, value_name = "CIDR|NAMESPACE|LABELS")]
    pub dashboard_from: Vec<String>,

    /// Let the rayward gateway's pods (app.kubernetes.io/name=rayward-gateway, same
    /// namespace) reach the dashboard.
    #[arg(long)]
    pub gateway: bool,

    /// Address ranges Ray pods may connect to besides each other, DNS and the Kubernetes
    /// API (object storage, package index, …), as a CIDR (repeatable). Default: none.
    #[arg(long, value_name = "CIDR")]
    pub egress_to: Vec<String>,

    /// Add the history collector (`rayward history collect`) to every Ray pod, shipping to
    /// this store (s3://, gs:// or az://; docs/history.md), with the export env, the shared
    /// session volume, the preStop and grace period, and egress to the store.
    #[arg(long, value_name = "STORE_URL")]
    pub history: Option<String>,

    /// With --history: the Secret holding the store's credentials under key `credentials`
    /// (KEY=value lines); without it, the pods' workload identity provides them.
    #[arg(long, value_name = "NAME", requires = "history")]
    pub history_credentials_secret: Option<String>,

    /// Secret with the Ray CA (ca.crt, ca.key) that the cert init container reads.
    #[arg(long, value_name = "NAME")]
    pub ca_secret: Option<String>,

    /// Image of the init container that runs `rayward certs node`.
    #[arg(long, value_name = "IMAGE")]
    pub cert_image: Option<String>,

    /// CPU request and limit for containers that set none.
    #[arg(long, value_name = "QUANTITY")]
    pub default_cpu: Option<String>,

    /// Memory request and limit for containers that set none.
    #[arg(long, value_name = "QUANTITY")]
    pub default_memory: Option<String>,

    /// Apply only the fixes that need no choice (securityContext, ClusterIP, token auth,
    /// K8sJobMode and shutdown, token automount off) and generate no companions.
    #[arg(long)]
    pub safe_only: bool,

    /// Exit 1 when a finding harden could not fix is at or above this severity
    /// (info, low, medium, high, critical; `none` never fails).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,

    /// Config file (default: .rayward.toml or rayward.toml found upward).
    #[arg(short, long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Ignore any config file.
    #[arg(long)]
    pub no_config: bool,

    /// Largest input file accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_file_size: u64,

    /// Name of standard input in findings and under -o.
    #[arg(long, default_value = "stdin.yaml", value_name = "NAME")]
    pub stdin_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Sarif,
    Junit,
    /// A short summary (counts, the guide as a scorecard, the most severe findings) for a
    /// pull-request comment or `$GITHUB_STEP_SUMMARY`, at most 60,000 characters.
    Markdown,
    /// One self-contained HTML page (no request leaves it): the guide as a scorecard,
    /// charts, and every finding to filter. Use with `-o report.html`.
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Files or folders to audit (folders are searched for .yaml, .yml and .json);
    /// `-` reads standard input. Defaults to the current folder.
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Write the report to a file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit 1 when a finding is at or above this severity
    /// (info, low, medium, high, critical; `none` never fails on findings).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<String>,

    /// Config file (default: .rayward.toml or rayward.toml found upward from the current folder).
    #[arg(short, long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,

    /// Ignore any config file.
    #[arg(long)]
    pub no_config: bool,

    /// Turn rules off (ids or names, comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub disable: Vec<String>,

    /// Run only these rules (ids or names).
    #[arg(long, value_delimiter = ',', value_name = "RULE")]
    pub only: Vec<String>,

    /// Show suppressed findings in text output.
    #[arg(long)]
    pub show_suppressed: bool,

    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Largest input file accepted, in bytes (larger ones are input errors).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_file_size: u64,

    /// Name shown for standard input in findings.
    #[arg(long, default_value = "<stdin>", value_name = "NAME")]
    pub stdin_name: String,

    /// Audit the running cluster of the kubeconfig (or, in a pod, its own) instead of
    /// files: the Ray objects and everything that judges them, never a Secret.
    #[arg(long, conflicts_with = "paths")]
    pub cluster: bool,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub context: Option<String>,

    /// Namespace to read (repeatable; default: the context's namespace).
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        requires = "cluster"
    )]
    pub namespaces: Vec<String>,

    /// Read every namespace.
    #[arg(short = 'A', long, requires = "cluster", conflicts_with = "namespaces")]
    pub all_namespaces: bool,

    /// Label selector for the Ray objects (`app=x,team in (a,b)`); the objects that judge
    /// them are read whole.
    #[arg(short = 'l', long, value_name = "SELECTOR", requires = "cluster")]
    pub selector: Option<String>,

    /// Most API requests per second.
    #[arg(long, default_value_t = 20.0, value_name = "N", requires = "cluster")]
    pub qps: f64,

    /// Most API requests in flight at once.
    #[arg(long, default_value_t = 4, value_name = "N", requires = "cluster")]
    pub concurrency: usize,

    /// Seconds one API request may take.
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECONDS",
        requires = "cluster"
    )]
    pub request_timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Args, Debug)]
pub struct RulesArgs {
    /// Output format (`markdown` generates docs/rules.md).
    #[arg(short, long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Rule id or name, e.g. RW501 or privileged-container.
    pub rule: String,
}

#[derive(Args, Debug)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgArg {
    EcdsaP256,
    EcdsaP384,
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
}

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Create a CA: DIR/ca.crt and DIR/ca.key (mode 0600).
    Ca(CertsCaArgs),
    /// Issue a node certificate signed by the CA: DIR/tls.crt, DIR/tls.key (0600) and a
    /// copy of ca.crt. Ray uses it as server and client (EKU serverAuth + clientAuth).
    Node(CertsNodeArgs),
    /// Check a node folder (tls.crt, tls.key, ca.crt) as Ray would use it.
    /// Exit 1 when Ray would refuse it.
    Check(CertsCheckArgs),
}

#[derive(Args, Debug)]
pub struct CertsCaArgs {
    /// Folder to write ca.crt and ca.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Key algorithm.
    #[arg(long, value_enum, default_value_t = KeyAlgArg::EcdsaP256)]
    pub key: KeyAlgArg,

    /// Lifetime in days.
    #[arg(long, default_value_t = 3650)]
    pub days: u32,

    /// Common name of the CA.
    #[arg(long, value_name = "NAME", default_value = "rayward Ray CA")]
    pub common_name: String,

    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,

    /// Also print the CA as a Kubernetes Secret named NAME (type Opaque, keys ca.crt and
    /// ca.key) to standard output.
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,

    /// Namespace of the Secret.
    #[arg(long, value_name = "NS", requires = "secret")]
    pub namespace: Option<String>,
}

#[derive(Args, Debug)]
pub struct CertsNodeArgs {
    /// Folder holding the CA's ca.crt and ca.key.
    #[arg(long, value_name = "DIR")]
    pub ca: PathBuf,

    /// Folder to write tls.crt, tls.key and ca.crt into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// IP address SAN (repeatable). Default: the POD_IP environment variable.
    /// 127.0.0.1 is always added.
    #[arg(long, value_name = "IP")]
    pub ip: Vec<std::net::IpAddr>,

    /// DNS name SAN (repeatable). localhost is always added.
    #[arg(long, value_name = "NAME")]
    pub dns: Vec<String>,

    /// Key algorithm.
    #[arg(long, value_enum, default_value_t = KeyAlgArg::EcdsaP256)]
    pub key: KeyAlgArg,

    /// Lifetime in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,

    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CertsCheckArgs {
    /// Node folder holding tls.crt, tls.key and ca.crt.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Verify against this CA (a ca.crt file or a folder holding one) instead of DIR/ca.crt.
    #[arg(long, value_name = "PATH")]
    pub ca: Option<PathBuf>,

    /// An IP the certificate must be valid for (the pod IP Ray dials).
    #[arg(long, value_name = "IP")]
    pub ip: Option<std::net::IpAddr>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: Option<GatewayCommand>,

    /// Gateway config file (TOML, see docs/gateway.md).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum GatewayCommand {
    /// Add or change a user in an htpasswd file (bcrypt). The password is read from
    /// standard input (first line) or, on a terminal, prompted for twice. Policy: 8-30
    /// characters with at least three of upper case, lower case, digit, special.
    Passwd(GatewayPasswdArgs),
}

#[derive(Args, Debug)]
pub struct GatewayPasswdArgs {
    /// htpasswd file (created with mode 0600 if missing).
    pub file: PathBuf,
    /// User name.
    pub user: String,
    /// bcrypt cost (4-31).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}
