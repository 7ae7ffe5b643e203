//! The gateway's TOML configuration: parsed strictly (unknown keys are errors) and
//! validated once at start, so a typo is an error naming `file:line` instead of a
//! silently open gateway. See docs/gateway.md for the annotated example.

use crate::route::Class;
use ipnet::IpNet;
pub use rayward_auth::config::{
    parse_algorithm, AuthConfig, OidcConfig, SessionConfig, TokenEntry,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use rayward_auth::config::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. "0.0.0.0:8443": Ray traffic only.
    pub listen: SocketAddr,
    /// The admin listener: `/healthz`, `/readyz` and `/metrics`, plain HTTP, never Ray
    /// traffic. Loopback by default, so metrics answer no one outside the pod (as linkerd's
    /// proxy keeps its admin port apart); `0.0.0.0:9091` in a pod for the kubelet's probes
    /// and Prometheus, behind a NetworkPolicy.
    #[serde(default = "d_admin_listen")]
    pub admin_listen: SocketAddr,
    /// The Ray dashboard, e.g. "http://raycluster-head-svc:8265" (plain HTTP: Ray serves
    /// no TLS on 8265). Exactly one of `upstream` (one cluster) and `[discovery]` (every
    /// RayCluster of some namespaces).
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub ray_token: RayToken,
    #[serde(default)]
    pub auth: AuthConfig,
    /// user → role name.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// Custom roles: name → classes it may use (built-in: viewer, submitter, admin).
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub limits: Limits,
    /// Where failed-login counters live (memory, or Redis shared by replicas).
    #[serde(default)]
    pub ratelimit: RateLimitConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Browser login form and signed session cookie; absent: Basic/Bearer only.
    #[serde(default)]
    pub session: Option<SessionConfig>,
    /// Forward Ray's 5xx bodies (Python tracebacks with file paths) instead of a short error.
    #[serde(default)]
    pub pass_upstream_errors: bool,
    /// Kubernetes identities: TokenReview and SubjectAccessReview on the RayCluster.
    #[serde(default)]
    pub kubernetes: Option<crate::k8s::KubernetesConfig>,
    /// Job ownership: who may stop or delete which job.
    #[serde(default)]
    pub jobs: crate::jobs::JobsConfig,
    /// One gateway for many clusters: RayClusters found by watching the API server.
    #[serde(default)]
    pub discovery: Option<crate::discovery::DiscoveryConfig>,
}

/// The admin listener's default address.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9091";

fn d_admin_listen() -> SocketAddr {
    DEFAULT_ADMIN_LISTEN.parse().expect("a socket address")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where the cluster's Ray token comes from; exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RayToken {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

/// `[roles.NAME]`: a custom role's classes, and under `[discovery]` the clusters any role
/// (built-in ones too, which then set only `clusters`) reaches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Route classes (custom roles only; a built-in role's are fixed).
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// `namespace/name` patterns (`*` for either side) of the discovered clusters this
    /// role holds on ([`crate::scope`]). Under `[discovery]`, absent means none.
    #[serde(default)]
    pub clusters: Option<crate::scope::Clusters>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// If non-empty, only these CIDRs may connect.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Never these CIDRs (checked after `allow`).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "d_body")]
    pub max_body_bytes: u64,
    #[serde(default = "d_headers")]
    pub max_header_bytes: usize,
    /// From the end of the request body to Ray's response headers.
    #[serde(default = "d_upstream_timeout")]
    pub upstream_timeout_secs: u64,
    #[serde(default = "d_client_header_timeout")]
    pub client_header_timeout_secs: u64,
    /// A streamed body (upload, log stream) or a WebSocket with no data for this long is
    /// closed on both sides.
    #[serde(default = "d_stream_idle")]
    pub stream_idle_timeout_secs: u64,
    /// Failed logins from one source or for one user before backoff starts.
    #[serde(default = "d_fail_threshold")]
    pub failed_login_threshold: u32,
    /// First lockout; doubles with each further failure, up to `failed_login_max_lock_secs`.
    #[serde(default = "d_fail_base")]
    pub failed_login_base_lock_secs: u64,
    #[serde(default = "d_fail_max")]
    pub failed_login_max_lock_secs: u64,
    /// Per-user request rate (token bucket); 0 disables.
    #[serde(default = "d_rps")]
    pub requests_per_second: f64,
    #[serde(default = "d_burst")]
    pub burst: f64,
}

