//! The request pipeline, in the order of shared/DESIGN.md (beside the repository): network filter → request-shape
//! checks → path normalisation and route classification → authentication (with failed-
//! login backoff) → authorization → rate limit → proxy → audit log. Each stage is its own
//! module; this file only orders them and turns their refusals into responses.

use crate::audit_log::{self, AuditLog, Record};
use crate::authn::web::{self, Web};
use crate::authn::{self, AuthError, Authenticator};
use crate::authz::{Authz, Decision, Verdict};
use crate::config::Config;
use crate::idle::IdleBody;
use crate::k8s::KubeAuth;
use crate::metrics::Metrics;
use crate::net::NetFilter;
use crate::proxy::{self, Body, Upstream, UpstreamError};
use crate::ratelimit::shared::LoginLimiter;
use crate::ratelimit::RateLimit;
use crate::revoke::Revocations;
use crate::route::{self, Class, Route};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use rayward_serve::endpoints::{Own, HEALTHY, OPENMETRICS};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest job-submission body buffered to read its entrypoint for the audit log.
pub const MAX_SUBMIT_BODY: usize = 1024 * 1024;
/// Largest job-submission response buffered to read the submission id.
const MAX_SUBMIT_RESPONSE: usize = 64 * 1024;

static X_FORWARDED_FOR: header::HeaderName = header::HeaderName::from_static("x-forwarded-for");

pub struct Gateway {
    pub(crate) net: NetFilter,
    pub(crate) authn: Authenticator,
    pub(crate) authz: Authz,
    /// The one Ray dashboard (`upstream`); None under `[discovery]`.
    pub(crate) upstream: Option<Arc<Upstream>>,
    /// Every discovered cluster (`[discovery]`).
    pub(crate) discovery: Option<Arc<crate::discovery::Discovery>>,
    /// Host routing's domain (`discovery.base_domain`).
    pub(crate) base_domain: Option<String>,
    /// `rayward history serve` (`discovery.history_upstream`).
    pub(crate) history: Option<Arc<Upstream>>,
    /// The key that signs what the gateway tells history serve (`history_key_file`).
    pub(crate) history_link: Option<crate::history::Link>,
    pub(crate) metrics: Metrics,
    pub(crate) audit: AuditLog,
    /// Failed logins per source and per user (shared through Redis when configured).
    pub(crate) logins: LoginLimiter,
    pub(crate) rate: RateLimit,
    pub(crate) max_body: u64,
    /// Longest quiet time of a request body being streamed or buffered.
    pub(crate) body_idle: Duration,
    /// Browser logins ([`rayward_auth::web`]), when `[session]` is configured.
    pub(crate) web: Option<Web>,
    /// Logged-out sessions (shared through Redis when configured).
    pub(crate) revoked: Revocations,
    /// Kubernetes identities (`[kubernetes]`).
    pub(crate) kube: Option<Arc<KubeAuth>>,
    /// Who may stop or delete which job; stamp the submitter's groups too.
    pub(crate) jobs: crate::jobs::JobsConfig,
}

/// The `class` label of the gateway's own endpoints (`/healthz`, `/metrics`, login,
/// logout) in metrics and the audit log: they are no Ray route.
pub const OWN_CLASS: &str = "gateway";

/// The gateway's own login and logout paths (Ray has no `/rayward/` routes), shared with
/// every server that has a login form ([`rayward_auth::web`]).
pub use rayward_auth::web::{LOGIN_PATH, LOGOUT_PATH};

/// A refusal by the gateway itself.
struct Refusal {
    status: StatusCode,
    reason: String,
    outcome: &'static str,
    retry_after: Option<Duration>,
    /// Send the browser here instead of showing the reason.
    location: Option<String>,
}

fn refuse(status: StatusCode, outcome: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
        outcome,
        retry_after: None,
        location: None,
    }
}

/// What the pipeline learned about a request, for the audit log.
pub(crate) struct Ctx {
    /// The gateway answered the request itself, without Ray.
    answered: bool,
    /// One of the gateway's own endpoints (login, logout), not a Ray route.
    own_endpoint: bool,
    /// The client's address; written out only when the request is audited.
    source: IpAddr,
    method: Method,
    /// The request target as received: the audit log's path until it is normalised.
    uri: http::Uri,
    /// The path normalised (`route::normalise_path` of `uri`'s) once that step passed;
    /// recomputed only for an audited request rather than copied for every one.
    normalised: bool,
    /// A path of the gateway's own (login, logout) that replaces the request's.
    path: Option<&'static str>,
    class: Class,
    /// The user of the gateway's own endpoints (login, logout).
    user: Option<String>,
    /// Who the request was authenticated as (shared, not copied, from the memo).
    id: Option<Arc<authn::Identity>>,
    /// RBAC's verdict (`rbac:VERB`), when Kubernetes decided; else `roles` are the role.
    role: Option<String>,
    /// The identity's roles, joined only when the request is audited.
    roles: Vec<String>,
    entrypoint: Option<String>,
    submission_id: Option<String>,
    /// The submitter of the job a stop or delete names.
    owner: Option<String>,
    /// Where the request goes, decided before authentication.
    dest: Dest,
    /// Hand the request back instead of sending it ([`Gateway::decide`]).
    relaying: bool,
    /// The request, ready for Ray, when `relaying`.
    ticket: Option<Ticket>,
}

/// A request the pipeline let through, ready for Ray, for the relay to send.
pub(crate) struct Ticket {
    pub(crate) method: Method,
    /// The normalised path and the query: the request target Ray gets.
    pub(crate) target: String,
    /// The headers as Ray gets them ([`Upstream::prepare_headers`]).
    pub(crate) headers: http::HeaderMap,
    pub(crate) upstream: Arc<Upstream>,
}

/// What [`Gateway::decide`] decided.
pub(crate) enum Decided {
    /// The gateway's own answer (a refusal, the login page, ...), already counted.
    Answer(Response<Body>),
    /// Send this to Ray; then [`Gateway::relayed`] or [`Gateway::relay_failed`].
    Relay(Ticket, Box<Ctx>),
}

/// A request's body as the pipeline reads it: hyper's, or none (the relay's requests,
/// [`crate::relay::head`]).
pub enum ReqBody {
    Client(Incoming),
    Empty,
}

