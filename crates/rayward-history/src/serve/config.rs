//! `rayward history serve --config FILE`: the TOML file, parsed strictly (unknown keys are
//! errors naming `file:line:column`) and validated once at start. `[auth]`, `[users]` and
//! `[session]` are the gateway's sections, read by the same code ([`rayward_auth::config`]).

use rayward_auth::config::{AuthConfig, SessionConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use rayward_auth::config::ConfigError;

/// The admin listener's default: loopback, so `/metrics` answers no one outside the pod.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9092";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The UI and its API, e.g. "0.0.0.0:8443".
    pub listen: SocketAddr,
    /// `/healthz`, `/readyz`, `/metrics`, plain HTTP.
    #[serde(default = "d_admin_listen")]
    pub admin_listen: SocketAddr,
    /// The store URL, as for `history collect`.
    pub store: String,
    /// A mounted Secret of `KEY=value` lines (store credentials).
    pub credentials_file: Option<PathBuf>,
    /// Ray's static dashboard build (`ray/dashboard/client/build` in the wheel).
    pub dashboard_dir: PathBuf,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub auth: AuthConfig,
    /// principal → role name.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    #[serde(default)]
    pub session: Option<SessionConfig>,
    /// role name → the namespaces it may read.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
    /// namespace → its labels, for `namespace_selectors` (the server reads no Kubernetes
    /// API, so the labels a selector matches are written here).
    #[serde(default)]
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub audit: AuditConfig,
    /// Deletes sessions past age, count or size bounds every `interval`
    /// ([`crate::retention`]); absent: nothing is deleted.
    #[serde(default)]
    pub retention: Option<crate::retention::Section>,
    /// The gateway in front (`rayward gateway` with `[discovery] history_key_file`): its
    /// signed assertion ([`rayward_auth::assertion`]) is the caller's identity and its
    /// authorization, so a user logs in once. Absent: the assertion header is ignored.
    #[serde(default)]
    pub trusted_gateway: Option<TrustedGateway>,
    /// Each session still being written links to its live dashboard through the gateway:
    /// `{live_base_url}/clusters/{namespace}/{cluster}/` (e.g. `https://ray.example.com`,
    /// or empty for the same origin as serve behind the gateway).
    #[serde(default)]
    pub live_base_url: Option<String>,
    /// Replicas share failed-login counters and logged-out sessions through Redis
    /// ([`rayward_auth::shared`], the gateway's code); absent: per replica, in memory.
    #[serde(default)]
    pub shared: Option<SharedConfig>,
}

/// `[shared]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    /// `redis://[:PASSWORD@]host:port[/db]`; never printed.
    pub redis: String,
    #[serde(default = "d_redis_timeout")]
    pub timeout_ms: u64,
    /// Prefix of the failed-login keys (`<prefix>src:<address>`, `<prefix>user:<name>`).
    #[serde(default = "d_login_prefix")]
    pub login_key_prefix: String,
    /// Prefix of the revoked-session keys.
    #[serde(default = "d_revoked_prefix")]
    pub revoked_key_prefix: String,
}

fn d_redis_timeout() -> u64 {
    200
}

fn d_login_prefix() -> String {
    "rayward:history:login:".into()
}

fn d_revoked_prefix() -> String {
    "rayward:history:revoked:".into()
}

/// `[trusted_gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedGateway {
    /// The shared key file (a Secret both mount): one key per line, every line accepted.
    pub key_file: PathBuf,
    /// Longest validity accepted for one assertion (the gateway issues them for 15 s).
    #[serde(default = "d_max_age")]
    pub max_age_secs: u64,
    /// The principal the gateway's own listing fetch names (`GET /api/clusters`, scope
    /// `*`): only this one may read the whole listing.
    #[serde(default = "d_listing_user")]
    pub listing_user: String,
}

fn d_max_age() -> u64 {
    30
}

pub fn d_listing_user() -> String {
    rayward_auth::assertion::GATEWAY_PRINCIPAL.to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Namespaces by name; `"*"` is every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Label selectors (`team=a,env!=prod`, `tier`) over `[namespace_labels]`.
    #[serde(default)]
    pub namespace_selectors: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON-lines file; "-" for standard output; absent for none.
    pub path: Option<String>,
}

fn d_admin_listen() -> SocketAddr {
    DEFAULT_ADMIN_LISTEN.parse().expect("a socket address")
}

