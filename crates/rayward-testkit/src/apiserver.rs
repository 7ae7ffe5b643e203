//! A real kube-apiserver (v1.20, `shared/tools/kube-apiserver`) for end-to-end tests, the
//! minimal Ray CRDs it needs, and server-side dry runs of any manifest.
//!
//! [`KubeApiserver::start`] runs `$RAYWARD_KUBE_APISERVER up DIR` on ports of its own (so
//! tests and helpers running side by side do not clash) and `down DIR` on drop; everything
//! the script started also carries this guard's marker and is killed if `down` missed it.

use crate::process::{self, TAG_VAR};
use crate::yaml::Manifest;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::{Client, Config};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Ray kinds KubeRay serves (group `ray.io`, version `v1`), with their plural names.
pub const RAY_KINDS: [(&str, &str); 4] = [
    ("RayCluster", "rayclusters"),
    ("RayJob", "rayjobs"),
    ("RayService", "rayservices"),
    ("RayCronJob", "raycronjobs"),
];

/// A running etcd + kube-apiserver. Drop stops both.
pub struct KubeApiserver {
    script: PathBuf,
    dir: tempfile::TempDir,
    tag: String,
    port: u16,
    /// API servers started again by [`KubeApiserver::restart`], reaped on drop.
    restarted: std::sync::Mutex<Vec<std::process::Child>>,
}

impl KubeApiserver {
    /// Starts one on free loopback ports; waits until `/readyz` answers (the script does).
    /// Panics naming `RAYWARD_KUBE_APISERVER` when it is unset, or with the script's output
    /// when the server does not come up.
    pub fn start() -> KubeApiserver {
        let script = crate::env_path("RAYWARD_KUBE_APISERVER");
        if let Some(bin) = std::env::var_os("RAYWARD_KUBE_APISERVER_BIN") {
            assert!(
                Path::new(&bin).is_file(),
                "RAYWARD_KUBE_APISERVER_BIN={} does not exist (run `{} build`)",
                Path::new(&bin).display(),
                script.display()
            );
        }
        let (port, etcd) = free_ports();
        let g = KubeApiserver {
            script,
            dir: crate::short_temp_dir(),
            tag: process::new_tag("kube"),
            port,
            restarted: std::sync::Mutex::new(Vec::new()),
        };
        let mut c = Command::new(&g.script);
        c.arg("up")
            .arg(g.dir())
            .env("KUBE_PORT", port.to_string())
            .env("ETCD_PORT", etcd.to_string())
            .env(TAG_VAR, &g.tag);
        let o = process::run_with_deadline(&mut c, g.dir(), "up", Duration::from_secs(180));
        assert!(
            o.success(),
            "kube-apiserver up {}: {o}\n--- apiserver.log\n{}",
            g.dir().display(),
            std::fs::read_to_string(g.dir().join("apiserver.log")).unwrap_or_default()
        );
        g
    }

    /// The state directory (`kubeconfig`, logs, etcd data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir().join("kubeconfig")
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, for clients other than kube's.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The admin's bearer token (first field of `DIR/tokens.csv`, group `system:masters`).
    pub fn admin_token(&self) -> String {
        let tokens = std::fs::read_to_string(self.dir().join("tokens.csv")).expect("tokens.csv");
        tokens
            .split(',')
            .next()
            .expect("a token")
            .trim()
            .to_string()
    }

    /// The server's self-signed serving certificate (PEM), to pin in a client.
    pub fn serving_cert(&self) -> Vec<u8> {
        std::fs::read(self.dir().join("serving.crt")).expect("serving.crt")
    }