impl http_body::Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ReqBody::Client(b) => std::pin::Pin::new(b).poll_frame(cx),
            ReqBody::Empty => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Client(b) => b.is_end_stream(),
            ReqBody::Empty => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ReqBody::Client(b) => b.size_hint(),
            ReqBody::Empty => http_body::SizeHint::with_exact(0),
        }
    }
}

/// Where a request goes. Under `[discovery]` the cluster is named by the request (path
/// prefix or host) and looked up only after authorization, so that its existence is told
/// to no one who may not read it.
#[derive(Clone)]
enum Dest {
    /// `upstream`: the one cluster.
    Single,
    /// A discovered cluster.
    Cluster { namespace: String, name: String },
    /// A terminated cluster's history (`rayward history serve`).
    History {
        namespace: String,
        kind: String,
        name: String,
    },
    /// The list of clusters (`/`).
    Landing,
}

/// What [`Gateway::pick`] decided: go on with the path Ray gets and its route, or answer.
enum Picked {
    Go(String, Route),
    Answer(Response<Body>),
}

impl Ctx {
    fn new<B>(peer: SocketAddr, req: &Request<B>, relaying: bool) -> Ctx {
        Ctx {
            source: peer.ip(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            normalised: false,
            path: None,
            class: Class::Denied,
            answered: false,
            own_endpoint: false,
            user: None,
            id: None,
            role: None,
            roles: Vec::new(),
            entrypoint: None,
            submission_id: None,
            owner: None,
            dest: Dest::Single,
            relaying,
            ticket: None,
        }
    }

    /// Who made the request: the authenticated identity, or the user a login named.
    fn user(&self) -> Option<&str> {
        self.user
            .as_deref()
            .or_else(|| self.id.as_deref().map(|i| i.user.as_str()))
    }

    /// The authenticated principal's groups (Kubernetes), for the job stamp.
    fn groups(&self) -> &[String] {
        self.id.as_deref().map_or(&[], |i| i.groups.as_slice())
    }
}

impl Dest {
    /// The RBAC resource authorization names: the kind of a history URL's object.
    fn resource(&self) -> &'static str {
        match self {
            Dest::History { kind, .. } => crate::history::resource(kind),
            _ => crate::k8s::RESOURCE,
        }
    }

    /// The RayCluster that authorization names, when the request names one.
    fn target(&self) -> Option<(&str, &str)> {
        match self {
            Dest::Cluster { namespace, name }
            | Dest::History {
                namespace, name, ..
            } => Some((namespace, name)),
            Dest::Single | Dest::Landing => None,
        }
    }
}

impl Gateway {
    /// Builds every stage from a validated config; `ray_token` is the cluster's token
    /// (single-upstream mode; None under `[discovery]`, where each cluster's comes from its
    /// Secret).
    pub fn new(
        cfg: &Config,
        authn: Authenticator,
        ray_token: Option<&str>,
        audit: AuditLog,
    ) -> Result<Gateway, String> {
        let l = &cfg.limits;
        let mut metrics = Metrics::new();
        let discovery = cfg.discovery.as_ref().map(|d| {
            Arc::new(crate::discovery::Discovery::new(
                d,
                crate::discovery::UpstreamSettings {
                    timeout: l.upstream_timeout(),
                    idle: l.stream_idle_timeout(),
                    pass_errors: cfg.pass_upstream_errors,
                },
            ))
        });
        if let Some(d) = &discovery {
            metrics.register_collector(Box::new(crate::discovery_metrics::DiscoveryCollector(
                d.clone(),
            )));
        }
        let mut logins = LoginLimiter::new(
            l.failed_login_threshold,
            Duration::from_secs(l.failed_login_base_lock_secs),
            Duration::from_secs(l.failed_login_max_lock_secs),
        );
        if let Some(url) = &cfg.ratelimit.redis {
            logins = logins.with_redis(
                url,
                &cfg.ratelimit.redis_key_prefix,
                Duration::from_millis(cfg.ratelimit.redis_timeout_ms),
                metrics.login_store_errors.clone(),
            )?;
        }
        let mut revoked = Revocations::new();
        if let (Some(url), Some(sc)) = (&cfg.ratelimit.redis, &cfg.session) {
            revoked = revoked.with_redis(
                url,
                &sc.redis_key_prefix,
                Duration::from_millis(cfg.ratelimit.redis_timeout_ms),
                metrics.session_store_errors.clone(),
            )?;
        }
        Ok(Gateway {
            revoked,
            net: NetFilter::from_config(&cfg.network)?,
            authn,
            authz: Authz::from_config(cfg),
            upstream: match &cfg.upstream {
                Some(u) => Some(Arc::new(Upstream::new(
                    u,
                    ray_token,
                    l.upstream_timeout(),
                    l.stream_idle_timeout(),
                    cfg.pass_upstream_errors,
                )?)),
                None => None,
            },
            discovery,
            base_domain: cfg.discovery.as_ref().and_then(|d| d.base_domain.clone()),
            history: match cfg
                .discovery
                .as_ref()
                .and_then(|d| d.history_upstream.as_ref())
            {
                // History serve gets no Ray token: it is no Ray cluster.
                Some(h) => Some(Arc::new(Upstream::new(
                    h,
                    None,
                    l.upstream_timeout(),
                    l.stream_idle_timeout(),
                    cfg.pass_upstream_errors,
                )?)),
                None => None,
            },
            history_link: match cfg
                .discovery
                .as_ref()
                .and_then(|d| d.history_key_file.as_ref())
            {
                Some(p) => Some(crate::history::Link::new(
                    crate::history::Keys::load(p)
                        .map_err(|e| format!("discovery.history_key_file: {e}"))?,
                )),
                None => None,
            },
            metrics,
            audit,
            logins,
            rate: RateLimit::new(l.requests_per_second, l.burst),
            max_body: l.max_body_bytes,
            body_idle: l.stream_idle_timeout(),
            web: match &cfg.session {
                Some(sc) => Some(Web::from_config(
                    sc,
                    cfg.tls.is_some(),
                    "Ray dashboard",
                    "/",
                )?),
                None => None,
            },
            kube: None,
            jobs: cfg.jobs.clone(),
        })
    }

