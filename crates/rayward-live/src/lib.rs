//! A running cluster as a source of objects for rayward's one run path: what `rayward
//! audit --cluster` reads (issue 13).
//!
//! [`Cluster::connect`] takes the kubeconfig (its current context, or `--context`) or,
//! inside a pod, the ServiceAccount's credentials. [`Cluster::list`] reads every kind
//! rayward judges ([`KINDS`]): the Ray kinds and the objects that decide about them
//! (Pods, Services, Ingresses, HTTPRoutes, NetworkPolicies, quotas, namespaces, RBAC), in
//! pages of [`ListOptions::page`] objects, with at most [`ListOptions::concurrency`]
//! requests in flight, at most [`ListOptions::qps`] per second, each within
//! [`ListOptions::timeout`]. Secrets are never listed. A kind the credentials may not list
//! is reported with the permission that would allow it, and the rest is still read.
//!
//! Each object becomes one input of the engine: its JSON (as `kubectl get -o json` shows
//! it, without `managedFields` and the last-applied annotation) named
//! `k8s://<context>/<namespace>/<kind>/<name>`, loaded by the same loader as files.

use kube::api::{Api, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::TypeMeta;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::{Client, Config};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

/// The kinds rayward reads from a cluster: (API group, kind). Never `Secret`.
pub const KINDS: &[(&str, &str)] = &[
    ("ray.io", "RayCluster"),
    ("ray.io", "RayJob"),
    ("ray.io", "RayService"),
    ("ray.io", "RayCronJob"),
    ("", "Namespace"),
    ("", "Pod"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("gateway.networking.k8s.io", "HTTPRoute"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
];

/// Where to connect and what to read.
#[derive(Clone, Debug)]
pub struct ListOptions {
    /// A kubeconfig file; `None`: `$KUBECONFIG`, `~/.kube/config`, or in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; `None`: its current context.
    pub context: Option<String>,
    /// Namespaces to read; empty with `all_namespaces` false: the context's namespace.
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    /// A label selector for the Ray objects (the objects that judge them are read whole).
    pub selector: Option<String>,
    /// Objects per page (`limit`).
    pub page: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests per second, at most.
    pub qps: f64,
    /// Time one request may take.
    pub timeout: Duration,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            kubeconfig: None,
            context: None,
            namespaces: Vec::new(),
            all_namespaces: false,
            selector: None,
            page: 500,
            concurrency: 4,
            qps: 20.0,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("kubeconfig: {0}")]
    Config(String),
    #[error("API discovery: {0}")]
    Discovery(String),
}

/// A kind that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// `RayCluster (ray.io)` and the namespace, when the refusal was for one.
    pub what: String,
    /// The API server's answer, or the timeout.
    pub why: String,
    /// The RBAC rule that would allow it: `list rayclusters.ray.io in namespace x`.
    pub permission: Option<String>,
}

/// One object read from the cluster.
#[derive(Clone, Debug)]
pub struct Listed {
    /// `k8s://<context>/<namespace or _cluster>/<Kind>/<name>`.
    pub name: String,
    /// The object as JSON.
    pub json: String,
}

/// What [`Cluster::list`] read.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<Listed>,
    pub unreadable: Vec<Unreadable>,
    /// Kinds the API server does not serve (no Ray CRDs, no Gateway API), as (API group,
    /// kind): not errors.
    pub not_served: Vec<(&'static str, &'static str)>,
    /// Requests made.
    pub requests: usize,
}

impl Listing {
    /// Whether the server serves none of the Ray kinds (KubeRay's CRDs are not installed).
    pub fn serves_no_ray_kind(&self) -> bool {
        KINDS
            .iter()
            .filter(|(g, _)| *g == RAY_GROUP)
            .all(|k| self.not_served.contains(k))
    }
}

/// The API group of KubeRay's kinds.
const RAY_GROUP: &str = "ray.io";

/// A connected cluster.
pub struct Cluster {
    client: Client,
    context: String,
    default_namespace: String,
    opts: ListOptions,
}