    /// Stops the API server (etcd keeps running, so every object stays), keeps it down for
    /// `down_for`, and starts it again with the same command line on the same port and
    /// certificate: what a client sees when the control plane restarts. Returns once
    /// `/readyz` answers again.
    pub fn restart(&self, down_for: Duration) {
        let pid_file = self.dir().join("apiserver.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .expect("apiserver.pid")
            .trim()
            .parse()
            .expect("a pid");
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .expect("the API server's command line")
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // SIGTERM first (a graceful stop waits for in-flight requests, and a watch is one);
        // after 10 s SIGKILL, as a crashed control plane would go.
        let gone = || {
            // A zombie (the script's child, reaped by nobody) still has /proc/PID: gone
            // when it no longer runs.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z")
        };
        // SAFETY: kill(2) with a pid this guard started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        let mut killed = false;
        while !gone() {
            if !killed && start.elapsed() > Duration::from_secs(10) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                killed = true;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "the API server did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(down_for);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir().join("apiserver.log"))
            .expect("apiserver.log");
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .env(TAG_VAR, &self.tag)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the API server again");
        std::fs::write(&pid_file, child.id().to_string()).expect("apiserver.pid");
        self.restarted.lock().expect("restarted").push(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ok = Command::new("curl")
                .args(["-sf", "--cacert"])
                .arg(self.dir().join("serving.crt"))
                .arg("-H")
                .arg(format!("Authorization: Bearer {}", self.admin_token()))
                .arg(format!("{}/readyz", self.url()))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the API server did not come back: {}",
                std::fs::read_to_string(self.dir().join("apiserver.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A client authenticated as the admin (`system:masters`) of `DIR/kubeconfig`.
    pub async fn client(&self) -> Client {
        let kc = Kubeconfig::read_from(self.kubeconfig()).expect("read kubeconfig");
        let mut cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig to client config");
        // The script's self-signed serving certificate (`openssl req -x509`) carries
        // `CA:TRUE`, which rustls/webpki refuses as a server certificate
        // (`CaUsedAsEndEntity`), whatever the trust anchor. The server is on loopback and
        // was started by this guard; the admin token is the credential that matters here.
        cfg.accept_invalid_certs = true;
        Client::try_from(cfg).expect("build client")
    }
}

impl Drop for KubeApiserver {
    fn drop(&mut self) {
        let mut c = Command::new(&self.script);
        c.arg("down").arg(self.dir());
        let _ = process::run_with_deadline(&mut c, self.dir(), "down", Duration::from_secs(30));
        let left = process::kill_tagged(&self.tag);
        for mut c in self
            .restarted
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !left.is_empty() {
            eprintln!("rayward-testkit: kube-apiserver processes survived SIGKILL: {left:?}");
        }
    }
}

/// A kube-apiserver port and an etcd port (etcd also takes the next one for peers), free on
/// 127.0.0.1 now, starting from a point derived from the pid so parallel tests spread out.
fn free_ports() -> (u16, u16) {
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = 20000 + (std::process::id() % 1000) * 16 + NEXT.fetch_add(1, Ordering::Relaxed) * 3;
    let mut p = start;
    loop {
        let p16 = p as u16;
        if free(p16) && free(p16 + 1) && free(p16 + 2) {
            return (p16, p16 + 1);
        }
        p += 3;
        assert!(p < start + 3000, "no free loopback ports from {start}");
    }
}

/// Installs a minimal CRD for each Ray kind (group `ray.io`, version `v1`, schema
/// `x-kubernetes-preserve-unknown-fields`), as CONTEXT §7 says: v1.20 cannot load KubeRay's
/// generated CRDs (CEL rules). Waits until each is Established. Schema checks against the
/// real CRDs are [`crate::crd`]'s job.
pub async fn install_ray_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (kind, plural) in RAY_KINDS {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.ray.io")},
            "spec": {
                "group": "ray.io",
                "scope": "Namespaced",
                "names": {
                    "kind": kind,
                    "plural": plural,
                    "singular": kind.to_lowercase(),
                    "listKind": format!("{kind}List"),
                },
                "versions": [{
                    "name": "v1",
                    "served": true,
                    "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": true,
                    }},
                    "subresources": {"status": {}},
                }],
            },
        }))
        .expect("CRD object");
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => panic!("create CRD {plural}.ray.io: {e:?}"),
        }
    }
    let start = Instant::now();
    for (_, plural) in RAY_KINDS {
        loop {
            let crd = api.get(&format!("{plural}.ray.io")).await.expect("get CRD");
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "CRD {plural}.ray.io not Established after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Sets a Pod's `status` as a kubelet would (no kubelet runs here): a merge patch of the
/// status subresource, e.g. `{"phase": "Running", "containerStatuses": [...]}`.
pub async fn set_pod_status(client: &Client, namespace: &str, name: &str, status: Value) {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("status of pod {namespace}/{name}: {e}"));
}

/// Creates namespace `name` and its `default` ServiceAccount (no controller-manager runs,
/// and the ServiceAccount admission plugin refuses pods without it). The account does not
/// automount a token: no token controller runs to create one, and admission would refuse
/// every pod that asks for it. Existing ones are fine.
pub async fn ensure_namespace(client: &Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
    let sa: ServiceAccount = serde_json::from_value(
        json!({"metadata": {"name": "default"}, "automountServiceAccountToken": false}),
    )
    .expect("sa");
    match Api::<ServiceAccount>::namespaced(client.clone(), name)
        .create(&PostParams::default(), &sa)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
        Err(e) => panic!("create serviceaccount {name}/default: {e}"),
    }
}

/// What [`DryRun::create_all`] found.
#[derive(Debug, Default)]
pub struct DryRunReport {
    pub accepted: usize,
    pub refused: Vec<String>,
    pub not_served: Vec<String>,
}

