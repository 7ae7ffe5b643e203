//! `[discovery]`: one gateway for every Ray cluster of some namespaces. The gateway watches
//! (kube-rs' watcher: a list, then a watch, relisting after a gap) three kinds per
//! namespace and joins them into a routing table:
//!
//! - **RayClusters** (`ray.io/v1`), including those a RayJob or RayService creates: their
//!   controlling owner reference names the kind and owner shown on the landing page.
//!   `spec.authOptions.mode: token` says the cluster wants Ray's token, kept by KubeRay in
//!   the Secret `spec.authOptions.secretName` (default: the cluster's name), key
//!   `auth_token`.
//! - **head Services** (labels `ray.io/node-type=head`, `ray.io/cluster=<name>`, which
//!   KubeRay sets); `<name>-head-svc` is preferred when several carry the labels.
//! - **EndpointSlices** of those Services (the EndpointSlice controller copies the
//!   Service's labels, so the same selector finds them; `kubernetes.io/service-name` names
//!   the Service): the first ready address and the port named `dashboard` (else 8265).
//!
//! Tokens are read with a GET of each named Secret (no list or watch of Secrets, so the
//! gateway's RBAC can stay `get` on Secrets), again every `token_refresh_secs` and at once
//! when a new cluster appears: a rotated Secret is picked up without restart. Tokens are
//! held in memory and sent to Ray only; they are never logged or shown to users.
//!
//! A deleted cluster (or one whose head has no ready endpoint) leaves the table at the next
//! event. Lookups read an `Arc` snapshot: no lock is held while a request is served.

use crate::proxy::Upstream;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// `[discovery]` in the gateway's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// A kubeconfig file; absent: `[kubernetes]`'s, else in-cluster credentials.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// The namespaces whose RayClusters are served (the gateway's RBAC needs list and
    /// watch on rayclusters, services and endpointslices there, and get on secrets).
    pub namespaces: Vec<String>,
    /// Host routing: `{name}.{namespace}.<base_domain>` reaches that cluster. Absent: path
    /// prefixes only (`/clusters/{namespace}/{name}/…`).
    pub base_domain: Option<String>,
    /// The name of the head Service's dashboard port.
    #[serde(default = "d_port_name")]
    pub port_name: String,
    /// The port used when the EndpointSlice names none `port_name`.
    #[serde(default = "d_port")]
    pub default_port: u16,
    /// How often each cluster's token Secret is re-read (rotation).
    #[serde(default = "d_refresh")]
    pub token_refresh_secs: u64,
    /// The most clusters kept (bounded memory); more are ignored, with a log line.
    #[serde(default = "d_max")]
    pub max_clusters: usize,
    /// `rayward history serve`: `/clusters/{namespace}/{kind}/{name}/{session}/…` (kind
    /// `raycluster`, `rayjob` or `rayservice`) go there, with the same authorization as a
    /// read of that cluster.
    pub history_upstream: Option<String>,
    /// The key file (a Secret shared with history serve's `[trusted_gateway]`) that signs
    /// the user's identity and the authorized cluster on every history forward, so serve
    /// asks for no second login (`crate::history`). One key per line; the first signs.
    pub history_key_file: Option<PathBuf>,
}

fn d_port_name() -> String {
    "dashboard".into()
}
fn d_port() -> u16 {
    8265
}
fn d_refresh() -> u64 {
    30
}
fn d_max() -> usize {
    10_000
}

impl DiscoveryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.namespaces.is_empty() {
            return Err("discovery.namespaces: list the namespaces to watch".into());
        }
        for ns in &self.namespaces {
            if !is_dns_label(ns) {
                return Err(format!("discovery.namespaces: {ns:?} is no namespace name"));
            }
        }
        if let Some(b) = &self.base_domain {
            let ok = !b.is_empty()
                && !b.starts_with('.')
                && !b.ends_with('.')
                && b.split('.').all(is_dns_label);
            if !ok {
                return Err(format!("discovery.base_domain: {b:?} is no domain name"));
            }
        }
        if !(1..=3600).contains(&self.token_refresh_secs) {
            return Err("discovery.token_refresh_secs: between 1 and 3600".into());
        }
        if self.port_name.is_empty() || self.default_port == 0 {
            return Err("discovery: port_name and default_port must be set".into());
        }
        if self.max_clusters == 0 {
            return Err("discovery.max_clusters: at least 1".into());
        }
        Ok(())
    }
}