    /// Also accepts Kubernetes identities, authorized by RBAC on the RayCluster.
    pub fn with_kube(mut self, kube: KubeAuth) -> Gateway {
        self.kube = Some(Arc::new(kube));
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    /// A request head refused for its framing before hyper read it
    /// ([`rayward_serve::framing`]): counted and audited like the pipeline's refusals.
    pub fn framing_refused(&self, peer: SocketAddr, r: &rayward_serve::Refused) {
        self.metrics.request(Class::Denied.as_str(), "rejected");
        self.audit.log(Record {
            time: audit_log::now_rfc3339(),
            user: None,
            role: None,
            source: peer.ip().to_string(),
            method: r.method.clone().unwrap_or_default(),
            path: r.target.clone().unwrap_or_default(),
            class: Class::Denied.as_str(),
            status: r.status,
            reason: Some(r.reason.to_string()),
            entrypoint: None,
            submission_id: None,
            owner: None,
            cluster: None,
        });
    }

    /// Handles one request on the admin listener (`admin_listen`): `/healthz`, `/readyz`
    /// and `/metrics`, nothing else. Ray traffic never comes here, and these paths are
    /// not answered on the public port.
    pub fn admin<B>(&self, req: &Request<B>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match Own::of(req.uri().path()) {
            Some(Own::Health) => {
                self.metrics.request(OWN_CLASS, "answered");
                text(StatusCode::OK, HEALTHY)
            }
            Some(Own::Metrics) => {
                self.metrics.request(OWN_CLASS, "answered");
                let mut r = text(StatusCode::OK, self.metrics.encode());
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
                r
            }
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Handles one request from `peer`.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        self.handle_on(req, peer, None).await
    }

    /// Handles one request from `peer` on a connection whose last verified credential
    /// `memo` remembers ([`crate::memo`]).
    pub async fn handle_on(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        memo: Option<&crate::memo::ConnMemo>,
    ) -> Response<Body> {
        let req = req.map(ReqBody::Client);
        let mut ctx = Ctx::new(peer, &req, false);
        let result = self.pipeline(req, peer, memo, &mut ctx).await;
        self.conclude(ctx, result)
    }

    /// The relay's entry ([`crate::relay`]): the same pipeline, which stops where it would
    /// send the request to Ray and hands it back instead, ready to go.
    pub(crate) async fn decide(
        &self,
        req: Request<ReqBody>,
        peer: SocketAddr,
        memo: Option<&crate::memo::ConnMemo>,
    ) -> Decided {
        let mut ctx = Ctx::new(peer, &req, true);
        let result = self.pipeline(req, peer, memo, &mut ctx).await;
        if result.is_ok() {
            if let Some(t) = ctx.ticket.take() {
                return Decided::Relay(t, Box::new(ctx));
            }
        }
        Decided::Answer(self.conclude(ctx, result))
    }

    /// A relayed request Ray answered with `status` after `latency`: counted and audited
    /// as a forwarded one is.
    pub(crate) fn relayed(&self, ctx: Box<Ctx>, status: StatusCode, latency: Duration) {
        self.metrics.upstream_latency.observe(latency.as_secs_f64());
        let outcome = if status.is_server_error() {
            "upstream_error"
        } else {
            "forwarded"
        };
        self.record(*ctx, status, outcome, None);
    }

    /// A relayed request Ray did not answer: the answer a forwarded one gets.
    pub(crate) fn relay_failed(&self, ctx: Box<Ctx>, e: UpstreamError) -> Response<Body> {
        let r = self.upstream_refusal(e);
        self.conclude(*ctx, Err(r))
    }

    fn upstream_refusal(&self, e: UpstreamError) -> Refusal {
        match e {
            UpstreamError::BodyTooLarge => refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "rejected",
                format!("request body over {} bytes", self.max_body),
            ),
            UpstreamError::BodyIdle => refuse(
                StatusCode::REQUEST_TIMEOUT,
                "rejected",
                format!("request body stalled for {:?}", self.body_idle),
            ),
            UpstreamError::Timeout(_) => {
                refuse(StatusCode::GATEWAY_TIMEOUT, "upstream_error", e.to_string())
            }
            UpstreamError::Unreachable(_) => refuse(
                StatusCode::BAD_GATEWAY,
                "upstream_error",
                "upstream unreachable",
            ),
        }
    }

    /// The response for a pipeline's result, counted and audited.
    fn conclude(&self, ctx: Ctx, result: Result<Response<Body>, Refusal>) -> Response<Body> {
        let (resp, outcome, reason) = match result {
            Ok(resp) => {
                let outcome = if ctx.answered {
                    "answered"
                } else if resp.status().is_server_error() {
                    "upstream_error"
                } else {
                    "forwarded"
                };
                (resp, outcome, None)
            }
            Err(r) => {
                let mut resp = text(r.status, format!("{}\n", r.reason));
                // The request's body may be unread: end the connection rather than parse
                // leftover bytes as the next request.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                if r.status == StatusCode::UNAUTHORIZED {
                    resp.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"rayward\", charset=\"UTF-8\""),
                    );
                }
                if let Some(loc) = r
                    .location
                    .as_deref()
                    .and_then(|l| HeaderValue::from_str(l).ok())
                {
                    resp.headers_mut().insert(header::LOCATION, loc);
                }
                if let Some(wait) = r.retry_after {
                    resp.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from(wait.as_secs().max(1)),
                    );
                }
                (resp, r.outcome, Some(r.reason))
            }
        };
        self.record(ctx, resp.status(), outcome, reason);
        resp
    }

    /// Counts a request and writes its audit record when it changed state or was refused.
    fn record(&self, ctx: Ctx, status: StatusCode, outcome: &'static str, reason: Option<String>) {
        let class = if ctx.own_endpoint {
            OWN_CLASS
        } else {
            ctx.class.as_str()
        };
        self.metrics.request(class, outcome);
        let state_changing = matches!(ctx.class, Class::Write | Class::Admin);
        if state_changing || reason.is_some() {
            let path = audited_path(&ctx);
            let user = ctx.user().map(str::to_string);
            let role = ctx
                .role
                .or_else(|| (!ctx.roles.is_empty()).then(|| ctx.roles.join(",")));
            self.audit.log(Record {
                time: audit_log::now_rfc3339(),
                user,
                role,
                source: ctx.source.to_string(),
                method: ctx.method.to_string(),
                path,
                class,
                status: status.as_u16(),
                reason,
                entrypoint: ctx.entrypoint,
                submission_id: ctx.submission_id,
                owner: ctx.owner,
                cluster: ctx.dest.target().map(|(ns, n)| format!("{ns}/{n}")),
            });
        }
    }

    async fn pipeline(
        &self,
        req: Request<ReqBody>,
        peer: SocketAddr,
        memo: Option<&crate::memo::ConnMemo>,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Refusal> {
        // 1. Network.
        let client = {
            let xff: Vec<&str> = req
                .headers()
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            self.net
                .client_ip(peer.ip(), &xff)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, "rejected", e.to_string()))?
        };
        ctx.source = client;
        self.net
            .check(client)
            .map_err(|e| refuse(StatusCode::FORBIDDEN, "forbidden", e.to_string()))?;

        // The login form, when sessions are configured.
        if let Some(w) = &self.web {
            let own = web::Endpoint::of(req.method(), req.uri().path(), req.uri().query());
            ctx.own_endpoint = own.is_some();
            ctx.answered = own.is_some();
            match own {
                Some(web::Endpoint::LoginPage { failed }) => {
                    return Ok(w.login_page(failed).map(proxy::full))
                }
                Some(web::Endpoint::Login) => return self.login(w, req, client, ctx).await,
                Some(web::Endpoint::Logout) => return self.logout(w, req, ctx).await,
                None => {}
            }
        }

        // 2. Request shape.
        check_shape(&req)?;
        let path = route::normalise_path(req.uri().path())
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, "rejected", e.to_string()))?;
        let query = req.uri().query().map(str::to_string);
        if let Some(q) = &query {
            route::check_query(q)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, "rejected", e.to_string()))?;
        }
        ctx.normalised = true;
        // Which cluster, before anyone is authenticated: authorization names it.
        let (path, route) = match self.discovery {
            None => {
                let route = route::classify(req.method(), &path);
                (path, route)
            }
            Some(_) => match self.pick(&req, path, query.as_deref(), ctx)? {
                Picked::Go(path, route) => (path, route),
                Picked::Answer(r) => return Ok(r),
            },
        };
        ctx.class = route.class;
        let wants_upgrade = req.headers().contains_key(header::UPGRADE);
        if wants_upgrade && !(route.websocket && req.method() == Method::GET) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "rejected",
                "protocol upgrade is only allowed on /api/jobs/{id}/logs/tail",
            ));
        }
        if wants_upgrade && !is_websocket_upgrade(&req) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "rejected",
                "only WebSocket upgrades are allowed",
            ));
        }

        // 3. Authentication, with backoff per source and per user.
        if let Some(id) = self.session_identity(&req).await {
            if let Some(wait) = self.logins.locked(client, None).await.wait {
                return Err(locked(wait));
            }
            return self
                .authorized(req, Arc::new(id), route, path, query, wants_upgrade, ctx)
                .await;
        }
        if self.web.is_some()
            && !req.headers().contains_key(header::AUTHORIZATION)
            && req.method() == Method::GET
            && web::accepts_html(req.headers())
        {
            self.metrics.auth_failure(AuthError::Missing.reason());
            let mut r = refuse(StatusCode::FOUND, "unauthenticated", "login required");
            r.location = Some(LOGIN_PATH.to_string());
            return Err(r);
        }
        let header = {
            let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
            match (values.next(), values.next()) {
                (Some(v), None) => Some(v.as_bytes()),
                _ => None,
            }
        };
        // Read before authenticating: a reload during it leaves the memo stale.
        let generation = self.authn.generation();
        if let (Some(m), Some(h)) = (memo, header) {
            if let Some(user) = m.get(h, generation, Instant::now()) {
                // The same checks as below, but the verification: lockout, then success.
                // (A memoised identity is an htpasswd one: its name is the claimed user.)
                let lock = self.logins.locked(client, Some(&user.name)).await;
                if let Some(wait) = lock.wait {
                    return Err(locked(wait));
                }
                if lock.counted {
                    self.logins.succeed(client, Some(&user.name)).await;
                }
                return self
                    .authorized(req, user, route, path, query, wants_upgrade, ctx)
                    .await;
            }
        }
        let creds = {
            let values: Vec<&[u8]> = req
                .headers()
                .get_all(header::AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            authn::parse_authorization(&values).map_err(|e| self.auth_refusal(e))?
        };
        let claimed = creds.claimed_user().map(str::to_string);
        let lock = self.logins.locked(client, claimed.as_deref()).await;
        if let Some(wait) = lock.wait {
            return Err(locked(wait));
        }
        let result = match (&creds, &self.kube) {
            // A bearer value the gateway's own tokens and OIDC issuer do not claim is for
            // the Kubernetes API server to judge.
            (authn::Credentials::Bearer(t), Some(k)) if !self.authn.claims_bearer(t) => {
                k.authenticate(t).await.map(|id| (id, None))
            }
            _ => self.authn.authenticate_vouched(creds).await,
        };
        let user = match result {
            Err(AuthError::Unavailable) => return Err(self.auth_refusal(AuthError::Unavailable)),
            Ok((u, vouched)) => {
                if lock.counted {
                    self.logins.succeed(client, claimed.as_deref()).await;
                }
                // Only a cached htpasswd verification is vouched for (never a bearer).
                let u = Arc::new(u);
                if let (Some(m), Some(h), Some(until)) = (memo, header, vouched) {
                    m.put(h, generation, until, &u);
                }
                u
            }
            Err(e) => {
                if let Some(m) = memo {
                    m.clear();
                }
                self.logins.fail(client, claimed.as_deref()).await;
                return Err(self.auth_refusal(e));
            }
        };
        self.authorized(req, user, route, path, query, wants_upgrade, ctx)
            .await
    }

    /// Under `[discovery]`: the destination from the `Host` header and the normalised path
    /// ([`crate::upstreams::pick`]), the path Ray gets, and its route class.
    fn pick<B>(
        &self,
        req: &Request<B>,
        path: String,
        query: Option<&str>,
        ctx: &mut Ctx,
    ) -> Result<Picked, Refusal> {
        use crate::upstreams::Pick;
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        let read_only = |pattern| Route {
            class: if req.method() == Method::GET || req.method() == Method::HEAD {
                Class::Read
            } else {
                Class::Denied
            },
            pattern,
            websocket: false,
        };
        match crate::upstreams::pick(host, &path, self.base_domain.as_deref()) {
            Pick::Cluster {
                namespace,
                name,
                path,
                ..
            } => {
                let route = route::classify(req.method(), &path);
                ctx.dest = Dest::Cluster { namespace, name };
                Ok(Picked::Go(path, route))
            }
            Pick::History {
                namespace,
                kind,
                name,
            } => {
                ctx.dest = Dest::History {
                    namespace,
                    kind,
                    name,
                };
                Ok(Picked::Go(path, read_only("history")))
            }
            Pick::Landing => {
                ctx.dest = Dest::Landing;
                Ok(Picked::Go(path, read_only("/")))
            }
            Pick::Redirect(to) => {
                ctx.answered = true;
                let to = match query {
                    Some(q) => format!("{to}?{q}"),
                    None => to,
                };
                // The dashboard's relative URLs resolve under the prefix only with the slash.
                let mut r = Response::new(proxy::empty());
                *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
                if let Ok(v) = HeaderValue::from_str(&to) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Ok(Picked::Answer(r))
            }
            Pick::NotFound(why) => Err(refuse(StatusCode::NOT_FOUND, "rejected", why)),
        }
    }

    /// The landing page: the discovered clusters `id` may read.
    async fn landing(
        &self,
        id: &authn::Identity,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Refusal> {
        let Some(d) = &self.discovery else {
            return Err(refuse(StatusCode::NOT_FOUND, "rejected", "not found"));
        };
        ctx.answered = true;
        ctx.own_endpoint = true;
        let table = d.table();
        let mut rows = Vec::new();
        for c in table.values().flat_map(|m| m.values()) {
            if self
                .may(id, Class::Read, Some((&c.namespace, &c.name)))
                .await?
            {
                rows.push(crate::landing::Row { cluster: c });
            }
        }
        let history = self.readable_sessions(id).await?;
        let html = crate::landing::page(
            &id.user,
            &rows,
            history.as_ref().map(|h| h.as_ref().map(|v| v.as_slice())),
            &table,
            self.base_domain.as_deref(),
        );
        let mut r = Response::new(proxy::full(html));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(crate::landing::CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }

    /// The stored sessions `id` may read (history serve's listing, each entry authorized
    /// as a read of its object, decisions cached by [`crate::k8s`]); `Ok(None)` without
    /// history or its key, `Ok(Some(Err(why)))` when serve cannot be asked.
    async fn readable_sessions(
        &self,
        id: &authn::Identity,
    ) -> Result<Option<Result<Vec<crate::history::Session>, String>>, Refusal> {
        let (Some(up), Some(link)) = (&self.history, &self.history_link) else {
            return Ok(None);
        };
        let all = match link.sessions(up).await {
            Ok(a) => a,
            Err(e) => return Ok(Some(Err(e))),
        };
        let mut out = Vec::new();
        for s in all.iter() {
            let resource = crate::history::resource(&s.kind);
            if self
                .may_on(id, Class::Read, resource, Some((&s.namespace, &s.name)))
                .await?
            {
                out.push(s.clone());
            }
        }
        Ok(Some(Ok(out)))
    }

    /// Whether `id` may use `class` routes on `target` (RBAC for Kubernetes identities,
    /// the gateway's roles for the others, those whose `clusters` reach the target).
    async fn may(
        &self,
        id: &authn::Identity,
        class: Class,
        target: Option<(&str, &str)>,
    ) -> Result<bool, Refusal> {
        self.may_on(id, class, crate::k8s::RESOURCE, target).await
    }

    /// [`Gateway::may`] on an object of RBAC `resource` in `ray.io` (history: the kind of
    /// the stored session's object).
    async fn may_on(
        &self,
        id: &authn::Identity,
        class: Class,
        resource: &'static str,
        target: Option<(&str, &str)>,
    ) -> Result<bool, Refusal> {
        if let (authn::Source::Kubernetes, Some(k)) = (id.source, &self.kube) {
            let answer = match target {
                Some((ns, name)) => k.authorize_resource(id, class, resource, ns, name).await,
                None => k.authorize(id, class).await,
            };
            return answer.map_err(|_| kube_down());
        }
        Ok(matches!(
            self.authz.decide_on(id, class, target),
            Decision::Allow { .. }
        ))
    }

    /// The upstream of the request's destination, once it is authorized: 404 for a
    /// cluster not discovered, 503 for one whose dashboard is not reachable yet.
    fn upstream_of(&self, dest: &Dest) -> Result<Arc<Upstream>, Refusal> {
        match dest {
            Dest::Single | Dest::Landing => self
                .upstream
                .clone()
                .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "rejected", "not found")),
            Dest::Cluster { namespace, name } => {
                let c = self
                    .discovery
                    .as_ref()
                    .and_then(|d| d.lookup(namespace, name))
                    .ok_or_else(|| no_such_cluster(namespace, name))?;
                c.upstream.clone().map_err(|e| {
                    refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "upstream_error",
                        format!("Ray cluster {namespace}/{name} is not reachable yet: {e}"),
                    )
                })
            }
            Dest::History { .. } => self.history.clone().ok_or_else(|| {
                refuse(
                    StatusCode::NOT_FOUND,
                    "rejected",
                    "no history upstream configured (discovery.history_upstream)",
                )
            }),
        }
    }

    /// Stages after authentication: authorization, rate limit, forwarding.
    #[allow(clippy::too_many_arguments)]
    async fn authorized(
        &self,
        req: Request<ReqBody>,
        id: Arc<authn::Identity>,
        route: Route,
        path: String,
        query: Option<String>,
        wants_upgrade: bool,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Refusal> {
        ctx.id = Some(id.clone());
        ctx.roles = self.authz.roles_of(&id);
        if matches!(ctx.dest, Dest::Landing) && route.class == Class::Read {
            return self.landing(&id, ctx).await;
        }

        // 4. Authorization.
        if route.class == Class::Denied {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{} {} is not allowed through the gateway",
                    req.method(),
                    path
                ),
            ));
        }
        if let (authn::Source::Kubernetes, Some(k)) = (id.source, &self.kube) {
            // RBAC decides: the class's verb on the RayCluster (SubjectAccessReview).
            let verb = crate::k8s::verb(route.class).unwrap_or("none");
            let target = ctx.dest.target();
            let resource = ctx.dest.resource();
            let answer = match target {
                Some((ns, name)) => {
                    k.authorize_resource(&id, route.class, resource, ns, name)
                        .await
                }
                None => k.authorize(&id, route.class).await,
            };
            let target = match target {
                Some((ns, name)) => format!("{ns}/{name}"),
                None => k.target(),
            };
            match answer {
                Ok(true) => ctx.role = Some(format!("rbac:{verb}")),
                Ok(false) => {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        format!("RBAC does not allow {verb} on {resource}.ray.io {}", target),
                    ))
                }
                Err(_) => return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Kubernetes API server unavailable: new authorization decisions are refused",
                )),
            }
        } else {
            self.decide_roles(&id, &ctx.roles, route.class, &ctx.dest)?;
        }
        let upstream = self.upstream_of(&ctx.dest)?;
        self.rate_and_forward(req, id, route, path, query, wants_upgrade, &upstream, ctx)
            .await
    }

    /// Whether `id` may use admin routes on the request's cluster (so may stop or delete
    /// anyone's job).
    async fn is_admin(&self, id: &authn::Identity, dest: &Dest) -> Result<bool, Refusal> {
        self.may(id, Class::Admin, dest.target()).await
    }

    /// Stop and delete: asks Ray who submitted the job (for the audit log) and, under
    /// `own-jobs`, refuses a non-admin whose principal is not the job's stamp. Under
    /// `own-jobs` a job Ray cannot describe is refused too (fail closed).
    async fn check_owner(
        &self,
        id: &authn::Identity,
        job: &str,
        upstream: &Upstream,
        ctx: &mut Ctx,
    ) -> Result<(), Refusal> {
        let own_jobs = self.jobs.policy == crate::jobs::Policy::OwnJobs;
        let info = job_info(upstream, job).await;
        ctx.owner = info
            .as_ref()
            .ok()
            .and_then(|b| b.as_deref())
            .and_then(crate::jobs::owner_of);
        if !own_jobs {
            return Ok(());
        }
        match info {
            Err(r) => return Err(r),
            Ok(None) => {
                return Err(refuse(
                    StatusCode::NOT_FOUND,
                    "rejected",
                    format!("no job {job}"),
                ))
            }
            Ok(Some(_)) => {}
        }
        if ctx.owner.as_deref() == Some(id.user.as_str()) || self.is_admin(id, &ctx.dest).await? {
            return Ok(());
        }
        Err(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            match &ctx.owner {
                Some(o) => format!("job {job} was submitted by {o}: own-jobs lets only its submitter or an admin stop or delete it"),
                None => format!("job {job} names no submitter ({}): only admins may stop or delete it", crate::jobs::SUBMITTED_BY),
            },
        ))
    }

    /// Authorization by the roles of `[users]` and the credential (every source but
    /// Kubernetes), on the request's cluster: one outside every role's `clusters` gets
    /// exactly the answer of a cluster that does not exist (no existence oracle).
    /// `roles` are the identity's ([`Authz::roles_of`]), looked up once per request; the
    /// role names are joined only for a denial's message.
    fn decide_roles(
        &self,
        id: &authn::Identity,
        roles: &[String],
        class: Class,
        dest: &Dest,
    ) -> Result<(), Refusal> {
        let denied_role = match self.authz.verdict(roles, class, dest.target()) {
            Verdict::Allow => return Ok(()),
            Verdict::OutOfScope => Decision::OutOfScope,
            Verdict::Deny => self.authz.decide_on(id, class, dest.target()),
        };
        match denied_role {
            Decision::Allow { .. } => Ok(()),
            Decision::OutOfScope => Err(match dest {
                Dest::Cluster { namespace, name } => no_such_cluster(namespace, name),
                _ => refuse(StatusCode::NOT_FOUND, "rejected", "not found"),
            }),
            Decision::Deny { role } => Err(refuse(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "role {} may not use {} routes",
                    role.as_deref().unwrap_or("(none)"),
                    class
                ),
            )),
        }
    }

    /// The stages after authorization: rate limit, the gateway's own answers, forwarding.
    #[allow(clippy::too_many_arguments)]
    async fn rate_and_forward(
        &self,
        req: Request<ReqBody>,
        id: Arc<authn::Identity>,
        route: Route,
        path: String,
        query: Option<String>,
        wants_upgrade: bool,
        upstream: &Arc<Upstream>,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Refusal> {
        // 5. Rate limit.
        if let Err(wait) = self.rate.check(&id.user, Instant::now()) {
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "limited",
                "request rate over the limit",
            );
            r.retry_after = Some(wait);
            return Err(r);
        }

        // Stop and delete: whose job is it (audit log; the own-jobs policy). After the
        // rate limit: each costs a question to Ray.
        if let Some(job) = crate::jobs::target(req.method(), &path) {
            self.check_owner(&id, &job, upstream, ctx).await?;
        }

        // The dashboard UI asks Ray whether to prompt for Ray's token; behind the gateway
        // the browser never needs it, so the gateway answers for Ray.
        if path == "/api/authentication_mode" {
            ctx.answered = true;
            let mut r = Response::new(proxy::full(r#"{"authentication_mode": "disabled"}"#));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            return Ok(r);
        }

        // 6. Forward.
        let path_and_query = match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        self.forward(req, route, path_and_query, wants_upgrade, upstream, ctx)
            .await
    }

    /// Who a session cookie names ([`Web::session_user`]: signed, unexpired, the user
    /// still in the htpasswd file with the same password hash), unless logged out.
    async fn session_identity<B>(&self, req: &Request<B>) -> Option<authn::Identity> {
        let (id, claims) = self
            .web
            .as_ref()?
            .session_user(&self.authn, req.headers())?;
        if self.revoked.is_revoked(&claims.id, web::unix_now()).await {
            return None;
        }
        Some(id)
    }

    /// `POST /rayward/login` with `user`, `password` and `csrf` form fields
    /// ([`Web::read_login`]): a session cookie and a redirect to the dashboard, or back
    /// to the form. Failed logins count toward the backoff.
    async fn login(
        &self,
        w: &Web,
        req: Request<ReqBody>,
        client: IpAddr,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Refusal> {
        ctx.path = Some(LOGIN_PATH);
        let (user, password) = w.read_login(req).await.map_err(from_web)?;
        if let Some(wait) = self.logins.locked(client, Some(&user)).await.wait {
            return Err(locked(wait));
        }
        match self
            .authn
            .authenticate(authn::Credentials::Basic {
                user: user.clone(),
                password,
            })
            .await
        {
            Ok(u) => {
                self.logins.succeed(client, Some(&user)).await;
                ctx.user = Some(u.user.clone());
                Ok(w.open_session(&self.authn, &u)
                    .map_err(from_web)?
                    .map(proxy::full))
            }
            Err(e) => {
                self.logins.fail(client, Some(&user)).await;
                self.metrics.auth_failure(e.reason());
                let mut r = refuse(StatusCode::SEE_OTHER, "unauthenticated", e.to_string());
                r.location = Some(web::failed_location());
                Err(r)
            }
        }
    }

    /// `POST /rayward/logout`: revokes the session (on every replica when Redis is
    /// configured) and clears the cookie.
    async fn logout(
        &self,
        w: &Web,
        req: Request<ReqBody>,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Refusal> {
        ctx.path = Some(LOGOUT_PATH);
        let (claims, r) = w.logout(req.headers()).map_err(from_web)?;
        if let Some(c) = claims {
            ctx.user = Some(authn::Identity::new(authn::Source::Htpasswd, &c.user).user);
            self.revoked.revoke(&c.id, c.expiry, web::unix_now()).await;
        }
        Ok(r.map(proxy::full))
    }

    fn auth_refusal(&self, e: AuthError) -> Refusal {
        self.metrics.auth_failure(e.reason());
        let (status, outcome) = match e {
            AuthError::Malformed | AuthError::Duplicate => (StatusCode::BAD_REQUEST, "rejected"),
            // Fail closed, and say so: the source that must vouch did not answer.
            AuthError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            _ => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        };
        refuse(
            status,
            outcome,
            if e == AuthError::Unavailable {
                "Kubernetes API server unavailable: the token cannot be checked".to_string()
            } else {
                e.to_string()
            },
        )
    }

    async fn forward(
        &self,
        req: Request<ReqBody>,
        route: Route,
        path_and_query: String,
        websocket: bool,
        upstream: &Arc<Upstream>,
        ctx: &mut Ctx,
    ) -> Result<Response<Body>, Refusal> {
        let too_large = || {
            refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "rejected",
                format!("request body over {} bytes", self.max_body),
            )
        };
        let stalled = || {
            refuse(
                StatusCode::REQUEST_TIMEOUT,
                "rejected",
                format!("request body stalled for {:?}", self.body_idle),
            )
        };
        if let Some(len) = content_length(&req)? {
            if len > self.max_body {
                return Err(too_large());
            }
        }
        let is_submit = req.method() == Method::POST && route.pattern == "/api/jobs/";
        let (mut parts, body) = req.into_parts();
        // Only the gateway speaks for users to history serve: the client's copy of the
        // assertion goes on every route; an authorized history forward gets the gateway's.
        let scope = match &ctx.dest {
            Dest::History {
                namespace,
                kind,
                name,
            } => Some(format!("{namespace}/{kind}/{name}")),
            _ => None,
        };
        crate::history::stamp(
            &mut parts.headers,
            self.history_link.as_ref().map(|l| &l.keys),
            match (&scope, ctx.user()) {
                (Some(s), Some(u)) => Some((u, ctx.groups(), s.as_str())),
                _ => None,
            },
            &parts.method,
            &path_and_query,
        );
        if ctx.relaying {
            // The relay sends it: only a request without a body comes this way.
            upstream.prepare_headers(&mut parts.headers, false);
            ctx.ticket = Some(Ticket {
                method: parts.method,
                target: path_and_query,
                headers: parts.headers,
                upstream: upstream.clone(),
            });
            return Ok(Response::new(proxy::empty()));
        }
        let mut stamped_len = None;
        let body: Body = if is_submit {
            // Buffered (≤ 1 MiB) so the audit log can name the entrypoint.
            let bytes = IdleBody::new(Limited::new(body, MAX_SUBMIT_BODY), self.body_idle)
                .collect()
                .await
                .map_err(|e: proxy::BoxError| {
                    if crate::idle::is_idle(&*e) {
                        stalled()
                    } else if e.is::<http_body_util::LengthLimitError>() {
                        refuse(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "rejected",
                            format!("job submission over {MAX_SUBMIT_BODY} bytes"),
                        )
                    } else {
                        refuse(
                            StatusCode::BAD_REQUEST,
                            "rejected",
                            "request body unreadable",
                        )
                    }
                })?
                .to_bytes();
            let (entrypoint, submission_id) = audit_log::job_fields(&bytes);
            ctx.entrypoint = entrypoint;
            ctx.submission_id = submission_id;
            // Who submitted: the principal, whatever the client wrote there.
            let principal = ctx.user().unwrap_or_default();
            let groups = self.jobs.stamp_groups.then_some(ctx.groups());
            let stamped = crate::jobs::stamp(&bytes, principal, groups)
                .map_err(|e| refuse(StatusCode::BAD_REQUEST, "rejected", e.to_string()))?;
            stamped_len = Some(stamped.len());
            proxy::full(stamped)
        } else {
            IdleBody::new(Limited::new(body, self.max_body as usize), self.body_idle).boxed()
        };
        if let Some(n) = stamped_len {
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        let req = Request::from_parts(parts, body);
        let started = Instant::now();
        let resp = upstream
            .forward(req, &path_and_query, websocket)
            .await
            .map_err(|e| self.upstream_refusal(e))?;
        self.metrics
            .upstream_latency
            .observe(started.elapsed().as_secs_f64());
        if is_submit && resp.status().is_success() {
            // Ray answers {"job_id": …, "submission_id": …}: read the id it assigned.
            let (parts, body) = resp.into_parts();
            let bytes = collect_at_most(body, MAX_SUBMIT_RESPONSE)
                .await
                .ok_or_else(|| {
                    refuse(
                        StatusCode::BAD_GATEWAY,
                        "upstream_error",
                        "upstream response unreadable",
                    )
                })?;
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if let Some(id) = v.get("submission_id").and_then(|s| s.as_str()) {
                    ctx.submission_id = Some(id.to_string());
                }
            }
            return Ok(Response::from_parts(parts, proxy::full(bytes)));
        }
        Ok(resp)
    }
}

/// The path the audit log names: the gateway's own (login, logout), else the request's,
/// normalised once normalisation passed (as Ray got it), as received before that.
fn audited_path(ctx: &Ctx) -> String {
    if let Some(p) = ctx.path {
        return p.to_string();
    }
    let raw = ctx.uri.path();
    if ctx.normalised {
        if let Ok(p) = route::normalise_path(raw) {
            return p;
        }
    }
    raw.to_string()
}

/// Ray's description of a job (`GET /api/jobs/{id}` with the cluster token): Some(body),
/// None when Ray does not know the job, Err when Ray cannot be asked.
async fn job_info(upstream: &Upstream, job: &str) -> Result<Option<Vec<u8>>, Refusal> {
    let unreachable = || {
        refuse(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "cannot ask Ray who submitted the job",
        )
    };
    let mut req = Request::new(proxy::empty());
    *req.method_mut() = Method::GET;
    let resp = upstream
        .forward(req, &format!("/api/jobs/{job}"), false)
        .await
        .map_err(|_| unreachable())?;
    match resp.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Ok(None),
        _ => return Err(unreachable()),
    }
    collect_at_most(resp.into_body(), crate::jobs::MAX_JOB_INFO)
        .await
        .map(|b| Some(b.to_vec()))
        .ok_or_else(unreachable)
}

/// Reads a whole body of at most `max` bytes (None if longer or broken). Written as a
/// loop rather than `Limited::collect`, whose error bound rustc cannot prove `Send` for
/// a boxed body inside this async code.
pub(crate) async fn collect_at_most(mut body: Body, max: usize) -> Option<Bytes> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            if out.len() + data.len() > max {
                return None;
            }
            out.extend_from_slice(&data);
        }
    }
    Some(out.freeze())
}

