//! Listening: builds the gateway from a config and serves it on [`rayward_serve`]'s accept
//! loop (plain or TLS, HTTP/1.1 limits, graceful shutdown). Certificates, the htpasswd
//! file, the Ray token file and the OIDC keys are re-read when they change.

use crate::audit_log::AuditLog;
use crate::config::{Config, TlsConfig};
use crate::service::Gateway;
use rayward_serve::{CertStore, ConnOptions, RefusalHook};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Htpasswd(#[from] crate::authn::htpasswd::HtpasswdError),
    #[error("{0}")]
    Other(String),
}

/// Reads the cluster's Ray token from the configured file or variable (None under
/// `[discovery]`: each cluster's Secret holds its own).
fn ray_token(cfg: &Config) -> Result<Option<String>, StartError> {
    if cfg.upstream.is_none() {
        return Ok(None);
    }
    let t = if let Some(p) = &cfg.ray_token.file {
        std::fs::read_to_string(p)
            .map_err(|e| StartError::Other(format!("ray_token.file {}: {e}", p.display())))?
    } else {
        let var = cfg.ray_token.env.as_deref().unwrap_or_default();
        std::env::var(var)
            .map_err(|_| StartError::Other(format!("ray_token.env: variable {var} is not set")))?
    };
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err(StartError::Other("ray_token: the token is empty".into()));
    }
    Ok(Some(t))
}