/// A Kubernetes DNS label: what namespace and RayCluster names are.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The key Ray's token is kept under in KubeRay's Secret.
pub const TOKEN_KEY: &str = "auth_token";

/// One discovered cluster.
pub struct Cluster {
    pub namespace: String,
    pub name: String,
    /// `RayCluster`, or the kind that created it (`RayJob`, `RayService`).
    pub kind: &'static str,
    /// The RayJob or RayService that owns the cluster.
    pub owner: Option<String>,
    /// Where its dashboard is, or why it cannot be reached yet.
    pub upstream: Result<Arc<Upstream>, String>,
}

/// namespace → name → cluster, sorted (the landing page lists it as it is).
pub type Table = BTreeMap<String, BTreeMap<String, Arc<Cluster>>>;

/// How upstreams are built (the gateway's limits).
#[derive(Clone)]
pub struct UpstreamSettings {
    pub timeout: Duration,
    pub idle: Duration,
    pub pass_errors: bool,
}

type Key = (String, String);

#[derive(Clone, Debug, PartialEq)]
struct ClusterInfo {
    kind: &'static str,
    owner: Option<String>,
    /// The token Secret's name when the cluster uses token authentication.
    secret: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct SvcInfo {
    cluster: String,
}

#[derive(Clone, Debug, PartialEq)]
struct SliceInfo {
    service: String,
    addr: Option<String>,
    /// The port named `port_name`.
    port: Option<u16>,
}

/// The watched kinds; the order is that of [`crate::discovery_metrics::KINDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Cluster,
    Service,
    Slice,
}

#[derive(Clone, Debug, PartialEq)]
enum Obj {
    Cluster(ClusterInfo),
    Service(SvcInfo),
    Slice(SliceInfo),
}

#[derive(Default)]
struct State {
    clusters: HashMap<Key, ClusterInfo>,
    services: HashMap<Key, SvcInfo>,
    slices: HashMap<Key, SliceInfo>,
    /// (namespace, Secret name) → token.
    tokens: HashMap<Key, String>,
    /// Kept across rebuilds so connection pools survive unrelated events.
    upstreams: HashMap<Key, (String, Option<String>, Arc<Upstream>)>,
    /// Objects of a relist in progress, per kind and namespace.
    relist: HashMap<(Kind, String), Vec<(Key, Obj)>>,
    full_logged: bool,
}

/// The routing table and the watches that keep it.
pub struct Discovery {
    table: RwLock<Arc<Table>>,
    state: Mutex<State>,
    settings: UpstreamSettings,
    port_name: String,
    default_port: u16,
    max_clusters: usize,
    /// Wakes the token reader (a new cluster names a Secret not read yet).
    wake: tokio::sync::Notify,
    /// For `/metrics` ([`crate::discovery_metrics`]).
    counts: crate::discovery_metrics::Counts,
}

impl Discovery {
    pub fn new(cfg: &DiscoveryConfig, settings: UpstreamSettings) -> Discovery {
        Discovery {
            table: RwLock::new(Arc::new(Table::new())),
            state: Mutex::new(State::default()),
            settings,
            port_name: cfg.port_name.clone(),
            default_port: cfg.default_port,
            max_clusters: cfg.max_clusters,
            wake: tokio::sync::Notify::new(),
            counts: Default::default(),
        }
    }

    /// The counters `/metrics` reports.
    pub fn counts(&self) -> &crate::discovery_metrics::Counts {
        &self.counts
    }

    /// The current table (a snapshot).
    pub fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The cluster `namespace/name`, if discovered.
    pub fn lookup(&self, namespace: &str, name: &str) -> Option<Arc<Cluster>> {
        let t = self.table.read().unwrap_or_else(|e| e.into_inner());
        t.get(namespace)?.get(name).cloned()
    }