/// A refusal of the shared login code, as the gateway's own.
fn from_web(r: web::Refused) -> Refusal {
    refuse(r.status, r.outcome, r.reason)
}

/// The answer for a cluster that is not discovered, and for one outside the caller's
/// roles (the two must not differ).
fn no_such_cluster(namespace: &str, name: &str) -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        "rejected",
        format!("no Ray cluster {namespace}/{name}"),
    )
}

fn kube_down() -> Refusal {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Kubernetes API server unavailable: new authorization decisions are refused",
    )
}

fn locked(wait: Duration) -> Refusal {
    let mut r = refuse(
        StatusCode::TOO_MANY_REQUESTS,
        "limited",
        "too many failed logins; try again later",
    );
    r.retry_after = Some(wait);
    r
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(proxy::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn is_websocket_upgrade<B>(req: &Request<B>) -> bool {
    let upgrade_ok = req
        .headers()
        .get_all(header::UPGRADE)
        .iter()
        .all(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let conn_ok = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    upgrade_ok && conn_ok
}

fn content_length<B>(req: &Request<B>) -> Result<Option<u64>, Refusal> {
    let mut values = req.headers().get_all(header::CONTENT_LENGTH).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "rejected",
            "more than one Content-Length",
        ));
    }
    v.to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "rejected",
                "malformed Content-Length",
            )
        })
}

