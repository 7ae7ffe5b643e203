//! `rayward history serve`: the dashboard of any stored session, behind the gateway's
//! authentication (docs/history.md#serve). The order of a request:
//!
//! 1. the login form's own endpoints ([`rayward_auth::web`]), the only POSTs;
//! 2. any other method than GET or HEAD: 405, before anything else;
//! 3. the path checked ([`path::check`]): hostile targets get 400 without touching the store;
//! 4. authentication: the session cookie, or Basic/Bearer (htpasswd, tokens, OIDC);
//! 5. authorization by namespace ([`access`]): a session the user may not read is
//!    answered exactly as one that does not exist;
//! 6. the answer: the listing (`/`, `/api/clusters`), or under a session's prefix Ray's
//!    static UI from `dashboard_dir` and the dashboard API rebuilt from the store
//!    ([`crate::replay`], [`crate::logview`]);
//! 7. the audit log ([`audit`]).

pub mod access;
pub mod audit;
pub mod cache;
pub mod config;
pub mod path;
mod ui;

use crate::catalog::{self, Catalog, Problem};
use crate::index::NodeIndex;
use crate::store::{Store, StoreError};
use access::{Access, Readable};
use audit::{AuditLog, Record};
use bytes::Bytes;
use config::ServeConfig;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rayward_auth::assertion::{self, AssertionError, Claims, Keys, Seen};
use rayward_auth::principal::Users;
use rayward_auth::shared::{LoginLimiter, Revocations};
use rayward_auth::web::{self, Web};
use rayward_auth::{AuthError, Authenticator, Identity};
use rayward_serve::endpoints::{Own, HEALTHY, OPENMETRICS};
use rayward_serve::{CertStore, ConnOptions};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed_unsync()
}

/// The one answer for "no such thing": a session that does not exist and one the user may
/// not read get these same bytes and headers.
fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `429` with `Retry-After`: too many failed logins from this address or for this user.
fn too_many(wait: Duration) -> Response<Body> {
    let mut r = text(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins; try again later\n",
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(wait.as_secs().max(1)),
    );
    r
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A stored part that cannot be read: named, as Ray's error answers are shaped, so the UI
/// shows it; the rest of the session is still served.
fn store_error(e: &StoreError) -> Response<Body> {
    let body = serde_json::json!({"result": false, "msg": format!("stored object unreadable: {e}"), "data": {}});
    json(StatusCode::INTERNAL_SERVER_ERROR, body.to_string())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReqLabels {
    route: &'static str,
    status: u16,
}

/// What the server counts: requests by route and status.
#[derive(Default)]
pub struct Metrics {
    requests: Family<ReqLabels, Counter>,
    retention_runs: Family<OutcomeLabels, Counter>,
    retention_deleted_sessions: Counter,
    retention_deleted_bytes: Counter,
    /// Redis (`[shared]`) did not answer; this replica's memory decided.
    store_errors: Counter,
    registry: Registry,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rayward_history_serve");
        let requests = Family::<ReqLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by route (home, clusters_api, session_ui, session_api, login, refused, denied, unauthenticated) and status",
            requests.clone(),
        );
        let retention_runs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "retention_runs",
            "Periodic retention runs by outcome (ok, error)",
            retention_runs.clone(),
        );
        let retention_deleted_sessions = Counter::default();
        registry.register(
            "retention_deleted_sessions",
            "Sessions deleted by the periodic retention",
            retention_deleted_sessions.clone(),
        );
        let retention_deleted_bytes = Counter::default();
        registry.register(
            "retention_deleted_bytes",
            "Bytes deleted by the periodic retention",
            retention_deleted_bytes.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "shared_store_errors",
            "Redis ([shared]) calls that failed; this replica's memory decided",
            store_errors.clone(),
        );
        Metrics {
            store_errors,
            requests,
            retention_runs,
            retention_deleted_sessions,
            retention_deleted_bytes,
            registry,
        }
    }

    fn encode(&self) -> String {
        rayward_serve::endpoints::encode(&self.registry)
    }
}

/// The indexes of one session, kept in [`cache::Cache`] and re-read in the background.
struct Loaded {
    nodes: Vec<NodeIndex>,
    problems: Vec<Problem>,
    /// `/logical/actors` as answered (the snapshot with the exported actor states applied
    /// over it: a parse and a merge of about 1 MB per 1,000 actors), made once per read
    /// of the indexes.
    actors: tokio::sync::OnceCell<Option<crate::replay::Answer>>,
}

impl Loaded {
    /// Every node's collector finished: the session's indexes will not change again.
    fn finished(&self) -> bool {
        !self.nodes.is_empty() && self.problems.is_empty() && self.nodes.iter().all(|n| n.finished)
    }
}