fn stamp(p: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// How the gateway names itself in logs.
const NAME: &str = "rayward gateway";

/// How often the certificate files are re-read.
const TLS_RELOAD_EVERY: Duration = Duration::from_secs(2);

type HandleFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<http::Response<crate::proxy::Body>, std::convert::Infallible>,
            > + Send,
    >,
>;

/// A gateway ready to serve: built, bound, with its reloaders' inputs.
pub struct Server {
    gateway: Arc<Gateway>,
    listener: TcpListener,
    /// `admin_listen`: health and metrics, apart from Ray traffic.
    admin: TcpListener,
    tls: Option<Arc<CertStore>>,
    max_header_bytes: usize,
    header_timeout: Duration,
    token_file: Option<std::path::PathBuf>,
    /// `[discovery]`: the client, namespaces and token refresh period of the watches.
    discovery: Option<(kube::Client, Vec<String>, Duration)>,
}

impl Server {
    /// Builds every part and binds the listen address (port 0 picks a free one).
    pub async fn bind(cfg: &Config) -> Result<Server, StartError> {
        let audit = match &cfg.audit.path {
            Some(p) => {
                AuditLog::open(p).map_err(|e| StartError::Other(format!("audit.path {p}: {e}")))?
            }
            None => AuditLog::disabled(),
        };
        let token = ray_token(cfg)?;
        let authn = cfg.auth.authenticator().await.map_err(StartError::Other)?;
        let mut gateway =
            Gateway::new(cfg, authn, token.as_deref(), audit).map_err(StartError::Other)?;
        if let Some(k) = &cfg.kubernetes {
            let kube = crate::k8s::KubeAuth::connect(k, gateway.metrics().kube_unavailable.clone())
                .await
                .map_err(StartError::Other)?;
            gateway = gateway.with_kube(kube);
        }
        let tls = match &cfg.tls {
            Some(t) => Some(load_tls(t)?),
            None => None,
        };
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| StartError::Other(format!("listen {}: {e}", cfg.listen)))?;
        let admin = TcpListener::bind(cfg.admin_listen)
            .await
            .map_err(|e| StartError::Other(format!("admin_listen {}: {e}", cfg.admin_listen)))?;
        warn_unmatched_users(cfg, gateway.authenticator());
        for w in cfg.warnings() {
            eprintln!("{NAME}: warning: {w}");
        }
        let discovery = match (&cfg.discovery, &gateway.discovery) {
            (Some(d), Some(_)) => {
                let (kubeconfig, context) = match (&d.kubeconfig, &cfg.kubernetes) {
                    (Some(p), _) => (Some(p.clone()), d.context.clone()),
                    (None, Some(k)) => (k.kubeconfig.clone(), k.context.clone()),
                    (None, None) => (None, d.context.clone()),
                };
                // No read timeout: watches are long polls.
                let config = crate::k8s::kube_config(kubeconfig.as_deref(), context.as_deref())
                    .await
                    .map_err(|e| StartError::Other(format!("discovery: {e}")))?;
                let client = kube::Client::try_from(config)
                    .map_err(|e| StartError::Other(format!("discovery: {e}")))?;
                Some((
                    client,
                    d.namespaces.clone(),
                    Duration::from_secs(d.token_refresh_secs),
                ))
            }
            _ => None,
        };
        Ok(Server {
            gateway: Arc::new(gateway),
            listener,
            admin,
            tls,
            max_header_bytes: cfg.limits.max_header_bytes,
            header_timeout: Duration::from_secs(cfg.limits.client_header_timeout_secs),
            token_file: cfg.ray_token.file.clone(),
            discovery,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Serves until the task is dropped or aborted (connections then close at once).
    pub async fn serve(self) {
        self.serve_until(std::future::pending()).await
    }

    /// Serves until `shutdown` resolves, then stops gracefully: no new connections,
    /// requests in flight finish within the drain time ([`rayward_serve::listen`]).
    pub async fn serve_until(self, shutdown: impl std::future::Future<Output = ()>) {
        let Server {
            gateway,
            listener,
            admin,
            tls,
            max_header_bytes,
            header_timeout,
            token_file,
            discovery,
        } = self;
        let mut reloaders = spawn_reloaders(&gateway, tls.clone(), token_file);
        if let (Some((client, namespaces, refresh)), Some(d)) = (discovery, &gateway.discovery) {
            reloaders
                .0
                .extend(d.start(client, &namespaces, refresh).await);
        }
        let _reloaders = reloaders;
        let gw = gateway.clone();
        let admin_gw = gateway.clone();
        let opts = ConnOptions {
            on_refused: Some(RefusalHook(Arc::new(move |peer, r| {
                gw.framing_refused(peer, r)
            }))),
            name: NAME,
            header_timeout,
            max_header_bytes: Some(max_header_bytes),
            max_headers: Some(100),
            // Plain connections: the common request is relayed without hyper.
            front: Some(Arc::new(crate::relay::Relay::new(
                gateway.clone(),
                header_timeout,
                max_header_bytes,
                100,
            ))),
            ..ConnOptions::default()
        };
        let make = move |peer: SocketAddr| {
            let gw = gateway.clone();
            // One memo per connection: the last verified Authorization header.
            let memo = Arc::new(crate::memo::ConnMemo::default());
            hyper::service::service_fn(move |req| {
                let gw = gw.clone();
                let memo = memo.clone();
                // Boxed with its Send bound spelled out: rustc cannot prove it for the
                // nested async blocks on its own (higher-ranked lifetime limitation).
                let fut: HandleFuture =
                    Box::pin(async move { Ok(gw.handle_on(req, peer, Some(&memo)).await) });
                fut
            })
        };
        let admin_make = move |_peer: SocketAddr| {
            let gw = admin_gw.clone();
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let r = gw.admin(&req);
                async move { Ok::<_, std::convert::Infallible>(r) }
            })
        };
        let admin_opts = ConnOptions {
            name: "rayward gateway (admin)",
            header_timeout,
            max_header_bytes: Some(8192),
            max_headers: Some(100),
            ..ConnOptions::default()
        };
        // One shutdown for both listeners: the public one's signal stops the admin one.
        let (stop, mut stopped) = tokio::sync::watch::channel(());
        let public = rayward_serve::serve(listener, tls, opts, make, async move {
            shutdown.await;
            let _ = stop.send(());
        });
        let admin = rayward_serve::serve(admin, None, admin_opts, admin_make, async move {
            let _ = stopped.changed().await;
        });
        tokio::join!(public, admin);
    }
}

/// Says at start which unprefixed `[users]` keys name no htpasswd or token user: before
/// principals were namespaced such a key could have meant an OIDC subject, which now needs
/// `oidc:NAME` (the key no longer grants it anything).
fn warn_unmatched_users(cfg: &Config, authn: &crate::authn::Authenticator) {
    for key in cfg.users.keys().filter(|k| !k.contains(':')) {
        let in_htpasswd = authn.htpasswd().is_some_and(|h| h.get(key).is_some());
        let in_tokens = cfg.auth.tokens.iter().any(|t| &t.user == key);
        if !in_htpasswd && !in_tokens {
            eprintln!(
                "{NAME}: users.{key:?} names no htpasswd or token user; an OIDC user needs \"oidc:{key}\", a Kubernetes one \"k8s:{key}\""
            );
        }
    }
}

/// Reads the serving certificate; the gateway does not start without a usable one.
fn load_tls(t: &TlsConfig) -> Result<Arc<CertStore>, StartError> {
    let store =
        CertStore::load(&t.cert, &t.key).map_err(|e| StartError::Other(format!("tls: {e}")))?;
    store
        .server_config()
        .map_err(|e| StartError::Other(format!("tls: {e}")))?;
    Ok(store)
}

/// Polls the htpasswd file, the TLS files, the Ray token file and the OIDC keys, and swaps
/// in new versions; a version that fails to load leaves the previous one in force.
fn spawn_reloaders(
    gateway: &Arc<Gateway>,
    tls: Option<Arc<CertStore>>,
    token_file: Option<std::path::PathBuf>,
) -> Reloaders {
    let mut tasks = Vec::new();
    if let Some(path) = token_file {
        let gw = gateway.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = stamp(&path);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = stamp(&path);
                if now == last {
                    continue;
                }
                let Some(upstream) = &gw.upstream else { return };
                match std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| upstream.set_token(&t))
                {
                    Ok(()) => last = now,
                    Err(e) => eprintln!(
                        "rayward gateway: keeping previous Ray token ({}): {e}",
                        path.display()
                    ),
                }
            }
        }));
    }
    tasks.extend(gateway.authenticator().spawn_reloaders(NAME));
    if let Some(store) = tls {
        tasks.push(tokio::spawn(store.watch(TLS_RELOAD_EVERY, NAME)));
    }
    Reloaders(tasks)
}