/// Refuses requests that proxies and servers are known to read differently.
fn check_shape<B>(req: &Request<B>) -> Result<(), Refusal> {
    if req.method() == Method::TRACE || req.method() == Method::CONNECT {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "rejected",
            format!("{} is not allowed", req.method()),
        ));
    }
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "rejected",
            "absolute-form request targets are not accepted",
        ));
    }
    // One pass over the headers instead of a hashed lookup per name (eight per request):
    // method overrides, and the framing the server's checks (rayward_serve::framing)
    // refuse on the raw bytes before hyper normalises the head (hyper drops
    // Content-Length beside Transfer-Encoding), checked again here for a gateway driven
    // without that server.
    let (mut te, mut te_chunked, mut cl, mut hosts) = (0usize, true, 0usize, 0usize);
    for (name, value) in req.headers() {
        match name.as_str() {
            "x-http-method-override" | "x-http-method" | "x-method-override" => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "rejected",
                    format!("method-override header {name} is not accepted"),
                ));
            }
            "transfer-encoding" => {
                te += 1;
                te_chunked &= value.as_bytes().eq_ignore_ascii_case(b"chunked");
            }
            "content-length" => cl += 1,
            "host" => hosts += 1,
            _ => {}
        }
    }
    if te > 0 {
        if cl > 0 {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "rejected",
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if te != 1 || !te_chunked {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "rejected",
                "Transfer-Encoding other than a single 'chunked'",
            ));
        }
    }
    if cl > 0 {
        content_length(req)?;
    }
    if hosts > 1 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "rejected",
            "more than one Host",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers that ask a server to treat a request as another method (`check_shape`
    /// matches them by name).
    const METHOD_OVERRIDES: [&str; 3] = [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ];

    fn req(m: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(m).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn status(r: Request<()>) -> Option<StatusCode> {
        check_shape(&r).err().map(|e| e.status)
    }

    #[test]
    fn shape_checks() {
        assert_eq!(status(req("GET", "/api/jobs/", &[])), None);
        assert_eq!(
            status(req("TRACE", "/", &[])),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            status(req("CONNECT", "/", &[])),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            status(req("GET", "http://evil/api/jobs/", &[])),
            Some(StatusCode::BAD_REQUEST)
        );
        for h in &METHOD_OVERRIDES {
            assert_eq!(
                status(req("GET", "/api/jobs/", &[(h, "POST")])),
                Some(StatusCode::BAD_REQUEST),
                "{h}"
            );
        }
        for hs in [
            &[("transfer-encoding", "chunked"), ("content-length", "5")][..],
            &[("transfer-encoding", "gzip, chunked")],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            &[("content-length", "5"), ("content-length", "6")],
            &[("content-length", "+5")],
            &[("host", "a"), ("host", "b")],
        ] {
            assert_eq!(
                status(req("POST", "/api/jobs/", hs)),
                Some(StatusCode::BAD_REQUEST),
                "{hs:?}"
            );
        }
        assert_eq!(
            status(req(
                "POST",
                "/api/jobs/",
                &[("transfer-encoding", "Chunked")]
            )),
            None
        );
    }

    #[test]
    fn websocket_detection() {
        assert!(is_websocket_upgrade(&req(
            "GET",
            "/",
            &[
                ("upgrade", "websocket"),
                ("connection", "keep-alive, Upgrade")
            ]
        )));
        assert!(!is_websocket_upgrade(&req(
            "GET",
            "/",
            &[("upgrade", "h2c"), ("connection", "upgrade")]
        )));
        assert!(!is_websocket_upgrade(&req(
            "GET",
            "/",
            &[("upgrade", "websocket")]
        )));
    }
}
