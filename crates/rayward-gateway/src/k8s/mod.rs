//! Kubernetes identities (`[kubernetes]`): users and ServiceAccounts authenticate with the
//! bearer tokens they already hold (TokenReview), and RBAC on the target RayCluster says
//! what they may do (SubjectAccessReview), so a platform keeps one user database.
//!
//! - **Authentication**: a bearer value that neither the gateway's tokens nor its OIDC
//!   issuer claim goes to a TokenReview with the configured audiences. The identity
//!   (`k8s:<username>`, groups) is cached, keyed by the token's SHA-256, until the token's
//!   own `exp` or `token_cache_secs` (at most 60), whichever is first; bounded.
//! - **Authorization**: the route class becomes a custom verb (`ray:read`, `ray:write`,
//!   `ray:admin`) on `rayclusters.ray.io` with the cluster's namespace and name, asked
//!   with a SubjectAccessReview for the user, groups and uid; decisions are cached for
//!   `decision_cache_secs`, bounded, keyed by user, groups, verb and cluster.
//! - **Failure**: the API server unreachable (or refusing the gateway's own credentials)
//!   fails closed: a review that is not cached gets 503, counted in
//!   `rayward_gateway_kube_unavailable_total{call}`; cached answers hold until they expire.

pub mod cache;

use crate::authn::{AuthError, Identity, Source};
use crate::route::Class;
use cache::TtlCache;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The API group and resource RBAC rules name for the gateway's verbs.
pub const GROUP: &str = "ray.io";
pub const RESOURCE: &str = "rayclusters";

/// The custom verb of a route class (`None`: denied routes, for no one).
pub fn verb(class: Class) -> Option<&'static str> {
    match class {
        Class::Read => Some("ray:read"),
        Class::Write => Some("ray:write"),
        Class::Admin => Some("ray:admin"),
        Class::Denied => None,
    }
}

/// `[kubernetes]` in the gateway's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file; absent: in-cluster credentials (or `KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// TokenReview audiences; a token must be issued for one of them (e.g. a projected
    /// ServiceAccount token with `audience: rayward-gateway`). Empty: the API server's.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The RayCluster this gateway fronts: what SubjectAccessReviews name. Not set with
    /// `[discovery]`: there each request names its cluster.
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub cluster: String,
    #[serde(default = "d_token_cache")]
    pub token_cache_secs: u64,
    #[serde(default = "d_max")]
    pub token_cache_max_entries: usize,
    #[serde(default = "d_decision_cache")]
    pub decision_cache_secs: u64,
    #[serde(default = "d_max")]
    pub decision_cache_max_entries: usize,
    /// Longest wait for the API server per review.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
}

fn d_token_cache() -> u64 {
    60
}
fn d_decision_cache() -> u64 {
    10
}
fn d_max() -> usize {
    10_000
}
fn d_timeout() -> u64 {
    2000
}