impl Cluster {
    /// Connects with the kubeconfig (or in-cluster credentials when there is none).
    pub async fn connect(opts: ListOptions) -> Result<Cluster, LiveError> {
        let kco = KubeConfigOptions {
            context: opts.context.clone(),
            ..KubeConfigOptions::default()
        };
        let (mut config, context) = match &opts.kubeconfig {
            Some(p) => {
                let kc = Kubeconfig::read_from(p)
                    .map_err(|e| LiveError::Config(format!("{}: {e}", p.display())))?;
                let ctx = opts
                    .context
                    .clone()
                    .or_else(|| kc.current_context.clone())
                    .unwrap_or_default();
                let c = Config::from_custom_kubeconfig(kc, &kco)
                    .await
                    .map_err(|e| LiveError::Config(e.to_string()))?;
                (c, ctx)
            }
            None if opts.context.is_some() => {
                let c = Config::from_kubeconfig(&kco)
                    .await
                    .map_err(|e| LiveError::Config(e.to_string()))?;
                (c, opts.context.clone().unwrap_or_default())
            }
            None => {
                let c = Config::infer()
                    .await
                    .map_err(|e| LiveError::Config(e.to_string()))?;
                let ctx = Kubeconfig::read()
                    .ok()
                    .and_then(|k| k.current_context)
                    .unwrap_or_else(|| "in-cluster".to_string());
                (c, ctx)
            }
        };
        config.read_timeout = Some(opts.timeout);
        config.connect_timeout = Some(opts.timeout.min(Duration::from_secs(10)));
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| LiveError::Config(e.to_string()))?;
        Ok(Cluster {
            client,
            context,
            default_namespace,
            opts,
        })
    }

    /// The client, for callers with questions of their own: the writes of `rayward
    /// watch` (Events, its Lease), `rayward install --reuse-from-cluster` (its own Secrets).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The context's namespace (in a pod: its own), where a Lease goes by default.
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// The context's name (or `in-cluster`), as findings name their source.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Reads every kind of [`KINDS`] in scope, all objects kept in the listing.
    pub async fn list(&self) -> Result<Listing, LiveError> {
        let mut objects = Vec::new();
        let mut listing = self.list_each(|page| objects.extend(page)).await?;
        listing.objects = objects;
        Ok(listing)
    }

    /// The namespaces in scope: `None` for all.
    fn scope(&self) -> Option<Vec<String>> {
        if self.opts.all_namespaces {
            None
        } else if self.opts.namespaces.is_empty() {
            Some(vec![self.default_namespace.clone()])
        } else {
            Some(self.opts.namespaces.clone())
        }
    }

    /// What to read: each served kind of [`KINDS`] in its preferred version, once per
    /// namespace in scope (or once for all), and the kinds the server does not serve.
    #[allow(clippy::type_complexity)]
    async fn jobs(
        &self,
    ) -> Result<
        (
            Vec<(ApiResource, ApiCapabilities, Option<String>)>,
            Vec<(&'static str, &'static str)>,
        ),
        LiveError,
    > {
        let groups: Vec<&str> = {
            let mut g: Vec<&str> = KINDS.iter().map(|(g, _)| *g).collect();
            g.dedup();
            g
        };
        let discovery = tokio::time::timeout(
            self.opts.timeout,
            Discovery::new(self.client.clone()).filter(&groups).run(),
        )
        .await
        .map_err(|_| LiveError::Discovery(format!("no answer in {:?}", self.opts.timeout)))?
        .map_err(|e| LiveError::Discovery(e.to_string()))?;
        let mut not_served = Vec::new();
        // (resource, capabilities, namespace or None for all/cluster-scoped)
        let mut jobs: Vec<(ApiResource, ApiCapabilities, Option<String>)> = Vec::new();
        let namespaces = self.scope();
        for (group, kind) in KINDS {
            let found = discovery.get(group).and_then(|g| g.recommended_kind(kind));
            let Some((ar, caps)) = found else {
                not_served.push((*group, *kind));
                continue;
            };
            match (&caps.scope, &namespaces) {
                (Scope::Cluster, _) | (Scope::Namespaced, None) => jobs.push((ar, caps, None)),
                (Scope::Namespaced, Some(list)) => {
                    for ns in list {
                        jobs.push((ar.clone(), caps.clone(), Some(ns.clone())));
                    }
                }
            }
        }
        Ok((jobs, not_served))
    }

    /// Reads every kind of [`KINDS`] in scope and hands each page of objects to `on_page`
    /// as it arrives, so a caller can judge and drop it before the next: a large cluster
    /// is never held whole as JSON. At most a few pages wait while `on_page` works. The
    /// listing returned holds no objects, only what could not be read and the counts.
    pub async fn list_each(
        &self,
        mut on_page: impl FnMut(Vec<Listed>),
    ) -> Result<Listing, LiveError> {
        let mut listing = Listing::default();
        let (jobs, not_served) = self.jobs().await?;
        listing.not_served = not_served;
        let namespaces = self.scope();
        let limiter = Arc::new(Limiter::new(self.opts.qps));
        let slots = Arc::new(Semaphore::new(self.opts.concurrency.max(1)));
        let (pages, mut arriving) = tokio::sync::mpsc::channel::<Vec<Listed>>(4);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (ar, caps, ns)) in jobs.into_iter().enumerate() {
            let client = self.client.clone();
            let limiter = limiter.clone();
            let slots = slots.clone();
            let opts = self.opts.clone();
            let context = self.context.clone();
            let wanted = namespaces.clone();
            let pages = pages.clone();
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await.expect("never closed");
                let r = list_kind(
                    &client,
                    &ar,
                    &caps,
                    ns.as_deref(),
                    &opts,
                    &limiter,
                    &context,
                    wanted.as_deref(),
                    &pages,
                )
                .await;
                (i, r)
            });
        }
        // The tasks hold the only senders left: the loop ends when every kind is read.
        drop(pages);
        while let Some(page) = arriving.recv().await {
            on_page(page);
        }
        let mut parts = Vec::new();
        while let Some(done) = tasks.join_next().await {
            parts.push(done.expect("a listing task does not panic"));
        }
        // Kinds in the order of KINDS, whatever order the answers came in.
        parts.sort_by_key(|(i, _)| *i);
        for (_, part) in parts {
            listing.requests += part.requests;
            listing.unreadable.extend(part.unreadable);
        }
        Ok(listing)
    }
}