/// How long the indexes of a session still being written are served before a background
/// re-read is asked for (a change in the store shows within about this time).
const CACHE_TTL: Duration = Duration::from_secs(5);
/// The same for a finished session (its indexes do not change; retention's deletions
/// empty the cache at once).
const CACHE_TTL_FINISHED: Duration = Duration::from_secs(300);
/// Background re-reads of sessions running at once, and queued at most.
const REFRESH_PARALLEL: usize = 4;
const REFRESH_QUEUE: usize = 256;
/// How often the full listing is re-read in the background (a new session shows within
/// this time; each re-read reads every index, so not more often).
const LISTING_EVERY: Duration = Duration::from_secs(30);
/// Most sessions cached.
const CACHE_MAX: usize = 1024;

/// Largest log read whole for `lines=N`.
const MAX_TAIL: u64 = 64 << 20;

/// Everything a request needs.
pub struct App {
    store: Store,
    authn: Authenticator,
    web: Option<Web>,
    /// Logged-out sessions (shared through Redis with `[shared]`).
    revoked: Revocations,
    users: Users,
    access: Access,
    audit: AuditLog,
    ui: ui::Assets,
    metrics: Metrics,
    sessions: cache::Cache<Loaded>,
    /// Ids of stale sessions to re-read, for [`App::keep_sessions`].
    refresh_tx: tokio::sync::mpsc::Sender<String>,
    refresh_rx: Mutex<Option<tokio::sync::mpsc::Receiver<String>>>,
    /// The full listing and when it was read.
    listing: RwLock<Option<(Instant, Arc<Catalog>)>>,
    /// Held while the listing is read, so two reads never run at once.
    refreshing: tokio::sync::Mutex<()>,
    /// Failed logins per source address and per user (the gateway's defaults: locked
    /// after 5, for 1 s doubling up to 300 s; shared through Redis with `[shared]`).
    logins: LoginLimiter,
    /// The full listing's JSON, with the listing it was made from.
    all_json: Mutex<Option<(Arc<Catalog>, Bytes)>>,
    /// `[retention]`: applied every `interval` by [`App::keep_retention`].
    retention: Option<crate::retention::Retention>,
    /// `[trusted_gateway]`: the gateway's keys, its limits, and the assertions used.
    gateway: Option<Gateway>,
    /// `live_base_url`: sessions still being written link to the gateway's live route.
    live_base_url: Option<String>,
}

/// The trusted gateway ([`rayward_auth::assertion`]).
struct Gateway {
    keys: Keys,
    max_age_secs: u64,
    listing_user: String,
    seen: Seen,
}

/// Most assertion ids remembered (each until its expiry, 30 s by default: ~3,000
/// requests/s through the gateway before new ones are refused).
const MAX_SEEN: usize = 100_000;

/// One request's facts for the audit log and metrics.
struct Ctx {
    route: &'static str,
    peer: IpAddr,
    user: Option<String>,
    source: String,
    session: Option<String>,
    log: Option<String>,
    event: Option<&'static str>,
    reason: Option<String>,
    /// `gateway`: the identity came from the trusted gateway's assertion.
    via: Option<&'static str>,
}