impl KubernetesConfig {
    /// `discovery`: the clusters are discovered, so namespace and cluster stay unset.
    pub fn validate(&self, discovery: bool) -> Result<(), String> {
        if !(1..=60).contains(&self.token_cache_secs) {
            return Err("kubernetes.token_cache_secs: between 1 and 60".into());
        }
        if self.decision_cache_secs > 60 {
            return Err("kubernetes.decision_cache_secs: at most 60".into());
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            return Err("kubernetes.timeout_ms: between 100 and 30000".into());
        }
        if discovery {
            if !self.namespace.is_empty() || !self.cluster.is_empty() {
                return Err("kubernetes: namespace and cluster are not set with [discovery] (each request names its cluster)".into());
            }
        } else if self.namespace.is_empty() || self.cluster.is_empty() {
            return Err("kubernetes: namespace and cluster name the RayCluster".into());
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err("kubernetes.audiences: empty audience".into());
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `tokenreview` or `subjectaccessreview`.
    pub call: &'static str,
}

#[derive(Clone, Hash, PartialEq, Eq)]
struct DecisionKey {
    user: String,
    groups: Vec<String>,
    verb: &'static str,
    resource: &'static str,
    namespace: String,
    name: String,
}

pub struct KubeAuth {
    client: Client,
    audiences: Vec<String>,
    namespace: String,
    cluster: String,
    token_ttl: Duration,
    decision_ttl: Duration,
    timeout: Duration,
    tokens: TtlCache<[u8; 32], Identity>,
    decisions: TtlCache<DecisionKey, bool>,
    unavailable: Family<CallLabels, Counter>,
    last_log: Mutex<Option<Instant>>,
}

impl KubeAuth {
    /// A client from the kubeconfig (or in-cluster credentials); nothing is asked yet.
    pub async fn connect(
        cfg: &KubernetesConfig,
        unavailable: Family<CallLabels, Counter>,
    ) -> Result<KubeAuth, String> {
        let mut config = kube_config(cfg.kubeconfig.as_deref(), cfg.context.as_deref()).await?;
        let timeout = Duration::from_millis(cfg.timeout_ms);
        config.read_timeout = Some(timeout);
        config.connect_timeout = Some(timeout);
        let client = Client::try_from(config).map_err(|e| format!("kubernetes: {e}"))?;
        Ok(KubeAuth {
            client,
            audiences: cfg.audiences.clone(),
            namespace: cfg.namespace.clone(),
            cluster: cfg.cluster.clone(),
            token_ttl: Duration::from_secs(cfg.token_cache_secs),
            decision_ttl: Duration::from_secs(cfg.decision_cache_secs),
            timeout,
            tokens: TtlCache::new(cfg.token_cache_max_entries),
            decisions: TtlCache::new(cfg.decision_cache_max_entries),
            unavailable,
            last_log: Mutex::new(None),
        })
    }

    /// The RayCluster this gateway authorizes against (`namespace/name`).
    pub fn target(&self) -> String {
        format!("{}/{}", self.namespace, self.cluster)
    }

    fn down(&self, call: &'static str, e: &dyn std::fmt::Display) -> AuthError {
        self.unavailable.get_or_create(&CallLabels { call }).inc();
        let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            eprintln!(
                "rayward gateway: Kubernetes {call} failed, refusing new decisions (503): {e}"
            );
        }
        AuthError::Unavailable
    }

    /// Who a bearer token belongs to, by TokenReview (cached).
    pub async fn authenticate(&self, token: &str) -> Result<Identity, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(id) = self.tokens.get(&key, now) {
            return Ok(id);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer =
            tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| self.down("tokenreview", &"timed out"))?
                .map_err(|e| self.down("tokenreview", &e))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(AuthError::Invalid);
        }
        if !self.audiences.is_empty() {
            let granted = status.audiences.unwrap_or_default();
            if !granted.iter().any(|a| self.audiences.contains(a)) {
                return Err(AuthError::Invalid);
            }
        }
        let user = status.user.unwrap_or_default();
        let name = user.username.unwrap_or_default();
        if name.is_empty() || name.len() > 512 {
            return Err(AuthError::Invalid);
        }
        let mut id = Identity::new(Source::Kubernetes, name);
        id.groups = user.groups.unwrap_or_default();
        id.groups.truncate(256);
        // Cached until the token's own expiry (a verified JWT's `exp`; the API server has
        // just vouched for it) and at most token_cache_secs.
        let mut until = now + self.token_ttl;
        if let Some(exp) = crate::authn::unverified_claims(token)
            .and_then(|c| c.get("exp").and_then(serde_json::Value::as_u64))
        {
            let left = exp.saturating_sub(unix_now());
            until = until.min(now + Duration::from_secs(left));
        }
        self.tokens.insert(key, id.clone(), until, now);
        Ok(id)
    }

    /// Whether RBAC lets `id` use routes of `class` on this gateway's RayCluster
    /// (SubjectAccessReview, cached). Err: the API server did not answer.
    pub async fn authorize(&self, id: &Identity, class: Class) -> Result<bool, AuthError> {
        self.authorize_on(id, class, &self.namespace, &self.cluster)
            .await
    }

    /// Whether RBAC lets `id` use routes of `class` on RayCluster `namespace/name` (the
    /// cluster a request was routed to under `[discovery]`).
    pub async fn authorize_on(
        &self,
        id: &Identity,
        class: Class,
        namespace: &str,
        name: &str,
    ) -> Result<bool, AuthError> {
        self.authorize_resource(id, class, RESOURCE, namespace, name)
            .await
    }

    /// Whether RBAC lets `id` use routes of `class` on `resource` (in `ray.io`)
    /// `namespace/name`: a stored session's history is authorized on the object it was
    /// kept for (`rayjobs` for a RayJob's; [`crate::history`]).
    pub async fn authorize_resource(
        &self,
        id: &Identity,
        class: Class,
        resource: &'static str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, AuthError> {
        let Some(verb) = verb(class) else {
            return Ok(false);
        };
        let key = DecisionKey {
            user: id.name.clone(),
            groups: id.groups.clone(),
            verb,
            resource,
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let now = Instant::now();
        if let Some(allowed) = self.decisions.get(&key, now) {
            return Ok(allowed);
        }
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(id.name.clone()),
                groups: Some(id.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GROUP.into()),
                    resource: Some(resource.into()),
                    verb: Some(verb.into()),
                    namespace: Some(namespace.to_string()),
                    name: Some(name.to_string()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer =
            tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| self.down("subjectaccessreview", &"timed out"))?
                .map_err(|e| self.down("subjectaccessreview", &e))?;
        let allowed = answer
            .status
            .is_some_and(|s| s.allowed && s.denied != Some(true));
        self.decisions
            .insert(key, allowed, now + self.decision_ttl, now);
        Ok(allowed)
    }
}