/// Server-side dry runs (`?dryRun=All`) of any object: the API server decodes, defaults,
/// validates and admits it, and stores nothing.
pub struct DryRun {
    client: Client,
    discovery: Discovery,
}

impl DryRun {
    /// Runs API discovery once (after [`install_ray_crds`], so the Ray kinds are known).
    pub async fn new(client: Client) -> DryRun {
        let discovery = Discovery::new(client.clone())
            .run()
            .await
            .expect("API discovery");
        DryRun { client, discovery }
    }

    /// Whether the API server serves `apiVersion` `kind` (third-party CRDs such as Volcano's
    /// `Queue` are not installed).
    pub fn serves(&self, api_version: &str, kind: &str) -> bool {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.discovery
            .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
            .is_some()
    }

    /// Dry-run creates every object of `manifests` that the server serves (see
    /// [`serves`](Self::serves)) in `namespace`. Returns the refusals as `file:line
    /// Kind/name: message` and the objects skipped as not served.
    pub async fn create_all(&self, namespace: &str, manifests: &[Manifest]) -> DryRunReport {
        let mut report = DryRunReport::default();
        for m in manifests {
            if !self.serves(&m.api_version, &m.kind) {
                report.not_served.push(m.id());
                continue;
            }
            match self.create(namespace, &m.value).await {
                Ok(_) => report.accepted += 1,
                Err(e) => report.refused.push(format!("{}: {e}", m.id())),
            }
        }
        report
    }

    /// Dry-run creates `obj`. Namespaced objects go to `namespace` (their own
    /// `metadata.namespace` is replaced: a bundle is checked in one test namespace, which
    /// must exist — see [`ensure_namespace`]). `Err` is the API server's message.
    pub async fn create(&self, namespace: &str, obj: &Value) -> Result<Value, String> {
        self.send(namespace, obj, true).await
    }

    /// Creates `obj` for real (stored in etcd), as [`create`](Self::create) places it.
    pub async fn store(&self, namespace: &str, obj: &Value) -> Result<Value, String> {
        self.send(namespace, obj, false).await
    }

    /// The API of `obj`'s kind in its own namespace (`metadata.namespace`), or an error
    /// naming a kind the server does not serve.
    fn api_of(&self, obj: &Value) -> Result<Api<DynamicObject>, String> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (ar, caps) = self
            .discovery
            .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
            .ok_or_else(|| format!("the API server does not serve {api_version} {kind}"))?;
        Ok(match (caps.scope, obj["metadata"]["namespace"].as_str()) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (Scope::Namespaced, None) => return Err(format!("{kind} without a namespace")),
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// Server-side apply of `obj` where it says it goes (as `kubectl apply --server-side
    /// --force-conflicts` with field manager `manager`); the stored object.
    pub async fn apply(&self, manager: &str, obj: &Value) -> Result<Value, String> {
        let api = self.api_of(obj)?;
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let pp = PatchParams::apply(manager).force();
        match api.patch(name, &pp, &Patch::Apply(obj)).await {
            Ok(o) => Ok(serde_json::to_value(o).expect("JSON")),
            Err(kube::Error::Api(s)) => Err(format!("{} ({}): {}", s.reason, s.code, s.message)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The stored object named like `obj`, or `None` when there is none.
    pub async fn get(&self, obj: &Value) -> Result<Option<Value>, String> {
        let api = self.api_of(obj)?;
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        match api.get_opt(name).await {
            Ok(o) => Ok(o.map(|o| serde_json::to_value(o).expect("JSON"))),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Deletes the object named like `obj` (background propagation, as kubectl).
    pub async fn delete(&self, obj: &Value) -> Result<(), String> {
        let api = self.api_of(obj)?;
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        match api.delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn send(&self, namespace: &str, obj: &Value, dry_run: bool) -> Result<Value, String> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = self
            .discovery
            .resolve_gvk(&gvk)
            .ok_or_else(|| format!("the API server does not serve {api_version} {kind}"))?;
        let mut obj = obj.clone();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                obj["metadata"]["namespace"] = json!(namespace);
                Api::namespaced_with(self.client.clone(), namespace, &ar)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), &ar),
        };
        let dynamic: DynamicObject =
            serde_json::from_value(obj).map_err(|e| format!("not an object: {e}"))?;
        let pp = PostParams {
            dry_run,
            ..PostParams::default()
        };
        match api.create(&pp, &dynamic).await {
            Ok(o) => Ok(serde_json::to_value(o).expect("JSON")),
            Err(kube::Error::Api(s)) => Err(format!("{} ({}): {}", s.reason, s.code, s.message)),
            Err(e) => Err(e.to_string()),
        }
    }
}