impl App {
    /// Builds the parts from a validated config: the store (its layout version checked),
    /// the authenticator, the login form, the roles.
    pub async fn new(cfg: &ServeConfig) -> Result<App, String> {
        let creds = match &cfg.credentials_file {
            Some(p) => crate::store::read_credentials(p).map_err(|e| e.to_string())?,
            None => vec![],
        };
        let store = Store::open(&cfg.store, &creds).map_err(|e| e.to_string())?;
        store
            .ensure_readable()
            .await
            .map_err(|e| format!("store {}: {e}", store.url()))?;
        let authn = cfg.auth.authenticator().await?;
        let web = match &cfg.session {
            Some(sc) => Some(Web::from_config(sc, cfg.tls.is_some(), "Ray history", "/")?),
            None => None,
        };
        let retention = cfg
            .retention
            .as_ref()
            .map(|r| r.check().map_err(|e| e.to_string()))
            .transpose()?;
        let metrics = Metrics::new();
        let (refresh_tx, refresh_rx) = tokio::sync::mpsc::channel(REFRESH_QUEUE);
        let store_errors = metrics.store_errors.clone();
        let audit = match &cfg.audit.path {
            Some(p) => AuditLog::open(p).map_err(|e| format!("audit.path {p}: {e}"))?,
            None => AuditLog::disabled(),
        };
        Ok(App {
            store,
            authn,
            web,
            revoked: {
                let r = Revocations::new();
                match &cfg.shared {
                    Some(sh) => r.with_redis(
                        &sh.redis,
                        &sh.revoked_key_prefix,
                        Duration::from_millis(sh.timeout_ms),
                        store_errors.clone(),
                    )?,
                    None => r,
                }
            },
            users: Users::new(&cfg.users),
            access: Access::from_config(cfg),
            audit,
            ui: ui::Assets::new(&cfg.dashboard_dir),
            metrics,
            sessions: cache::Cache::new(CACHE_MAX, CACHE_TTL, CACHE_TTL_FINISHED),
            refresh_tx,
            refresh_rx: Mutex::new(Some(refresh_rx)),
            listing: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            all_json: Mutex::new(None),
            logins: {
                let l = LoginLimiter::new(5, Duration::from_secs(1), Duration::from_secs(300));
                match &cfg.shared {
                    Some(sh) => l.with_redis(
                        &sh.redis,
                        &sh.login_key_prefix,
                        Duration::from_millis(sh.timeout_ms),
                        store_errors.clone(),
                    )?,
                    None => l,
                }
            },
            retention,
            gateway: match &cfg.trusted_gateway {
                Some(t) => Some(Gateway {
                    keys: Keys::load(&t.key_file).map_err(|e| format!("trusted_gateway: {e}"))?,
                    max_age_secs: t.max_age_secs,
                    listing_user: t.listing_user.clone(),
                    seen: Seen::new(MAX_SEEN),
                }),
                None => None,
            },
            live_base_url: cfg.live_base_url.clone(),
        })
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    /// `admin_listen`: `/healthz`, `/readyz`, `/metrics`, nothing else.
    pub fn admin<B>(&self, req: &Request<B>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match Own::of(req.uri().path()) {
            Some(Own::Health) => text(StatusCode::OK, HEALTHY),
            Some(Own::Metrics) => {
                let mut r = text(StatusCode::OK, self.metrics.encode());
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
                r
            }
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Handles one request from `peer`.
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>, peer: SocketAddr) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        let mut ctx = Ctx {
            route: "refused",
            peer: peer.ip(),
            user: None,
            source: peer.ip().to_string(),
            session: None,
            log: None,
            event: None,
            reason: None,
            via: None,
        };
        let method = req.method().to_string();
        let path = req.uri().path().chars().take(512).collect::<String>();
        let resp = self.pipeline(req, &mut ctx).await;
        let status = resp.status().as_u16();
        self.metrics
            .requests
            .get_or_create(&ReqLabels {
                route: ctx.route,
                status,
            })
            .inc();
        if let Some(event) = ctx.event {
            self.audit.log(Record {
                event,
                user: ctx.user,
                source: ctx.source,
                method,
                path,
                status,
                session: ctx.session,
                log: ctx.log,
                reason: ctx.reason,
                via: ctx.via,
                ..Record::default()
            });
        }
        resp
    }

    async fn pipeline<B>(&self, req: Request<B>, ctx: &mut Ctx) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        // 1. The login form.
        if let Some(w) = &self.web {
            if let Some(ep) = web::Endpoint::of(req.method(), req.uri().path(), req.uri().query()) {
                ctx.route = "login";
                return self.login(w, ep, req, ctx).await;
            }
        }
        // 2. Read-only: every other method is refused first.
        if req.method() != Method::GET && req.method() != Method::HEAD {
            ctx.event = Some("refused");
            ctx.reason = Some(format!("method {}", req.method()));
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "read-only: GET and HEAD only\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        // 3. Hostile targets.
        let (p, query) = (req.uri().path(), req.uri().query());
        if let Err(why) = path::check(p, query) {
            ctx.event = Some("refused");
            ctx.reason = Some(why.to_string());
            return text(StatusCode::BAD_REQUEST, format!("{why}\n"));
        }
        // 4. Authentication: the trusted gateway's assertion, when configured and sent;
        // its authorization is the one that holds.
        if let Some(g) = &self.gateway {
            if req.headers().contains_key(assertion::HEADER) {
                return match self.gateway_access(g, &req) {
                    Ok((claims, readable)) => {
                        ctx.user = Some(claims.sub.clone());
                        ctx.via = Some("gateway");
                        self.answer(&req, &claims.sub, &readable, ctx).await
                    }
                    Err(e) => {
                        ctx.route = "unauthenticated";
                        ctx.event = Some("denied");
                        ctx.via = Some("gateway");
                        ctx.reason = Some(format!("gateway assertion: {e}"));
                        text(StatusCode::UNAUTHORIZED, format!("{e}\n"))
                    }
                };
            }
        }
        let id = match self.authenticate(&req, ctx.peer).await {
            Ok(id) => id,
            Err(Err(wait)) => {
                ctx.route = "unauthenticated";
                ctx.event = Some("denied");
                ctx.reason = Some("too many failed logins".into());
                return too_many(wait);
            }
            Err(Ok(e)) => {
                ctx.route = "unauthenticated";
                if e != AuthError::Missing {
                    ctx.event = Some("denied");
                    ctx.reason = Some(e.to_string());
                }
                return self.unauthenticated(&req, e);
            }
        };
        ctx.user = Some(id.user.clone());
        let readable = self.access.readable(&self.users.roles_of(&id));
        self.answer(&req, &id.user, &readable, ctx).await
    }

    /// The gateway's assertion checked against this request: signed by a listed key,
    /// fresh, for this method and exact path and query, used once, and its scope naming
    /// this request's cluster (or, for the gateway's own principal, the listing API).
    /// What it lets the request read.
    fn gateway_access<B>(
        &self,
        g: &Gateway,
        req: &Request<B>,
    ) -> Result<(Claims, Readable), AssertionError> {
        let mut values = req.headers().get_all(assertion::HEADER).iter();
        let (Some(v), None) = (values.next(), values.next()) else {
            return Err(AssertionError::Malformed);
        };
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let now = web::unix_now();
        let c = g.keys.verify(
            v.as_bytes(),
            req.method().as_str(),
            target,
            now,
            g.max_age_secs,
        )?;
        let path = req.uri().path();
        let readable = if c.scope == assertion::LISTING {
            if path != "/api/clusters" || c.sub != g.listing_user {
                return Err(AssertionError::Scope);
            }
            Readable::All
        } else {
            let sp = path::session(path).ok_or(AssertionError::Scope)?;
            let mine = format!("{}/{}/{}", sp.namespace, sp.kind.segment(), sp.name);
            if c.scope != mine {
                return Err(AssertionError::Scope);
            }
            Readable::Some(vec![sp.namespace.to_string()])
        };
        g.seen.first_use(&c, now)?;
        Ok((c, readable))
    }

    /// Steps 5 and 6 for an authenticated `user` who may read `readable`.
    async fn answer<B>(
        &self,
        req: &Request<B>,
        user: &str,
        readable: &Readable,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        let readable = readable.clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().map(str::to_string);
        match path.as_str() {
            "/" => {
                ctx.route = "home";
                match self.listing(&readable).await {
                    Ok(c) => ui::listing_page(&c, user, self.live_base_url.as_deref()),
                    Err(e) => store_error(&e),
                }
            }
            "/api/clusters" => {
                ctx.route = "clusters_api";
                match self.listing(&readable).await {
                    Ok(c) => json(StatusCode::OK, self.listing_json(&readable, &c)),
                    Err(e) => store_error(&e),
                }
            }
            _ => match path::session(&path) {
                Some(sp) => {
                    self.session(sp, query.as_deref(), &readable, req.headers(), ctx)
                        .await
                }
                None => not_found(),
            },
        }
    }

    async fn login<B>(
        &self,
        w: &Web,
        ep: web::Endpoint,
        req: Request<B>,
        ctx: &mut Ctx,
    ) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        let refused = |ctx: &mut Ctx, r: web::Refused| {
            ctx.event = Some("refused");
            ctx.reason = Some(r.reason.clone());
            text(r.status, format!("{}\n", r.reason))
        };
        match ep {
            web::Endpoint::LoginPage { failed } => w.login_page(failed).map(full),
            web::Endpoint::Logout => match w.logout(req.headers()) {
                Ok((claims, r)) => {
                    if let Some(c) = claims {
                        self.revoked.revoke(&c.id, c.expiry, web::unix_now()).await;
                    }
                    r.map(full)
                }
                Err(r) => refused(ctx, r),
            },
            web::Endpoint::Login => {
                let (user, password) = match w.read_login(req).await {
                    Ok(x) => x,
                    Err(r) => return refused(ctx, r),
                };
                if let Err(wait) = self.locked(ctx.peer, Some(&user)).await {
                    ctx.event = Some("denied");
                    ctx.reason = Some("too many failed logins".into());
                    return too_many(wait);
                }
                match self
                    .authn
                    .authenticate(rayward_auth::Credentials::Basic {
                        user: user.clone(),
                        password,
                    })
                    .await
                {
                    Ok(id) => {
                        self.succeeded(ctx.peer, Some(&user)).await;
                        ctx.user = Some(id.user.clone());
                        ctx.event = Some("login");
                        match w.open_session(&self.authn, &id) {
                            Ok(r) => r.map(full),
                            Err(r) => refused(ctx, r),
                        }
                    }
                    Err(e) => {
                        self.failed(ctx.peer, Some(&user)).await;
                        ctx.event = Some("login_failed");
                        ctx.reason = Some(e.to_string());
                        let mut r = text(StatusCode::SEE_OTHER, "");
                        r.headers_mut().insert(
                            header::LOCATION,
                            HeaderValue::from_str(&web::failed_location()).expect("a static path"),
                        );
                        r
                    }
                }
            }
        }
    }