/// A client configuration from a kubeconfig file (and context), or in-cluster credentials
/// (or `KUBECONFIG`) when none is named.
pub async fn kube_config(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<kube::Config, String> {
    let kco = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    match kubeconfig {
        Some(p) => {
            let kc =
                Kubeconfig::read_from(p).map_err(|e| format!("kubeconfig {}: {e}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kco)
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", p.display()))
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| format!("no kubeconfig or in-cluster config: {e}")),
    }
    .map_err(|e| format!("kubernetes: {e}"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_of_classes() {
        assert_eq!(verb(Class::Read), Some("ray:read"));
        assert_eq!(verb(Class::Write), Some("ray:write"));
        assert_eq!(verb(Class::Admin), Some("ray:admin"));
        assert_eq!(verb(Class::Denied), None);
    }

    #[test]
    fn config_bounds() {
        let ok: KubernetesConfig = toml::from_str("namespace = \"a\"\ncluster = \"b\"\n").unwrap();
        assert_eq!(ok.validate(false), Ok(()));
        assert!(ok.validate(true).is_err());
        assert_eq!((ok.token_cache_secs, ok.decision_cache_secs), (60, 10));
        for bad in [
            "token_cache_secs = 61",
            "token_cache_secs = 0",
            "decision_cache_secs = 3600",
            "timeout_ms = 5",
            "audiences = [\"\"]",
        ] {
            let c: KubernetesConfig =
                toml::from_str(&format!("namespace = \"a\"\ncluster = \"b\"\n{bad}\n")).unwrap();
            assert!(c.validate(false).is_err(), "{bad}");
        }
        let c: KubernetesConfig = toml::from_str("namespace = \"\"\ncluster = \"b\"\n").unwrap();
        assert!(c.validate(false).is_err());
        let multi: KubernetesConfig = toml::from_str("").unwrap();
        assert_eq!(multi.validate(true), Ok(()));
    }
}