/// The reloader tasks, stopped when the serving future is dropped (aborted task, test
/// guard), so a stopped gateway leaves nothing polling behind it.
struct Reloaders(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Reloaders {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Loads the config, binds, and serves until Ctrl-C or SIGTERM.
pub async fn run(config_path: &Path) -> Result<(), StartError> {
    let cfg = Config::load(config_path)?;
    let server = Server::bind(&cfg).await?;
    eprintln!(
        "rayward gateway: admin (health, metrics) on http://{}",
        server
            .admin_addr()
            .map_err(|e| StartError::Other(e.to_string()))?
    );
    eprintln!(
        "rayward gateway: listening on {}{} → {}",
        if cfg.tls.is_some() {
            "https://"
        } else {
            "http://"
        },
        server
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?,
        match &cfg.upstream {
            Some(u) => u.clone(),
            None => "the RayClusters of discovery.namespaces".to_string(),
        }
    );
    server.serve_until(rayward_serve::shutdown::signal()).await;
    Ok(())
}

/// [`run`] on a new tokio runtime, for the CLI: multi-threaded when the process may use
/// more than one CPU, a single thread when it may use one (a pod with a CPU limit of 1
/// usually still sees every core, a `taskset`/cpuset of one core does not). On one CPU
/// the multi-threaded runtime only adds hand-offs: the accept loop runs on the main
/// thread and every connection on the worker, and each wake-up across them is a futex
/// call and a context switch. Password hashing still runs on the blocking pool either way.
pub fn run_blocking(config_path: &Path) -> Result<(), StartError> {
    // Validate before starting threads, so a bad config fails fast.
    Config::load(config_path)?;
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| StartError::Other(format!("runtime: {e}")))?
        .block_on(run(config_path))
}