impl Default for Limits {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `redis://[:password@]host:port[/db]`; absent: counters in this replica's memory.
    pub redis: Option<String>,
    #[serde(default = "d_redis_prefix")]
    pub redis_key_prefix: String,
    /// Longest wait for Redis before this replica falls back to its own counters.
    #[serde(default = "d_redis_timeout")]
    pub redis_timeout_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn d_redis_prefix() -> String {
    "rayward:login:".into()
}
fn d_redis_timeout() -> u64 {
    250
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON-lines file; "-" for standard output; absent for none.
    pub path: Option<String>,
}

fn d_body() -> u64 {
    100 * 1024 * 1024
}
fn d_headers() -> usize {
    16 * 1024
}
fn d_upstream_timeout() -> u64 {
    60
}
fn d_client_header_timeout() -> u64 {
    10
}
fn d_stream_idle() -> u64 {
    600
}
fn d_fail_threshold() -> u32 {
    5
}
fn d_fail_base() -> u64 {
    1
}
fn d_fail_max() -> u64 {
    300
}
fn d_rps() -> f64 {
    50.0
}
fn d_burst() -> f64 {
    100.0
}

impl Limits {
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_timeout_secs)
    }

    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.stream_idle_timeout_secs)
    }
}

/// Built-in roles.
pub fn builtin_role(name: &str) -> Option<&'static [Class]> {
    match name {
        "viewer" => Some(&[Class::Read]),
        "submitter" => Some(&[Class::Read, Class::Write]),
        "admin" => Some(&[Class::Read, Class::Write, Class::Admin]),
        _ => None,
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        rayward_auth::config::load_toml(path, Config::validate)
    }

    /// Warnings worth a line at start: under `[discovery]`, each role in use (by `[users]`,
    /// a token or the OIDC role map) that names no clusters reaches none.
    pub fn warnings(&self) -> Vec<String> {
        if self.discovery.is_none() {
            return Vec::new();
        }
        let mut used: std::collections::BTreeSet<&str> =
            self.users.values().map(String::as_str).collect();
        if let Some(o) = &self.auth.oidc {
            used.extend(o.role_map.values().map(String::as_str));
        }
        used.into_iter()
            .filter(|r| self.roles.get(*r).is_none_or(|rc| rc.clusters.is_none()))
            .map(|r| {
                format!(
                    "roles.{r} names no clusters: under [discovery] it holds on no cluster; set [roles.{r}] clusters = [\"namespace/*\"] (or \"*/*\" for every cluster)"
                )
            })
            .collect()
    }

    /// Parses and validates; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        rayward_auth::config::parse_toml(text, name, Config::validate)
    }

    fn validate(&self) -> Result<(), String> {
        match (&self.upstream, &self.discovery) {
            (Some(_), Some(_)) => {
                return Err(
                    "upstream and [discovery]: set one (one cluster, or every discovered one)"
                        .into(),
                )
            }
            (None, None) => {
                return Err(
                    "upstream: set the Ray dashboard's http://host:port, or [discovery]".into(),
                )
            }
            (Some(u), None) => {
                check_upstream("upstream", u)?;
                match (&self.ray_token.file, &self.ray_token.env) {
                    (Some(_), Some(_)) => return Err("ray_token: set file or env, not both".into()),
                    (None, None) => {
                        return Err("ray_token: set file or env (the cluster's Ray token)".into())
                    }
                    _ => {}
                }
            }
            (None, Some(d)) => {
                if self.ray_token.file.is_some() || self.ray_token.env.is_some() {
                    return Err("ray_token: with [discovery] each cluster's token is read from its own Secret".into());
                }
                d.validate()?;
                if let Some(h) = &d.history_upstream {
                    check_upstream("discovery.history_upstream", h)?;
                }
                if d.history_key_file.is_some() && d.history_upstream.is_none() {
                    return Err(
                        "discovery.history_key_file: set history_upstream too (the key signs history forwards)"
                            .into(),
                    );
                }
            }
        }
        if self.auth.htpasswd.is_none()
            && self.auth.tokens.is_empty()
            && self.auth.oidc.is_none()
            && self.kubernetes.is_none()
        {
            return Err(
                "auth: configure htpasswd, tokens, oidc or [kubernetes] (no one could log in)"
                    .into(),
            );
        }
        if let Some(k) = &self.kubernetes {
            k.validate(self.discovery.is_some())?;
        }
        self.auth
            .validate(&|role| builtin_role(role).is_some() || self.roles.contains_key(role))?;
        for (name, role) in &self.roles {
            if role.clusters.is_some() && self.discovery.is_none() {
                return Err(format!(
                    "roles.{name}.clusters: only with [discovery] (a gateway with one upstream fronts one cluster)"
                ));
            }
            let classes = match (&role.classes, builtin_role(name).is_some()) {
                (Some(_), true) => {
                    return Err(format!(
                        "roles.{name}: redefines a built-in role (it may set only clusters)"
                    ))
                }
                (None, true) => continue,
                (None, false) => {
                    return Err(format!(
                        "roles.{name}: classes missing (read, write, admin)"
                    ))
                }
                (Some(c), false) => c,
            };
            for c in classes {
                if Class::parse(c).is_none() {
                    return Err(format!(
                        "roles.{name}: unknown class {c:?} (read, write, admin)"
                    ));
                }
            }
        }
        for (user, role) in &self.users {
            if builtin_role(role).is_none() && !self.roles.contains_key(role) {
                return Err(format!("users.{user}: unknown role {role:?}"));
            }
            rayward_auth::principal::check_users_key(user)
                .map_err(|e| format!("users.{user:?}: {e}"))?;
        }
        if self.admin_listen == self.listen && self.listen.port() != 0 {
            return Err("admin_listen: must differ from listen".into());
        }
        if self.limits.max_header_bytes < 8192 {
            return Err("limits.max_header_bytes must be at least 8192".into());
        }
        if self.limits.stream_idle_timeout_secs == 0 {
            return Err("limits.stream_idle_timeout_secs must be at least 1".into());
        }
        if self.limits.requests_per_second < 0.0 || self.limits.burst < 1.0 {
            return Err("limits: requests_per_second >= 0 and burst >= 1".into());
        }
        for (name, list) in [
            ("allow", &self.network.allow),
            ("deny", &self.network.deny),
            ("trusted_proxies", &self.network.trusted_proxies),
        ] {
            parse_cidrs(name, list)?;
        }
        if let Some(url) = &self.ratelimit.redis {
            // The URL may carry a password: name the error, never echo the URL.
            let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
                .map_err(|e| format!("ratelimit.redis: invalid URL ({:?})", e.kind()))?;
            if !matches!(info.addr(), redis::ConnectionAddr::Tcp(..)) {
                return Err("ratelimit.redis: only redis://host:port URLs are supported".into());
            }
        }
        if !(10..=5000).contains(&self.ratelimit.redis_timeout_ms) {
            return Err("ratelimit.redis_timeout_ms: between 10 and 5000".into());
        }
        Ok(())
    }
}