/// What `rayward audit --cluster` asks the API server a Ray ServiceAccount may do, in
/// its own namespace (rule RW404): (verb, API group, resource, subresource).
pub const ACCESS_CHECKS: &[(&str, &str, &str, &str)] = &[
    ("get", "", "secrets", ""),
    ("list", "", "secrets", ""),
    ("create", "", "pods", ""),
    ("create", "", "pods", "exec"),
    ("escalate", "rbac.authorization.k8s.io", "roles", ""),
    ("escalate", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("bind", "rbac.authorization.k8s.io", "clusterroles", ""),
    ("impersonate", "", "serviceaccounts", ""),
];

/// What [`Cluster::review_access`] learnt.
#[derive(Debug, Default)]
pub struct Reviewed {
    /// The reviews the server allowed, as `SubjectAccessReview` objects (spec and status)
    /// named `k8s://<context>/<namespace>/SubjectAccessReview/<account>-<verb>-<resource>`.
    pub allowed: Vec<Listed>,
    /// Set when the credentials may not create reviews (or the server did not answer).
    pub unreadable: Option<Unreadable>,
    pub requests: usize,
}

impl Cluster {
    /// Asks the API server, with one `SubjectAccessReview` per account and check of
    /// [`ACCESS_CHECKS`], what each ServiceAccount `(namespace, name)` may do in its
    /// namespace. It authorizes as the account would be: its user name and the groups
    /// Kubernetes gives every ServiceAccount. Requests share the listing's QPS and
    /// concurrency bounds; the first refusal stops the reviews (the credentials may not
    /// create them) and is reported once.
    pub async fn review_access(&self, accounts: &[(String, String)]) -> Reviewed {
        use k8s_openapi::api::authorization::v1::SubjectAccessReview;
        let limiter = Arc::new(Limiter::new(self.opts.qps));
        let slots = Arc::new(Semaphore::new(self.opts.concurrency.max(1)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, ((ns, name), check)) in accounts
            .iter()
            .flat_map(|a| ACCESS_CHECKS.iter().map(move |c| (a, c)))
            .enumerate()
        {
            let (verb, group, resource, sub) = *check;
            let review = serde_json::json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": format!("system:serviceaccount:{ns}:{name}"),
                    "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                    "resourceAttributes": {"namespace": ns, "verb": verb, "group": group, "resource": resource, "subresource": sub},
                },
            });
            let label = if sub.is_empty() {
                format!("{name}-{verb}-{resource}")
            } else {
                format!("{name}-{verb}-{resource}-{sub}")
            };
            let file = format!("k8s://{}/{ns}/SubjectAccessReview/{label}", self.context);
            let (client, limiter, slots, stop, timeout, ns) = (
                self.client.clone(),
                limiter.clone(),
                slots.clone(),
                stop.clone(),
                self.opts.timeout,
                ns.clone(),
            );
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await.expect("never closed");
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return (i, None);
                }
                limiter.wait().await;
                let sar: SubjectAccessReview =
                    serde_json::from_value(review).expect("a well-formed review");
                let api: Api<SubjectAccessReview> = Api::all(client);
                let answer = tokio::time::timeout(
                    timeout,
                    api.create(&kube::api::PostParams::default(), &sar),
                )
                .await;
                let r = match answer {
                    Ok(Ok(done)) => {
                        let allowed = done.status.as_ref().is_some_and(|s| s.allowed);
                        let mut v = serde_json::to_value(&done).unwrap_or_default();
                        v["metadata"] = serde_json::json!({"name": label, "namespace": ns});
                        Ok(allowed.then(|| Listed {
                            name: file,
                            json: serde_json::to_string_pretty(&v).unwrap_or_default(),
                        }))
                    }
                    Ok(Err(e)) => {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        let forbidden = matches!(&e, kube::Error::Api(s) if s.code == 403);
                        Err(Unreadable {
                            what: "what Ray ServiceAccounts may do (SubjectAccessReview)"
                                .to_string(),
                            why: match &e {
                                kube::Error::Api(s) => format!("{} {}", s.code, s.message),
                                e => e.to_string(),
                            },
                            permission: forbidden.then(|| {
                                "create subjectaccessreviews.authorization.k8s.io (a ClusterRole with a ClusterRoleBinding)".to_string()
                            }),
                        })
                    }
                    Err(_) => {
                        stop.store(true, std::sync::atomic::Ordering::Relaxed);
                        Err(Unreadable {
                            what: "what Ray ServiceAccounts may do (SubjectAccessReview)"
                                .to_string(),
                            why: format!("no answer in {timeout:?}"),
                            permission: None,
                        })
                    }
                };
                (i, Some(r))
            });
        }
        let mut answers = Vec::new();
        while let Some(done) = tasks.join_next().await {
            answers.push(done.expect("a review task does not panic"));
        }
        answers.sort_by_key(|(i, _)| *i);
        let mut out = Reviewed::default();
        for (_, a) in answers {
            match a {
                None => {}
                Some(Ok(allowed)) => {
                    out.requests += 1;
                    out.allowed.extend(allowed);
                }
                Some(Err(u)) => {
                    out.requests += 1;
                    if out.unreadable.is_none() {
                        out.unreadable = Some(u);
                    }
                }
            }
        }
        out
    }
}

