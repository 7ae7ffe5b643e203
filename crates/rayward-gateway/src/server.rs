//! Listening: builds the gateway from a config, accepts connections (plain or TLS) and
//! serves them with HTTP/1.1 limits (header size, header read timeout). Certificates and
//! the htpasswd file are re-read when they change.

use crate::audit_log::AuditLog;
use crate::authn::cache::VerifyCache;
use crate::authn::htpasswd::HtpasswdFile;
use crate::authn::token::TokenStore;
use crate::authn::Authenticator;
use crate::config::{Config, TlsConfig};
use crate::service::Gateway;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Htpasswd(#[from] crate::authn::htpasswd::HtpasswdError),
    #[error("{0}")]
    Other(String),
}

/// Reads the cluster's Ray token from the configured file or variable.
fn ray_token(cfg: &Config) -> Result<String, StartError> {
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
    Ok(t)
}

fn load_tls(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|i| i.collect())
        .map_err(|e| format!("tls.cert {}: {e}", tls.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("tls.cert {}: no certificate", tls.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("tls.key {}: {e}", tls.key.display()))?;
    let mut sc = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: {e}"))?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}

fn stamp(p: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

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
    tls: Option<(TlsConfig, Arc<RwLock<Arc<ServerConfig>>>)>,
    max_header_bytes: usize,
    header_timeout: Duration,
    token_file: Option<std::path::PathBuf>,
}

impl Server {
    /// Builds every part and binds the listen address (port 0 picks a free one).
    pub async fn bind(cfg: &Config) -> Result<Server, StartError> {
        let htpasswd = match &cfg.auth.htpasswd {
            Some(p) => Some(Arc::new(HtpasswdFile::open(p)?)),
            None => None,
        };
        let tokens = TokenStore::new(&cfg.auth.tokens).map_err(StartError::Other)?;
        let cache = VerifyCache::new(
            Duration::from_secs(cfg.auth.cache_ttl_secs),
            cfg.auth.cache_max_entries,
        );
        let audit = match &cfg.audit.path {
            Some(p) => {
                AuditLog::open(p).map_err(|e| StartError::Other(format!("audit.path {p}: {e}")))?
            }
            None => AuditLog::disabled(),
        };
        let token = ray_token(cfg)?;
        let mut authn = Authenticator::new(htpasswd, tokens, cache);
        if let Some(o) = &cfg.auth.oidc {
            let oidc = crate::authn::oidc::Oidc::new(o)
                .await
                .map_err(StartError::Other)?;
            authn = authn.with_oidc(Arc::new(oidc));
        }
        let gateway = Gateway::new(cfg, authn, &token, audit).map_err(StartError::Other)?;
        let tls = match &cfg.tls {
            Some(t) => Some((
                t.clone(),
                Arc::new(RwLock::new(load_tls(t).map_err(StartError::Other)?)),
            )),
            None => None,
        };
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| StartError::Other(format!("listen {}: {e}", cfg.listen)))?;
        Ok(Server {
            gateway: Arc::new(gateway),
            listener,
            tls,
            max_header_bytes: cfg.limits.max_header_bytes,
            header_timeout: Duration::from_secs(cfg.limits.client_header_timeout_secs),
            token_file: cfg.ray_token.file.clone(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Serves until the task is dropped or aborted.
    pub async fn serve(self) {
        let Server {
            gateway,
            listener,
            tls,
            max_header_bytes,
            header_timeout,
            token_file,
        } = self;
        let _reloaders = spawn_reloaders(&gateway, tls.clone(), token_file);
        let tls_cfg = tls.map(|(_, c)| c);
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("rayward gateway: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let gw = gateway.clone();
            let tls_cfg = tls_cfg
                .as_ref()
                .map(|c| c.read().expect("tls lock").clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let gw = gw.clone();
                    // Boxed with its Send bound spelled out: rustc cannot prove it for the
                    // nested async blocks on its own (higher-ranked lifetime limitation).
                    let fut: HandleFuture = Box::pin(async move { Ok(gw.handle(req, peer).await) });
                    fut
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(max_header_bytes)
                    .max_headers(100);
                match tls_cfg {
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), svc)
                            .with_upgrades()
                            .await;
                    }
                    Some(c) => {
                        let Ok(Ok(tls)) = tokio::time::timeout(
                            header_timeout,
                            TlsAcceptor::from(c).accept(stream),
                        )
                        .await
                        else {
                            return;
                        };
                        let _ = builder
                            .serve_connection(TokioIo::new(tls), svc)
                            .with_upgrades()
                            .await;
                    }
                }
            });
        }
    }
}

/// Polls the htpasswd file, the TLS files, the Ray token file and the OIDC keys, and swaps
/// in new versions; a version that fails to load leaves the previous one in force.
fn spawn_reloaders(
    gateway: &Arc<Gateway>,
    tls: Option<(TlsConfig, Arc<RwLock<Arc<ServerConfig>>>)>,
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
                match std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| gw.upstream.set_token(&t))
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
    if let Some(o) = gateway.authenticator().oidc().cloned() {
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(o.refresh_interval());
            tick.tick().await; // the keys were loaded at start
            loop {
                tick.tick().await;
                if let Err(e) = o.refetch().await {
                    eprintln!("rayward gateway: keeping previous OIDC keys: {e}");
                }
            }
        }));
    }
    if let Some(h) = gateway.authenticator().htpasswd().cloned() {
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Err(e) = h.reload_if_changed() {
                    eprintln!("rayward gateway: keeping previous users: {e}");
                }
            }
        }));
    }
    if let Some((t, current)) = tls {
        tasks.push(tokio::spawn(async move {
            let mut last = (stamp(&t.cert), stamp(&t.key));
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let now = (stamp(&t.cert), stamp(&t.key));
                if now == last {
                    continue;
                }
                match load_tls(&t) {
                    Ok(c) => {
                        *current.write().expect("tls lock") = c;
                        last = now;
                    }
                    Err(e) => eprintln!("rayward gateway: keeping previous certificate: {e}"),
                }
            }
        }));
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
        "rayward gateway: listening on {}{} → {}",
        if cfg.tls.is_some() {
            "https://"
        } else {
            "http://"
        },
        server
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?,
        cfg.upstream
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| StartError::Other(e.to_string()))?;
    tokio::select! {
        _ = server.serve() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// [`run`] on a new multi-threaded tokio runtime, for the CLI.
pub fn run_blocking(config_path: &Path) -> Result<(), StartError> {
    // Validate before starting threads, so a bad config fails fast.
    Config::load(config_path)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Other(format!("runtime: {e}")))?
        .block_on(run(config_path))
}