/// An upstream must be `http://host:port`, no path: Ray's dashboard and `rayward history
/// serve` speak plain HTTP inside the cluster.
fn check_upstream(what: &str, u: &str) -> Result<(), String> {
    let up: http::Uri = u.parse().map_err(|e| format!("{what} {u:?}: {e}"))?;
    if up.scheme_str() != Some("http") || up.authority().is_none() {
        return Err(format!(
            "{what} {u:?} must be http://host:port (Ray's dashboard speaks plain HTTP)"
        ));
    }
    if up.path() != "/" && !up.path().is_empty() {
        return Err(format!("{what} {u:?} must not have a path"));
    }
    Ok(())
}

/// Parses `network.<name>`: addresses or CIDRs, truncated to their network. Here, with the
/// rest of the config's validation, so the modules that use the values (`net`) depend on
/// the config and not the other way round.
pub fn parse_cidrs(name: &str, list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("network.{name}: {s:?} is not an address or CIDR"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
listen = "127.0.0.1:8080"
upstream = "http://127.0.0.1:8265"
ray_token = { env = "RAY_AUTH_TOKEN" }
auth = { htpasswd = "/etc/htpasswd" }
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(MIN, "g.toml").unwrap();
        assert_eq!(c.limits.max_body_bytes, 100 * 1024 * 1024);
        assert_eq!(c.auth.cache_ttl_secs, 300);
        assert!(!c.pass_upstream_errors);
    }

    #[test]
    fn one_upstream_or_discovery() {
        let multi = "listen = \"127.0.0.1:8080\"\nauth = { htpasswd = \"/h\" }\n[discovery]\nnamespaces = [\"team-a\"]\n";
        let c = Config::parse(multi, "g.toml").unwrap();
        assert_eq!(c.upstream, None);
        assert_eq!(c.discovery.unwrap().port_name, "dashboard");
        let k = format!("{multi}[kubernetes]\naudiences = [\"gw\"]\n");
        assert!(Config::parse(&k, "g.toml").is_ok());
        for (text, want) in [
            (
                format!("{MIN}[discovery]\nnamespaces = [\"a\"]\n"),
                "set one",
            ),
            (
                "listen = \"127.0.0.1:8080\"\nauth = { htpasswd = \"/h\" }\n".to_string(),
                "or [discovery]",
            ),
            (
                format!("ray_token = {{ env = \"T\" }}\n{multi}"),
                "its own Secret",
            ),
            (
                format!("{multi}[kubernetes]\nnamespace = \"a\"\ncluster = \"b\"\n"),
                "not set with [discovery]",
            ),
            (
                format!("{multi}history_upstream = \"https://h\"\n"),
                "history_upstream",
            ),
            (
                format!("{multi}history_key_file = \"/k\"\n"),
                "set history_upstream too",
            ),
            (multi.replace("team-a", "Team A"), "no namespace name"),
        ] {
            let e = Config::parse(&text, "g.toml").unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn role_clusters_are_checked_at_their_line() {
        let multi = "listen = \"127.0.0.1:8080\"\nauth = { htpasswd = \"/h\" }\n[discovery]\nnamespaces = [\"team-a\"]\n[users]\nv = \"viewer\"\no = \"ops\"\n";
        let ok = format!(
            "{multi}[roles.viewer]\nclusters = [\"team-a/*\"]\n[roles.ops]\nclasses = [\"read\"]\nclusters = [\"*/*\", \"team-b/x\"]\n"
        );
        let c = Config::parse(&ok, "g.toml").unwrap();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        // A bad pattern is an error at its line (line 11 here).
        let bad = format!(
            "{multi}[roles.ops]\nclasses = [\"read\"]\n\nclusters = [\"team-a/*\", \"Team-B/x\"]\n"
        );
        let e = Config::parse(&bad, "g.toml").unwrap_err().to_string();
        assert!(e.starts_with("g.toml:11:"), "{e}");
        assert!(
            e.contains("\"Team-B\" is neither `*` nor a lower-case DNS label"),
            "{e}"
        );
        let many = format!(
            "{multi}[roles.ops]\nclasses = [\"read\"]\nclusters = [{}]\n",
            vec!["\"a/*\""; 257].join(",")
        );
        let e = Config::parse(&many, "g.toml").unwrap_err().to_string();
        assert!(e.contains("at most 256"), "{e}");
        for (text, want) in [
            (
                format!("{MIN}[roles.ops]\nclasses = [\"read\"]\nclusters = [\"a/*\"]\n"),
                "roles.ops.clusters: only with [discovery]",
            ),
            (
                format!("{multi}[roles.viewer]\nclasses = [\"read\"]\n"),
                "roles.viewer: redefines a built-in role (it may set only clusters)",
            ),
            (
                format!("{multi}[roles.ops]\nclusters = [\"a/*\"]\n"),
                "roles.ops: classes missing",
            ),
        ] {
            let e = Config::parse(&text, "g.toml").unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        // Roles in use that name no clusters reach none under [discovery]: warned.
        let c = Config::parse(
            &format!("{multi}[roles.ops]\nclasses = [\"read\"]\n"),
            "g.toml",
        )
        .unwrap();
        let w = c.warnings().join("\n");
        assert!(w.contains("roles.viewer names no clusters"), "{w}");
        assert!(w.contains("roles.ops names no clusters"), "{w}");
        // Single-upstream configs: nothing changes, nothing to warn about.
        assert!(Config::parse(MIN, "g.toml").unwrap().warnings().is_empty());
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = format!("{MIN}\n[limits]\nmax_body = 3\n");
        let e = Config::parse(&text, "g.toml").unwrap_err().to_string();
        assert!(e.starts_with("g.toml:8:"), "{e}");
        assert!(e.contains("max_body"), "{e}");
    }

    #[test]
    fn semantic_errors_are_reported() {
        for (extra, want) in [
            ("[users]\nbob = \"root\"\n", "unknown role"),
            ("[roles.viewer]\nclasses = [\"read\"]\n", "built-in"),
            ("[roles.ops]\nclasses = [\"everything\"]\n", "unknown class"),
            ("[network]\nallow = [\"10.0.0.0/33\"]\n", "10.0.0.0/33"),
            (
                "[ratelimit]\nredis = \"http://:hunter2@r:6379\"\n",
                "ratelimit.redis: invalid URL",
            ),
            (
                "[ratelimit]\nredis = \"redis://r:6379\"\nredis_timeout_ms = 0\n",
                "redis_timeout_ms",
            ),
        ] {
            let text = format!("{MIN}{extra}");
            let e = Config::parse(&text, "g.toml").unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
            assert!(
                !e.contains("hunter2"),
                "a Redis password is never printed: {e}"
            );
        }
        let e = Config::parse(&MIN.replace("http://", "https://"), "g")
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain HTTP"), "{e}");
        let e = Config::parse(
            &MIN.replace("auth = { htpasswd = \"/etc/htpasswd\" }", ""),
            "g",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no one could log in"), "{e}");
    }

    #[test]
    fn oidc_semantic_errors() {
        let base = MIN.replace("auth = { htpasswd = \"/etc/htpasswd\" }", "");
        for (oidc, want) in [
            (
                "roles_claim = \"groups\"\n[auth.oidc.role_map]\nops = \"root\"\n",
                "auth.oidc.role_map.ops: unknown role",
            ),
            (
                "[auth.oidc.role_map]\nops = \"admin\"\n",
                "needs auth.oidc.roles_claim",
            ),
            ("leeway_secs = 3600\n", "leeway_secs"),
            ("jwks_ca_file = \"/ca.pem\"\n", "only with jwks_url"),
        ] {
            let text = format!(
                "{base}[auth.oidc]\nissuer = \"i\"\naudience = [\"a\"]\njwks_file = \"/j\"\n{oidc}"
            );
            let e = Config::parse(&text, "g.toml").unwrap_err().to_string();
            assert!(e.contains(want), "{oidc}: {e}");
        }
        // OIDC alone is a way to log in.
        let text = format!(
            "{base}[auth.oidc]\nissuer = \"i\"\naudience = [\"a\"]\njwks_url = \"https://idp/jwks\"\n"
        );
        let c = Config::parse(&text, "g.toml").unwrap();
        let o = c.auth.oidc.unwrap();
        assert_eq!(o.algorithms, ["RS256", "ES256"]);
        assert_eq!(o.user_claim, "sub");
    }
}