    /// Starts the watches (three per namespace) and the token reader; they run until the
    /// returned tasks are aborted. EndpointSlices are read as `discovery.k8s.io/v1` where
    /// the API server serves it (1.21+), else `v1beta1` (same fields for what is read).
    pub async fn start(
        self: &Arc<Self>,
        client: Client,
        namespaces: &[String],
        token_refresh: Duration,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let rc = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("ray.io", "v1", "RayCluster"),
            "rayclusters",
        );
        let slice_version = match client.list_api_group_resources("discovery.k8s.io/v1").await {
            Ok(l) if l.resources.iter().any(|r| r.name == "endpointslices") => "v1",
            _ => "v1beta1",
        };
        let es = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("discovery.k8s.io", slice_version, "EndpointSlice"),
            "endpointslices",
        );
        for ns in namespaces {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &rc);
            tasks.push(
                self.watch(api, ns, Kind::Cluster, watcher::Config::default(), |o| {
                    Some(Obj::Cluster(cluster_info(o)))
                }),
            );
            let heads = watcher::Config::default().labels("ray.io/node-type=head");
            let api: Api<Service> = Api::namespaced(client.clone(), ns);
            tasks.push(
                self.watch(api, ns, Kind::Service, heads.clone(), |s: &Service| {
                    svc_info(s).map(Obj::Service)
                }),
            );
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &es);
            let port_name = self.port_name.clone();
            tasks.push(
                self.watch(api, ns, Kind::Slice, heads, move |s: &DynamicObject| {
                    slice_info(s, &port_name).map(Obj::Slice)
                }),
            );
        }
        let me = self.clone();
        tasks.push(tokio::spawn(async move {
            me.read_tokens(client, token_refresh).await
        }));
        tasks
    }

    fn watch<K, F>(
        self: &Arc<Self>,
        api: Api<K>,
        ns: &str,
        kind: Kind,
        config: watcher::Config,
        convert: F,
    ) -> tokio::task::JoinHandle<()>
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
        F: Fn(&K) -> Option<Obj> + Send + 'static,
    {
        let me = self.clone();
        let ns = ns.to_string();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
            let mut last_error: Option<Instant> = None;
            while let Some(ev) = stream.next().await {
                let key = |o: &K| (ns.clone(), o.meta().name.clone().unwrap_or_default());
                if ev.is_ok() {
                    me.counts.event();
                }
                match ev {
                    Ok(watcher::Event::Init) => me.relist_start(kind, &ns),
                    Ok(watcher::Event::InitApply(o)) => {
                        if let Some(obj) = convert(&o) {
                            me.relist_add(kind, &ns, key(&o), obj)
                        }
                    }
                    Ok(watcher::Event::InitDone) => me.relist_done(kind, &ns),
                    Ok(watcher::Event::Apply(o)) => me.change(kind, key(&o), convert(&o)),
                    Ok(watcher::Event::Delete(o)) => me.change(kind, key(&o), None),
                    Err(e) => {
                        me.counts.watch_errors[kind as usize]
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                            last_error = Some(Instant::now());
                            eprintln!(
                                "rayward gateway: discovery: watching {kind:?} in {ns}: {e} (retrying; the table keeps what it had)"
                            );
                        }
                    }
                }
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn relist_start(&self, kind: Kind, ns: &str) {
        self.lock()
            .relist
            .insert((kind, ns.to_string()), Vec::new());
    }

    fn relist_add(&self, kind: Kind, ns: &str, key: Key, obj: Obj) {
        if let Some(v) = self.lock().relist.get_mut(&(kind, ns.to_string())) {
            v.push((key, obj));
        }
    }

    fn relist_done(&self, kind: Kind, ns: &str) {
        let mut st = self.lock();
        let items = st
            .relist
            .remove(&(kind, ns.to_string()))
            .unwrap_or_default();
        match kind {
            Kind::Cluster => st.clusters.retain(|k, _| k.0 != ns),
            Kind::Service => st.services.retain(|k, _| k.0 != ns),
            Kind::Slice => st.slices.retain(|k, _| k.0 != ns),
        }
        for (k, o) in items {
            self.put(&mut st, k, Some(o));
        }
        self.rebuild(&mut st);
    }

    fn change(&self, kind: Kind, key: Key, obj: Option<Obj>) {
        let mut st = self.lock();
        match (kind, obj) {
            (_, Some(o)) => self.put(&mut st, key, Some(o)),
            (Kind::Cluster, None) => {
                st.clusters.remove(&key);
            }
            (Kind::Service, None) => {
                st.services.remove(&key);
            }
            (Kind::Slice, None) => {
                st.slices.remove(&key);
            }
        }
        self.rebuild(&mut st);
    }

    fn put(&self, st: &mut State, key: Key, obj: Option<Obj>) {
        match obj {
            Some(Obj::Cluster(c)) => {
                if !st.clusters.contains_key(&key) && st.clusters.len() >= self.max_clusters {
                    if !st.full_logged {
                        st.full_logged = true;
                        eprintln!(
                            "rayward gateway: discovery: over max_clusters ({}); ignoring {}/{}",
                            self.max_clusters, key.0, key.1
                        );
                    }
                    return;
                }
                let new_secret = c
                    .secret
                    .as_ref()
                    .is_some_and(|s| !st.tokens.contains_key(&(key.0.clone(), s.clone())));
                st.clusters.insert(key, c);
                if new_secret {
                    self.wake.notify_one();
                }
            }
            Some(Obj::Service(s)) => {
                st.services.insert(key, s);
            }
            Some(Obj::Slice(s)) => {
                st.slices.insert(key, s);
            }
            None => {}
        }
    }

    /// Joins the three kinds and the tokens into a new table, reusing upstreams whose
    /// address did not change.
    fn rebuild(&self, st: &mut State) {
        let mut table = Table::new();
        let mut upstreams = HashMap::new();
        for (key, info) in &st.clusters {
            let resolved = resolve(st, key, info, self.default_port);
            let upstream = resolved.and_then(|(base, token)| {
                if let Some((b, t, u)) = st.upstreams.get(key) {
                    if *b == base && *t == token {
                        upstreams.insert(key.clone(), (b.clone(), t.clone(), u.clone()));
                        return Ok(u.clone());
                    }
                }
                let u = Arc::new(Upstream::new(
                    &base,
                    token.as_deref(),
                    self.settings.timeout,
                    self.settings.idle,
                    self.settings.pass_errors,
                )?);
                upstreams.insert(key.clone(), (base, token, u.clone()));
                Ok(u)
            });
            table.entry(key.0.clone()).or_default().insert(
                key.1.clone(),
                Arc::new(Cluster {
                    namespace: key.0.clone(),
                    name: key.1.clone(),
                    kind: info.kind,
                    owner: info.owner.clone(),
                    upstream,
                }),
            );
        }
        st.upstreams = upstreams;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }

    /// Reads every named token Secret now and then (and when a new one is named).
    async fn read_tokens(&self, client: Client, every: Duration) {
        let mut last_error: Option<Instant> = None;
        loop {
            let wanted: Vec<Key> = {
                let st = self.lock();
                let mut v: Vec<Key> = st
                    .clusters
                    .iter()
                    .filter_map(|(k, c)| c.secret.clone().map(|s| (k.0.clone(), s)))
                    .collect();
                v.sort();
                v.dedup();
                v
            };
            let mut read = HashMap::new();
            let mut failed = Vec::new();
            for key in &wanted {
                let api: Api<Secret> = Api::namespaced(client.clone(), &key.0);
                match tokio::time::timeout(Duration::from_secs(10), api.get_opt(&key.1)).await {
                    Ok(Ok(Some(s))) => match token_of(&s) {
                        Some(t) => {
                            read.insert(key.clone(), t);
                        }
                        None => self.counts.token_read_failure(),
                    },
                    // Absent: the cluster is not ready until KubeRay writes it.
                    Ok(Ok(None)) => self.counts.token_read_failure(),
                    Ok(Err(e)) => failed.push((key.clone(), e.to_string())),
                    Err(_) => failed.push((key.clone(), "timed out".into())),
                }
            }
            for _ in &failed {
                self.counts.token_read_failure();
            }
            {
                let mut st = self.lock();
                // A Secret that could not be read keeps its last token.
                for (k, _) in &failed {
                    if let Some(t) = st.tokens.get(k) {
                        read.insert(k.clone(), t.clone());
                    }
                }
                if st.tokens != read {
                    st.tokens = read;
                    self.rebuild(&mut st);
                }
            }
            if let Some((k, e)) = failed.first() {
                if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                    last_error = Some(Instant::now());
                    eprintln!(
                        "rayward gateway: discovery: cannot read token Secret {}/{}: {e} ({} failed; keeping the last tokens)",
                        k.0,
                        k.1,
                        failed.len()
                    );
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

/// Where a cluster's dashboard is (`http://addr:port`) and its token, or why not known.
fn resolve(
    st: &State,
    key: &Key,
    info: &ClusterInfo,
    default_port: u16,
) -> Result<(String, Option<String>), String> {
    let preferred = format!("{}-head-svc", key.1);
    let svc = st
        .services
        .iter()
        .filter(|(k, s)| k.0 == key.0 && s.cluster == key.1)
        .map(|(k, _)| &k.1)
        .min_by_key(|n| (**n != preferred, (*n).clone()))
        .ok_or_else(|| {
            format!(
                "no head Service (labels ray.io/cluster={}, ray.io/node-type=head)",
                key.1
            )
        })?;
    let mut slices: Vec<(&Key, &SliceInfo)> = st
        .slices
        .iter()
        .filter(|(k, s)| k.0 == key.0 && &s.service == svc && s.addr.is_some())
        .collect();
    slices.sort_by(|a, b| a.0.cmp(b.0));
    let (_, slice) = slices
        .first()
        .ok_or_else(|| format!("Service {svc} has no ready endpoint"))?;
    let addr = slice.addr.as_deref().unwrap_or_default();
    let port = slice.port.unwrap_or(default_port);
    let base = if addr.contains(':') {
        format!("http://[{addr}]:{port}")
    } else {
        format!("http://{addr}:{port}")
    };
    let token = match &info.secret {
        None => None,
        Some(s) => Some(
            st.tokens
                .get(&(key.0.clone(), s.clone()))
                .cloned()
                .ok_or_else(|| format!("token Secret {s} (key {TOKEN_KEY}) not read yet"))?,
        ),
    };
    Ok((base, token))
}

fn cluster_info(o: &DynamicObject) -> ClusterInfo {
    let (kind, owner) = o
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.controller == Some(true) || r.api_version.starts_with("ray.io/"))
        .find_map(|r| match r.kind.as_str() {
            "RayJob" => Some(("RayJob", Some(r.name.clone()))),
            "RayService" => Some(("RayService", Some(r.name.clone()))),
            _ => None,
        })
        .unwrap_or(("RayCluster", None));
    let auth = o.data.get("spec").and_then(|s| s.get("authOptions"));
    let token_mode = auth.and_then(|a| a.get("mode")).and_then(|m| m.as_str()) == Some("token");
    let secret = token_mode.then(|| {
        auth.and_then(|a| a.get("secretName"))
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| o.metadata.name.clone().unwrap_or_default())
    });
    ClusterInfo {
        kind,
        owner,
        secret,
    }
}

fn svc_info(s: &Service) -> Option<SvcInfo> {
    let labels = s.metadata.labels.as_ref()?;
    Some(SvcInfo {
        cluster: labels.get("ray.io/cluster")?.clone(),
    })
}

fn slice_info(s: &DynamicObject, port_name: &str) -> Option<SliceInfo> {
    let service = s
        .metadata
        .labels
        .as_ref()?
        .get("kubernetes.io/service-name")?
        .clone();
    let list = |k: &str| {
        s.data
            .get(k)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let addr = list("endpoints")
        .iter()
        .filter(|e| e.pointer("/conditions/ready").and_then(|r| r.as_bool()) != Some(false))
        .find_map(|e| {
            e.pointer("/addresses/0")
                .and_then(|a| a.as_str())
                .map(str::to_string)
        });
    let port = list("ports")
        .iter()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(port_name))
        .and_then(|p| p.get("port"))
        .and_then(|p| p.as_u64())
        .and_then(|p| u16::try_from(p).ok());
    Some(SliceInfo {
        service,
        addr,
        port,
    })
}

fn token_of(s: &Secret) -> Option<String> {
    let raw = s.data.as_ref()?.get(TOKEN_KEY)?;
    let t = String::from_utf8(raw.0.clone()).ok()?.trim().to_string();
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn disc() -> Discovery {
        let cfg: DiscoveryConfig = toml::from_str("namespaces = [\"a\"]").unwrap();
        Discovery::new(
            &cfg,
            UpstreamSettings {
                timeout: Duration::from_secs(1),
                idle: Duration::from_secs(1),
                pass_errors: false,
            },
        )
    }

    fn k(ns: &str, n: &str) -> Key {
        (ns.into(), n.into())
    }

    fn rc(v: serde_json::Value) -> ClusterInfo {
        cluster_info(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn cluster_kinds_and_token_secrets() {
        let plain = rc(json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "a"}, "spec": {}}));
        assert_eq!(plain.kind, "RayCluster");
        assert_eq!(plain.secret, None);
        let job = rc(json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "j-raycluster-x", "namespace": "a", "ownerReferences": [
                {"apiVersion": "ray.io/v1", "kind": "RayJob", "name": "j", "uid": "1", "controller": true}]},
            "spec": {"authOptions": {"mode": "token"}}}));
        assert_eq!(
            (job.kind, job.owner.as_deref(), job.secret.as_deref()),
            ("RayJob", Some("j"), Some("j-raycluster-x"))
        );
        let named = rc(json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "a"},
            "spec": {"authOptions": {"mode": "token", "secretName": "s"}}}));
        assert_eq!(named.secret.as_deref(), Some("s"));
        let off = rc(json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": "c", "namespace": "a"},
            "spec": {"authOptions": {"mode": "disabled", "secretName": "s"}}}));
        assert_eq!(off.secret, None);
    }

    #[test]
    fn joins_services_slices_and_tokens() {
        let d = disc();
        let info = ClusterInfo {
            kind: "RayCluster",
            owner: None,
            secret: Some("c".into()),
        };
        d.change(Kind::Cluster, k("a", "c"), Some(Obj::Cluster(info)));
        let why = |d: &Discovery| match &d.lookup("a", "c").unwrap().upstream {
            Ok(u) => u.base().to_string(),
            Err(e) => e.clone(),
        };
        assert!(why(&d).contains("no head Service"), "{}", why(&d));
        d.change(
            Kind::Service,
            k("a", "c-head-svc"),
            Some(Obj::Service(SvcInfo {
                cluster: "c".into(),
            })),
        );
        assert!(why(&d).contains("no ready endpoint"), "{}", why(&d));
        let slice = |addr: Option<&str>, port| {
            Some(Obj::Slice(SliceInfo {
                service: "c-head-svc".into(),
                addr: addr.map(str::to_string),
                port,
            }))
        };
        d.change(
            Kind::Slice,
            k("a", "c-head-svc-x1"),
            slice(Some("10.0.0.7"), None),
        );
        assert!(why(&d).contains("not read yet"), "{}", why(&d));
        d.lock().tokens.insert(k("a", "c"), "tok".into());
        d.rebuild(&mut d.lock());
        assert_eq!(why(&d), "http://10.0.0.7:8265");
        let first = d.lookup("a", "c").unwrap().upstream.clone().unwrap();
        // An unrelated event keeps the upstream (and its connections).
        d.change(Kind::Cluster, k("a", "other"), None);
        assert!(Arc::ptr_eq(
            &first,
            d.lookup("a", "c").unwrap().upstream.as_ref().unwrap()
        ));
        d.change(
            Kind::Slice,
            k("a", "c-head-svc-x1"),
            slice(Some("fd00::7"), Some(9000)),
        );
        assert_eq!(why(&d), "http://[fd00::7]:9000");
        // Deleted: gone from the table.
        d.change(Kind::Cluster, k("a", "c"), None);
        assert!(d.lookup("a", "c").is_none());
    }

    #[test]
    fn slices() {
        let s: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "x", "labels": {"kubernetes.io/service-name": "c-head-svc"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.2"]}],
            "ports": [{"name": "gcs", "port": 6379}, {"name": "dashboard", "port": 8266}]
        }))
        .unwrap();
        assert_eq!(
            slice_info(&s, "dashboard"),
            Some(SliceInfo {
                service: "c-head-svc".into(),
                addr: Some("10.0.0.2".into()),
                port: Some(8266)
            })
        );
        assert_eq!(slice_info(&s, "other").unwrap().port, None);
    }

    #[test]
    fn relist_replaces_a_namespace() {
        let d = disc();
        let info = ClusterInfo {
            kind: "RayCluster",
            owner: None,
            secret: None,
        };
        d.change(
            Kind::Cluster,
            k("a", "gone"),
            Some(Obj::Cluster(info.clone())),
        );
        d.change(
            Kind::Cluster,
            k("b", "kept"),
            Some(Obj::Cluster(info.clone())),
        );
        d.relist_start(Kind::Cluster, "a");
        d.relist_add(Kind::Cluster, "a", k("a", "new"), Obj::Cluster(info));
        assert!(
            d.lookup("a", "gone").is_some(),
            "the table holds until the relist ends"
        );
        d.relist_done(Kind::Cluster, "a");
        assert!(d.lookup("a", "gone").is_none());
        assert!(d.lookup("a", "new").is_some());
        assert!(d.lookup("b", "kept").is_some());
    }

    #[test]
    fn config_checks() {
        let ok: DiscoveryConfig =
            toml::from_str("namespaces = [\"team-a\"]\nbase_domain = \"ray.example.com\"").unwrap();
        assert_eq!(ok.validate(), Ok(()));
        for bad in [
            "namespaces = []",
            "namespaces = [\"Team\"]",
            "namespaces = [\"a\"]\nbase_domain = \".x\"",
            "namespaces = [\"a\"]\ntoken_refresh_secs = 0",
        ] {
            let c: DiscoveryConfig = toml::from_str(bad).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