impl ServeConfig {
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        rayward_auth::config::load_toml(path, ServeConfig::validate)
    }

    /// Parses and validates; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<ServeConfig, ConfigError> {
        rayward_auth::config::parse_toml(text, name, ServeConfig::validate)
    }

    fn validate(&self) -> Result<(), String> {
        if !self.auth.any_source() && self.trusted_gateway.is_none() {
            return Err(
                "auth: configure htpasswd, tokens or oidc, or [trusted_gateway] (no one could log in)"
                    .into(),
            );
        }
        if let Some(t) = &self.trusted_gateway {
            if t.max_age_secs == 0 || t.max_age_secs > 300 {
                return Err("trusted_gateway.max_age_secs: between 1 and 300".into());
            }
        }
        if let Some(sh) = &self.shared {
            if !sh.redis.starts_with("redis://") {
                return Err("shared.redis: only redis://host:port URLs are supported".into());
            }
            if !(10..=5000).contains(&sh.timeout_ms) {
                return Err("shared.timeout_ms: between 10 and 5000".into());
            }
        }
        if let Some(u) = &self.live_base_url {
            if !(u.is_empty() || u.starts_with("https://") || u.starts_with("http://"))
                || u.ends_with('/')
                || u.contains(['"', '<', '>', '\'', ' '])
            {
                return Err(format!(
                    "live_base_url {u:?}: an http(s) origin without a trailing slash, or empty"
                ));
            }
        }
        self.auth.validate(&|r| self.roles.contains_key(r))?;
        if let Some(r) = &self.retention {
            r.check().map_err(|e| e.to_string())?;
        }
        for (user, role) in &self.users {
            rayward_auth::principal::check_users_key(user)
                .map_err(|e| format!("users.{user:?}: {e}"))?;
            if !self.roles.contains_key(role) {
                return Err(format!("users.{user}: unknown role {role:?}"));
            }
        }
        for (name, r) in &self.roles {
            if r.namespaces.is_empty() && r.namespace_selectors.is_empty() {
                return Err(format!(
                    "roles.{name}: list namespaces or namespace_selectors (a role that reads nothing)"
                ));
            }
            for ns in &r.namespaces {
                if ns != "*" {
                    crate::layout::check_namespace(ns)
                        .map_err(|e| format!("roles.{name}.namespaces: {e}"))?;
                }
            }
            for s in &r.namespace_selectors {
                super::access::Selector::parse(s)
                    .map_err(|e| format!("roles.{name}.namespace_selectors {s:?}: {e}"))?;
            }
        }
        for ns in self.namespace_labels.keys() {
            crate::layout::check_namespace(ns).map_err(|e| format!("namespace_labels: {e}"))?;
        }
        if self.admin_listen == self.listen && self.listen.port() != 0 {
            return Err("admin_listen: must differ from listen".into());
        }
        if !self.dashboard_dir.join("index.html").is_file() {
            return Err(format!(
                "dashboard_dir {}: no index.html (Ray's ray/dashboard/client/build)",
                self.dashboard_dir.display()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(dir: &Path) -> String {
        format!(
            "listen = \"127.0.0.1:0\"\nstore = \"/s\"\ndashboard_dir = {:?}\n[auth]\nhtpasswd = \"/h\"\n[roles.a]\nnamespaces = [\"team-a\"]\n[users]\nalice = \"a\"\n",
            dir.display().to_string()
        )
    }

    #[test]
    fn parses_and_names_errors_by_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("index.html"), "x").unwrap();
        let c = ServeConfig::parse(&base(d.path()), "h.toml").unwrap();
        assert_eq!(c.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
        let e = ServeConfig::parse(&format!("{}retention = 3\n", base(d.path())), "h.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.toml:"), "{e}");
        for (extra, want) in [
            ("bob = \"nope\"\n", "unknown role"),
            ("[roles.b]\n", "reads nothing"),
            (
                "[roles.b]\nnamespace_selectors = [\"=x\"]\n",
                "namespace_selectors",
            ),
            ("[roles.b]\nnamespaces = [\"../x\"]\n", "roles.b.namespaces"),
        ] {
            let e = ServeConfig::parse(&format!("{}{extra}", base(d.path())), "h.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let e = ServeConfig::parse(
            &base(d.path()).replace("[auth]\nhtpasswd = \"/h\"\n", ""),
            "h",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no one could log in"), "{e}");
        let e = ServeConfig::parse(&base(&d.path().join("none")), "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no index.html"), "{e}");
    }
}