/// A Ray head found in the cluster, for `rayward probe --cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// `Service` or `Pod`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The cluster IP of a Service, the pod IP of a Pod.
    pub address: String,
    /// A Service's ports; empty for a Pod (every Ray port is asked).
    pub ports: Vec<u16>,
}

impl Cluster {
    /// Every Ray head in scope: Services that select (or are labelled as) KubeRay head
    /// pods (`ray.io/node-type: head`) with a cluster IP, and running head Pods with a
    /// pod IP. Paged and bounded as the listing is.
    pub async fn ray_heads(&self) -> Result<(Vec<Head>, Vec<Unreadable>), LiveError> {
        use k8s_openapi::api::core::v1::{Pod, Service};
        let namespaces: Vec<Option<String>> = if self.opts.all_namespaces {
            vec![None]
        } else if self.opts.namespaces.is_empty() {
            vec![Some(self.default_namespace.clone())]
        } else {
            self.opts.namespaces.iter().cloned().map(Some).collect()
        };
        let head = |m: Option<&std::collections::BTreeMap<String, String>>| {
            m.and_then(|m| m.get("ray.io/node-type"))
                .map(String::as_str)
                == Some("head")
        };
        let mut heads = Vec::new();
        let mut unreadable = Vec::new();
        for ns in &namespaces {
            let services: Api<Service> = match ns {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            let pods: Api<Pod> = match ns {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            let mut token: Option<String> = None;
            loop {
                let mut lp = ListParams::default().limit(self.opts.page);
                if let Some(t) = &token {
                    lp = lp.continue_token(t);
                }
                match tokio::time::timeout(self.opts.timeout, services.list(&lp)).await {
                    Ok(Ok(page)) => {
                        for svc in &page.items {
                            let spec = svc.spec.as_ref();
                            if !(head(svc.metadata.labels.as_ref())
                                || head(spec.and_then(|s| s.selector.as_ref())))
                            {
                                continue;
                            }
                            let Some(ip) = spec
                                .and_then(|s| s.cluster_ip.clone())
                                .filter(|ip| !ip.is_empty() && ip != "None")
                            else {
                                continue;
                            };
                            let ports = spec
                                .and_then(|s| s.ports.as_ref())
                                .map(|ps| {
                                    ps.iter()
                                        .filter_map(|p| u16::try_from(p.port).ok())
                                        .collect()
                                })
                                .unwrap_or_default();
                            heads.push(Head {
                                kind: "Service",
                                namespace: svc.metadata.namespace.clone().unwrap_or_default(),
                                name: svc.metadata.name.clone().unwrap_or_default(),
                                address: ip,
                                ports,
                            });
                        }
                        token = page.metadata.continue_.filter(|t| !t.is_empty());
                        if token.is_none() {
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        unreadable.push(refusal(
                            &ApiResource::erase::<Service>(&()),
                            ns.as_deref(),
                            &e,
                        ));
                        break;
                    }
                    Err(_) => {
                        unreadable.push(Unreadable {
                            what: what(&ApiResource::erase::<Service>(&()), ns.as_deref()),
                            why: format!("no answer in {:?}", self.opts.timeout),
                            permission: None,
                        });
                        break;
                    }
                }
            }
            let lp = ListParams::default()
                .labels("ray.io/node-type=head")
                .limit(self.opts.page);
            let mut lp = lp;
            loop {
                match tokio::time::timeout(self.opts.timeout, pods.list(&lp)).await {
                    Ok(Ok(page)) => {
                        for pod in &page.items {
                            let status = pod.status.as_ref();
                            let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
                            if matches!(phase, "Succeeded" | "Failed") {
                                continue;
                            }
                            let Some(ip) = status
                                .and_then(|s| s.pod_ip.clone())
                                .filter(|ip| !ip.is_empty())
                            else {
                                continue;
                            };
                            heads.push(Head {
                                kind: "Pod",
                                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                                name: pod.metadata.name.clone().unwrap_or_default(),
                                address: ip,
                                ports: Vec::new(),
                            });
                        }
                        match page.metadata.continue_.filter(|t| !t.is_empty()) {
                            Some(t) => lp = lp.continue_token(&t),
                            None => break,
                        }
                    }
                    Ok(Err(e)) => {
                        unreadable.push(refusal(
                            &ApiResource::erase::<Pod>(&()),
                            ns.as_deref(),
                            &e,
                        ));
                        break;
                    }
                    Err(_) => {
                        unreadable.push(Unreadable {
                            what: what(&ApiResource::erase::<Pod>(&()), ns.as_deref()),
                            why: format!("no answer in {:?}", self.opts.timeout),
                            permission: None,
                        });
                        break;
                    }
                }
            }
        }
        Ok((heads, unreadable))
    }
}

fn display_group(group: &str) -> &str {
    if group.is_empty() {
        "core"
    } else {
        group
    }
}

/// At most `qps` requests per second across every task, after a first burst of
/// [`BURST`] (client-go's token bucket: a small cluster is read at once, a large one at
/// the rate the API server was promised).
struct Limiter {
    qps: f64,
    state: Mutex<(f64, tokio::time::Instant)>,
}

/// Requests allowed at once before the rate applies (kubectl allows 300).
const BURST: f64 = 50.0;

impl Limiter {
    fn new(qps: f64) -> Limiter {
        Limiter {
            qps,
            state: Mutex::new((BURST, tokio::time::Instant::now())),
        }
    }

    async fn wait(&self) {
        if self.qps <= 0.0 {
            return;
        }
        let wait = {
            let mut st = self.state.lock().await;
            let now = tokio::time::Instant::now();
            let (tokens, at) = *st;
            let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.qps).min(BURST);
            if tokens >= 1.0 {
                *st = (tokens - 1.0, now);
                Duration::ZERO
            } else {
                // The token this request takes arrives in (1 - tokens) / qps.
                let wait = Duration::from_secs_f64((1.0 - tokens) / self.qps);
                *st = (tokens - 1.0, now);
                wait
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// One kind in one namespace (or everywhere), page by page.
#[allow(clippy::too_many_arguments)]
async fn list_kind(
    client: &Client,
    ar: &ApiResource,
    caps: &ApiCapabilities,
    ns: Option<&str>,
    opts: &ListOptions,
    limiter: &Limiter,
    context: &str,
    wanted: Option<&[String]>,
    pages: &tokio::sync::mpsc::Sender<Vec<Listed>>,
) -> Listing {
    let api: Api<DynamicObject> = match (ns, &caps.scope) {
        (Some(ns), Scope::Namespaced) => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    };
    let mut out = Listing::default();
    let is_ray = ar.group == RAY_GROUP;
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(opts.page);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        if let (true, Some(sel)) = (is_ray, &opts.selector) {
            lp = lp.labels(sel);
        }
        limiter.wait().await;
        out.requests += 1;
        let page = match tokio::time::timeout(opts.timeout, api.list(&lp)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                out.unreadable.push(refusal(ar, ns, &e));
                return out;
            }
            Err(_) => {
                out.unreadable.push(Unreadable {
                    what: what(ar, ns),
                    why: format!("no answer in {:?}", opts.timeout),
                    permission: None,
                });
                return out;
            }
        };
        for mut obj in page.items {
            // Namespaces outside the scope are not listed (they are cluster-scoped).
            if ar.kind == "Namespace" {
                if let (Some(list), Some(name)) = (wanted, obj.metadata.name.as_deref()) {
                    if !list.iter().any(|n| n == name) {
                        continue;
                    }
                }
            }
            match listed(ar, &mut obj, context) {
                Ok(l) => out.objects.push(l),
                Err(u) => out.unreadable.push(u),
            }
        }
        if !out.objects.is_empty() && pages.send(std::mem::take(&mut out.objects)).await.is_err() {
            // The receiver is gone: nobody wants the rest.
            return out;
        }
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return out,
        }
    }
}

/// The name an object of the cluster goes by in findings.
pub fn object_name(context: &str, namespace: Option<&str>, kind: &str, name: &str) -> String {
    format!(
        "k8s://{context}/{}/{kind}/{name}",
        namespace.unwrap_or("_cluster")
    )
}

/// An object as an input: its JSON as `kubectl get -o json` shows it, without
/// `managedFields` and the last-applied annotation.
fn listed(ar: &ApiResource, obj: &mut DynamicObject, context: &str) -> Result<Listed, Unreadable> {
    obj.types = Some(TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    obj.metadata.managed_fields = None;
    if let Some(a) = obj.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    let name = object_name(
        context,
        obj.metadata.namespace.as_deref(),
        &ar.kind,
        obj.metadata.name.as_deref().unwrap_or(""),
    );
    match serde_json::to_string_pretty(&*obj) {
        Ok(json) => Ok(Listed { name, json }),
        Err(e) => Err(Unreadable {
            what: name,
            why: e.to_string(),
            permission: None,
        }),
    }
}

/// What a watch tells: an object is new or changed, or gone; a kind's first listing is
/// complete; a request failed (the watch retries with backoff).
#[derive(Debug)]
pub enum Change {
    Apply(Listed),
    Delete(String),
    Synced,
    Error(String),
}

impl Cluster {
    /// Watches every kind of [`KINDS`] in scope (kube-rs' watcher: a list, then a watch
    /// from its resource version, relisting after a gap, with backoff on errors) and sends
    /// each change to `changes`. Returns the number of watches started (each sends one
    /// [`Change::Synced`] once its first listing is complete, and again after a relist);
    /// the watches run until `changes` is closed.
    pub async fn watch_each(
        &self,
        changes: tokio::sync::mpsc::Sender<Change>,
    ) -> Result<usize, LiveError> {
        use futures_util::StreamExt;
        use kube::runtime::{watcher, WatchStreamExt};
        let (jobs, _) = self.jobs().await?;
        let n = jobs.len();
        let wanted = self.scope();
        for (ar, caps, ns) in jobs {
            let api: Api<DynamicObject> = match (&ns, &caps.scope) {
                (Some(ns), Scope::Namespaced) => Api::namespaced_with(self.client.clone(), ns, &ar),
                _ => Api::all_with(self.client.clone(), &ar),
            };
            let mut config = watcher::Config::default().page_size(self.opts.page);
            if let (true, Some(sel)) = (ar.group == RAY_GROUP, &self.opts.selector) {
                config = config.labels(sel);
            }
            let (tx, context, wanted) = (changes.clone(), self.context.clone(), wanted.clone());
            tokio::spawn(async move {
                let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
                while let Some(ev) = stream.next().await {
                    let change = match ev {
                        Ok(watcher::Event::Apply(mut o) | watcher::Event::InitApply(mut o)) => {
                            if ar.kind == "Namespace" {
                                if let (Some(list), Some(name)) =
                                    (&wanted, o.metadata.name.as_deref())
                                {
                                    if !list.iter().any(|n| n == name) {
                                        continue;
                                    }
                                }
                            }
                            match listed(&ar, &mut o, &context) {
                                Ok(l) => Change::Apply(l),
                                Err(u) => Change::Error(format!("{}: {}", u.what, u.why)),
                            }
                        }
                        Ok(watcher::Event::Delete(o)) => Change::Delete(object_name(
                            &context,
                            o.metadata.namespace.as_deref(),
                            &ar.kind,
                            o.metadata.name.as_deref().unwrap_or(""),
                        )),
                        Ok(watcher::Event::Init) => continue,
                        Ok(watcher::Event::InitDone) => Change::Synced,
                        Err(e) => Change::Error(format!("{}: {e}", what(&ar, ns.as_deref()))),
                    };
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
            });
        }
        Ok(n)
    }
}

fn what(ar: &ApiResource, ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!(
            "{} ({}) in namespace {ns}",
            ar.kind,
            display_group(&ar.group)
        ),
        None => format!("{} ({})", ar.kind, display_group(&ar.group)),
    }
}

fn refusal(ar: &ApiResource, ns: Option<&str>, e: &kube::Error) -> Unreadable {
    let forbidden = matches!(e, kube::Error::Api(s) if s.code == 403);
    let resource = if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}.{}", ar.plural, ar.group)
    };
    Unreadable {
        what: what(ar, ns),
        why: match e {
            kube::Error::Api(s) => format!("{} {}", s.code, s.message),
            e => e.to_string(),
        },
        permission: forbidden.then(|| match ns {
            Some(ns) => {
                format!("list {resource} in namespace {ns} (a Role, or a ClusterRole bound there)")
            }
            None => format!(
                "list {resource} in every namespace (a ClusterRole with a ClusterRoleBinding)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ray_kind_only_when_every_ray_kind_is_missing() {
        let mut l = Listing::default();
        assert!(!l.serves_no_ray_kind());
        l.not_served = vec![
            ("ray.io", "RayCluster"),
            ("ray.io", "RayJob"),
            ("ray.io", "RayService"),
        ];
        assert!(!l.serves_no_ray_kind(), "RayCronJob is still served");
        l.not_served.push(("ray.io", "RayCronJob"));
        assert!(l.serves_no_ray_kind());
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_holds_after_the_burst() {
        let l = Limiter::new(10.0);
        let t0 = tokio::time::Instant::now();
        for _ in 0..BURST as usize {
            l.wait().await;
        }
        assert!(t0.elapsed() < Duration::from_millis(1), "the burst is free");
        for _ in 0..20 {
            l.wait().await;
        }
        // 20 more at 10 per second: about two seconds.
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }
}