    /// Who is asking: the session cookie, or the `Authorization` header checked with
    /// failed-login backoff per source address and per user (`Err(Err(wait))`: locked).
    async fn authenticate<B>(
        &self,
        req: &Request<B>,
        peer: IpAddr,
    ) -> Result<Identity, Result<AuthError, Duration>> {
        if let Some(w) = &self.web {
            if let Some((id, claims)) = w.session_user(&self.authn, req.headers()) {
                if !self.revoked.is_revoked(&claims.id, web::unix_now()).await {
                    return Ok(id);
                }
            }
        }
        let values: Vec<&[u8]> = req
            .headers()
            .get_all(header::AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let creds = rayward_auth::parse_authorization(&values).map_err(Ok)?;
        let user = creds.claimed_user().map(str::to_string);
        let lock = self.logins.locked(peer, user.as_deref()).await;
        if let Some(wait) = lock.wait {
            return Err(Err(wait));
        }
        match self.authn.authenticate(creds).await {
            Ok(id) => {
                // Only a key with failures on record needs clearing (no Redis call for
                // every request of an API client in good standing).
                if lock.counted {
                    self.succeeded(peer, user.as_deref()).await;
                }
                Ok(id)
            }
            Err(e) => {
                self.failed(peer, user.as_deref()).await;
                Err(Ok(e))
            }
        }
    }

    /// `Err(wait)` while the source address or the user is locked out (on any replica,
    /// with `[shared]`).
    async fn locked(&self, peer: IpAddr, user: Option<&str>) -> Result<(), Duration> {
        match self.logins.locked(peer, user).await.wait {
            None => Ok(()),
            Some(w) => Err(w),
        }
    }

    async fn failed(&self, peer: IpAddr, user: Option<&str>) {
        self.logins.fail(peer, user).await;
    }

    async fn succeeded(&self, peer: IpAddr, user: Option<&str>) {
        self.logins.succeed(peer, user).await;
    }

    fn unauthenticated<B>(&self, req: &Request<B>, e: AuthError) -> Response<Body> {
        if self.web.is_some() && e == AuthError::Missing && web::accepts_html(req.headers()) {
            let mut r = text(StatusCode::FOUND, "login required\n");
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static(web::LOGIN_PATH));
            return r;
        }
        let status = match e {
            AuthError::Malformed | AuthError::Duplicate => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut r = text(status, format!("{e}\n"));
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"rayward history\", charset=\"UTF-8\""),
            );
        }
        r
    }

    /// The listing of what `readable` covers: the full listing, kept current by
    /// [`App::refresh_listing`], filtered in memory, so a listing request never waits for
    /// thousands of index reads once the first listing is made.
    async fn listing(&self, readable: &Readable) -> Result<Arc<Catalog>, StoreError> {
        if let Readable::Some(v) = readable {
            if v.is_empty() {
                return Ok(Arc::new(Catalog::default()));
            }
        }
        let current = self
            .listing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let full = match current {
            Some((_, c)) => c,
            None => {
                // The first listing: one read, shared with the background task's.
                let _one = self.refreshing.lock().await;
                let again = self
                    .listing
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                match again {
                    Some((_, c)) => c,
                    None => self.read_listing().await?,
                }
            }
        };
        Ok(match readable {
            Readable::All => full,
            Readable::Some(v) => Arc::new(full.only(v)),
        })
    }

    /// The listing as JSON; the full listing's is made once per re-read (1.5 MB for 5,000
    /// sessions), a filtered one per request.
    fn listing_json(&self, readable: &Readable, c: &Arc<Catalog>) -> Bytes {
        let make = || Bytes::from(serde_json::to_vec(&**c).expect("a catalog serialises"));
        if !matches!(readable, Readable::All) {
            return make();
        }
        let mut cached = self.all_json.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((k, b)) if Arc::ptr_eq(k, c) => b.clone(),
            _ => {
                let b = make();
                *cached = Some((c.clone(), b.clone()));
                b
            }
        }
    }

    /// Reads the full listing again and swaps it in (one read at a time).
    pub async fn refresh_listing(&self) -> Result<Arc<Catalog>, StoreError> {
        let _one = self.refreshing.lock().await;
        self.read_listing().await
    }

    async fn read_listing(&self) -> Result<Arc<Catalog>, StoreError> {
        let c = Arc::new(catalog::list(&self.store, None).await?);
        *self.listing.write().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), c.clone()));
        Ok(c)
    }

    /// Keeps the listing current: re-read every [`LISTING_EVERY`] (errors said on
    /// stderr, the previous listing kept).
    async fn keep_listing(self: Arc<Self>) {
        loop {
            if let Err(e) = self.refresh_listing().await {
                eprintln!("{NAME}: keeping the previous listing: {e}");
            }
            tokio::time::sleep(LISTING_EVERY).await;
        }
    }

    /// Applies `[retention]` now and every `interval` after: deleted sessions leave the
    /// listing at once (it is re-read) and the session cache is emptied. A failed run is
    /// said on stderr and counted; the next one tries again.
    async fn keep_retention(self: Arc<Self>, r: crate::retention::Retention) {
        loop {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            match crate::retention::apply(&self.store, &r.policy, now_ms, false).await {
                Ok(report) => {
                    self.metrics
                        .retention_runs
                        .get_or_create(&OutcomeLabels { outcome: "ok" })
                        .inc();
                    self.metrics
                        .retention_deleted_sessions
                        .inc_by(report.deleted_sessions as u64);
                    self.metrics
                        .retention_deleted_bytes
                        .inc_by(report.deleted_bytes);
                    if report.deleted_sessions > 0 {
                        eprintln!(
                            "{NAME}: retention deleted {} sessions ({} bytes)",
                            report.deleted_sessions, report.deleted_bytes
                        );
                        self.sessions.clear();
                        if let Err(e) = self.refresh_listing().await {
                            eprintln!("{NAME}: keeping the previous listing: {e}");
                        }
                    }
                    for p in &report.problems {
                        eprintln!("{NAME}: retention: {}: {}", p.key, p.error);
                    }
                }
                Err(e) => {
                    self.metrics
                        .retention_runs
                        .get_or_create(&OutcomeLabels { outcome: "error" })
                        .inc();
                    eprintln!("{NAME}: retention failed, retried in {:?}: {e}", r.interval);
                }
            }
            tokio::time::sleep(r.interval).await;
        }
    }

    /// The node indexes of one session: read now the first time, afterwards always from
    /// memory, a stale entry being served while [`App::keep_sessions`] re-reads it
    /// ([`cache`]). Unreadable indexes are problems, the rest is served.
    async fn load(&self, id: &str) -> Result<Arc<Loaded>, StoreError> {
        match self.sessions.lookup(id, Instant::now()) {
            cache::Lookup::Fresh(l) => Ok(l),
            cache::Lookup::Stale { value, refresh } => {
                if refresh && self.refresh_tx.try_send(id.to_string()).is_err() {
                    // The queue is full (or the server stops): ask again later.
                    self.sessions.failed(id, Instant::now());
                }
                Ok(value)
            }
            cache::Lookup::Missing => {
                let l = self.read_session(id).await?;
                self.sessions
                    .put(id, l.clone(), l.finished(), Instant::now());
                Ok(l)
            }
        }
    }

    /// Reads the node indexes of session `id` (`ns/kind/name/session`), the head first.
    async fn read_session(&self, id: &str) -> Result<Arc<Loaded>, StoreError> {
        let (mut nodes, problems) =
            catalog::read_indexes(&self.store, &format!("{}/{id}", crate::layout::V1)).await?;
        nodes.sort_by(|a, b| {
            (a.role != crate::index::Role::Head, &a.node)
                .cmp(&(b.role != crate::index::Role::Head, &b.node))
        });
        Ok(Arc::new(Loaded {
            nodes,
            problems,
            actors: tokio::sync::OnceCell::new(),
        }))
    }

    /// Re-reads the sessions [`App::load`] found stale, [`REFRESH_PARALLEL`] at a time:
    /// the new indexes replace the entry, a session gone from the store leaves the cache,
    /// a failed read keeps the entry (said on stderr) and is tried again later.
    async fn keep_sessions(self: Arc<Self>) {
        use futures::StreamExt;
        let Some(rx) = self
            .refresh_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        tokio_stream_of(rx)
            .for_each_concurrent(REFRESH_PARALLEL, |id| {
                let app = self.clone();
                async move {
                    match app.read_session(&id).await {
                        Ok(l) if l.nodes.is_empty() && l.problems.is_empty() => {
                            app.sessions.remove(&id)
                        }
                        Ok(l) => {
                            let l = match app.sessions.peek(&id) {
                                // Unchanged: the entry is kept with what it has made.
                                Some(old) if old.nodes == l.nodes && old.problems == l.problems => {
                                    old
                                }
                                // Changed: the actors answer, if one was asked for, is made
                                // here rather than by the next request.
                                Some(old) if old.actors.initialized() => {
                                    let _ = l
                                        .actors
                                        .get_or_try_init(|| {
                                            crate::replay::answer(
                                                &app.store,
                                                &l.nodes,
                                                "/logical/actors",
                                            )
                                        })
                                        .await;
                                    l
                                }
                                _ => l,
                            };
                            app.sessions
                                .put(&id, l.clone(), l.finished(), Instant::now())
                        }
                        Err(e) => {
                            eprintln!("{NAME}: keeping the cached indexes of {id}: {e}");
                            app.sessions.failed(&id, Instant::now());
                        }
                    }
                }
            })
            .await;
    }

    async fn session(
        &self,
        sp: path::SessionPath<'_>,
        query: Option<&str>,
        readable: &Readable,
        headers: &http::HeaderMap,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        let id = sp.id();
        ctx.route = "denied";
        if !readable.allows(sp.namespace) {
            ctx.event = Some("denied");
            ctx.session = Some(id);
            ctx.reason = Some(format!("namespace {} is not readable", sp.namespace));
            return not_found();
        }
        let loaded = match self.load(&id).await {
            Ok(l) => l,
            Err(e) => return store_error(&e),
        };
        if loaded.nodes.is_empty() {
            if let Some(p) = loaded.problems.first() {
                // Every index of the session is unreadable: say which and why.
                return json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"result": false, "msg": format!("{}: {}", p.key, p.error), "data": {}}).to_string(),
                );
            }
            return not_found();
        }
        ctx.session = Some(id.clone());
        match sp.rest {
            "" => {
                ctx.route = "session_ui";
                let mut r = text(StatusCode::PERMANENT_REDIRECT, "");
                r.headers_mut().insert(
                    header::LOCATION,
                    HeaderValue::from_str(&format!("/clusters/{id}/")).expect("checked segments"),
                );
                r
            }
            "/" | "/index.html" => {
                ctx.route = "session_ui";
                ctx.event = Some("open_session");
                self.ui.index()
            }
            rest if ui::is_api(rest) => {
                ctx.route = "session_api";
                self.api(rest, query, &loaded, headers, ctx).await
            }
            rest => {
                ctx.route = "session_ui";
                self.ui.asset(rest).await
            }
        }
    }

    async fn api(
        &self,
        rest: &str,
        query: Option<&str>,
        loaded: &Loaded,
        headers: &http::HeaderMap,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        let nodes = &loaded.nodes;
        match rest {
            // The UI asks whether to prompt for Ray's token: never, here.
            "/api/authentication_mode" => {
                return json(StatusCode::OK, r#"{"authentication_mode": "disabled"}"#)
            }
            // Profiling needs live processes: never offered for a stored session.
            "/api/profiling_enabled" => {
                return json(
                    StatusCode::OK,
                    r#"{"result": true, "msg": "", "data": {"profilingEnabled": false, "profilingDefaults": {}}}"#,
                )
            }
            "/api/v0/logs" => {
                let Some(n) = path::query_param(query, "node_id")
                    .and_then(|id| crate::logview::node(nodes, &id))
                else {
                    return not_found();
                };
                return json(StatusCode::OK, crate::logview::list(n).to_string());
            }
            "/api/v0/logs/file" | "/api/v0/logs/stream" => {
                return self.log_file(query, nodes, headers, ctx).await;
            }
            _ => {}
        }
        if let Some(node) = rest.strip_prefix("/nodes/") {
            return match crate::replay::node_detail(&self.store, nodes, node).await {
                Ok(Some(b)) => json(StatusCode::OK, b),
                Ok(None) => not_found(),
                Err(e) => store_error(&e),
            };
        }
        let answer = if rest == "/logical/actors" || rest.starts_with("/logical/actors/") {
            loaded
                .actors
                .get_or_try_init(|| crate::replay::answer(&self.store, nodes, "/logical/actors"))
                .await
                .cloned()
        } else {
            crate::replay::answer(&self.store, nodes, rest).await
        };
        if let Some(actor) = rest.strip_prefix("/logical/actors/") {
            return match answer {
                Ok(Some(a)) => match crate::replay::actor_detail(&a, actor) {
                    Some(b) => json(StatusCode::OK, b),
                    None => not_found(),
                },
                Ok(None) => not_found(),
                Err(e) => store_error(&e),
            };
        }
        match answer {
            Ok(Some(a)) => {
                let mut r = Response::new(full(a.body));
                *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                );
                r
            }
            Ok(None) => not_found(),
            Err(e) => store_error(&e),
        }
    }

    /// A log file as a plain download: the whole file (with HTTP Range requests), or its
    /// last `lines` lines. Streamed from the store a part at a time.
    async fn log_file(
        &self,
        query: Option<&str>,
        nodes: &[NodeIndex],
        headers: &http::HeaderMap,
        ctx: &mut Ctx,
    ) -> Response<Body> {
        let (Some(node_id), Some(name)) = (
            path::query_param(query, "node_id"),
            path::query_param(query, "filename"),
        ) else {
            return text(StatusCode::BAD_REQUEST, "node_id and filename required\n");
        };
        let Some(n) = crate::logview::node(nodes, &node_id) else {
            return not_found();
        };
        let Some(f) = crate::logview::file(n, &name) else {
            return not_found();
        };
        ctx.event = Some("download_log");
        ctx.log = Some(format!("{}/{}", n.node, f.name));
        let lines: i64 = path::query_param(query, "lines")
            .and_then(|l| l.parse().ok())
            .unwrap_or(-1);
        let mut r = if lines > 0 {
            match crate::logview::tail(&self.store, f, lines as usize, MAX_TAIL).await {
                Ok(b) => Response::new(full(b)),
                Err(e) => return store_error(&e),
            }
        } else {
            let total = f.shipped;
            let range = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(|v| parse_range(v, total));
            let (start, end, partial) = match range {
                None | Some(Range::Ignore) => (0, total, false),
                Some(Range::Unsatisfiable) => {
                    let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
                    r.headers_mut().insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{total}")).expect("ascii"),
                    );
                    return r;
                }
                Some(Range::Bytes(s, e)) => (s, e, true),
            };
            let pieces = crate::logview::plan(f, start, end);
            // The first piece is read before answering, so a missing or truncated first
            // part is an error answer rather than a cut-off download.
            let mut pieces = pieces.into_iter();
            let first = match pieces.next() {
                Some(p) => match crate::logview::read(&self.store, &p).await {
                    Ok(b) => Some(b),
                    Err(e) => return store_error(&e),
                },
                None => None,
            };
            let store = self.store.clone();
            let rest = futures::stream::unfold((store, pieces), |(store, mut it)| async move {
                let p = it.next()?;
                let r = crate::logview::read(&store, &p)
                    .await
                    .map(hyper::body::Frame::data)
                    .map_err(|e| Box::new(e) as BoxError);
                Some((r, (store, it)))
            });
            let head = futures::stream::iter(first.map(|b| Ok(hyper::body::Frame::data(b))));
            use futures::StreamExt;
            let body = http_body_util::StreamBody::new(head.chain(rest));
            let mut r = Response::new(BodyExt::boxed_unsync(body));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
            if partial {
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end - 1))
                        .expect("ascii"),
                );
            }
            r
        };
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"file.txt\""),
        );
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        r
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Not a single byte range this server serves (several ranges, another unit): the
    /// whole file, as RFC 9110 allows.
    Ignore,
    Unsatisfiable,
    /// `start..end` (end exclusive).
    Bytes(u64, u64),
}

fn parse_range(v: &str, total: u64) -> Range {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Range::Ignore;
    };
    if spec.contains(',') {
        return Range::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), num(a), num(b)) {
        (true, _, Some(n)) => {
            if n == 0 || total == 0 {
                Range::Unsatisfiable
            } else {
                Range::Bytes(total.saturating_sub(n), total)
            }
        }
        (false, Some(s), None) if b.is_empty() => {
            if s >= total {
                Range::Unsatisfiable
            } else {
                Range::Bytes(s, total)
            }
        }
        (false, Some(s), Some(e)) if e >= s => {
            if s >= total {
                Range::Unsatisfiable
            } else {
                Range::Bytes(s, (e + 1).min(total))
            }
        }
        _ => Range::Ignore,
    }
}

/// A server ready to serve: built and bound.
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    admin: TcpListener,
    tls: Option<Arc<CertStore>>,
}

type HandleFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>,
>;

const NAME: &str = "rayward history serve";

impl Server {
    pub async fn bind(cfg: &ServeConfig) -> Result<Server, String> {
        let app = App::new(cfg).await?;
        let tls = match &cfg.tls {
            Some(t) => {
                let s = CertStore::load(&t.cert, &t.key).map_err(|e| format!("tls: {e}"))?;
                s.server_config().map_err(|e| format!("tls: {e}"))?;
                Some(s)
            }
            None => None,
        };
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("listen {}: {e}", cfg.listen))?;
        let admin = TcpListener::bind(cfg.admin_listen)
            .await
            .map_err(|e| format!("admin_listen {}: {e}", cfg.admin_listen))?;
        Ok(Server {
            app: Arc::new(app),
            listener,
            admin,
            tls,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains ([`rayward_serve::listen`]).
    pub async fn serve_until(self, shutdown: impl std::future::Future<Output = ()>) {
        let Server {
            app,
            listener,
            admin,
            tls,
        } = self;
        let mut tasks = app.authenticator().spawn_reloaders(NAME);
        tasks.push(tokio::spawn(app.clone().keep_listing()));
        tasks.push(tokio::spawn(app.clone().keep_sessions()));
        if let Some(r) = app.retention.clone() {
            tasks.push(tokio::spawn(app.clone().keep_retention(r)));
        }
        if let Some(s) = tls.clone() {
            tasks.push(tokio::spawn(s.watch(Duration::from_secs(2), NAME)));
        }
        let _stop = AbortOnDrop(tasks);
        let admin_app = app.clone();
        let make = move |peer: SocketAddr| {
            let app = app.clone();
            hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = app.clone();
                let fut: HandleFuture = Box::pin(async move { Ok(app.handle(req, peer).await) });
                fut
            })
        };
        let admin_make = move |_peer: SocketAddr| {
            let app = admin_app.clone();
            hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let r = app.admin(&req);
                async move { Ok::<_, std::convert::Infallible>(r) }
            })
        };
        let opts = ConnOptions {
            name: NAME,
            max_header_bytes: Some(16 * 1024),
            max_headers: Some(100),
            ..ConnOptions::default()
        };
        let admin_opts = ConnOptions {
            name: "rayward history serve (admin)",
            max_header_bytes: Some(8192),
            max_headers: Some(100),
            ..ConnOptions::default()
        };
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

/// The receiver as a stream (`futures::stream::unfold`, no tokio-stream dependency).
fn tokio_stream_of(rx: tokio::sync::mpsc::Receiver<String>) -> impl futures::Stream<Item = String> {
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|id| (id, rx)) },
    )
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        for (v, want) in [
            ("bytes=0-9", Range::Bytes(0, 10)),
            ("bytes=5-", Range::Bytes(5, 100)),
            ("bytes=-10", Range::Bytes(90, 100)),
            ("bytes=90-200", Range::Bytes(90, 100)),
            ("bytes=100-", Range::Unsatisfiable),
            ("bytes=-0", Range::Unsatisfiable),
            ("bytes=0-1,3-4", Range::Ignore),
            ("items=0-1", Range::Ignore),
            ("bytes=5-1", Range::Ignore),
            ("bytes=a-", Range::Ignore),
        ] {
            assert_eq!(parse_range(v, 100), want, "{v}");
        }
    }
}
