//! The settings of each way to authenticate, as a server's TOML config holds them: the
//! `[auth]` section (htpasswd, `[[auth.tokens]]`, `[auth.oidc]`, the verification cache)
//! and the `[session]` section (login form and signed cookie). The gateway and the history
//! server read the same sections with the same validation, so one file format serves both.

use jsonwebtoken::Algorithm;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The `[auth]` section: who may log in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Apache/nginx htpasswd file (bcrypt $2y$/$2b$, apr1); reloaded when it changes.
    pub htpasswd: Option<PathBuf>,
    /// Bearer tokens, stored as SHA-256 hex of the token.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// How long a verified user+password stays in the verification cache.
    #[serde(default = "d_cache_ttl")]
    pub cache_ttl_secs: u64,
    #[serde(default = "d_cache_max")]
    pub cache_max_entries: usize,
    /// Bearer JWTs from an OIDC identity provider.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            htpasswd: None,
            tokens: Vec::new(),
            cache_ttl_secs: d_cache_ttl(),
            cache_max_entries: d_cache_max(),
            oidc: None,
        }
    }
}

fn d_cache_ttl() -> u64 {
    300
}
fn d_cache_max() -> usize {
    10_000
}

/// The `[session]` section: the browser login form and its signed session cookie.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// At least 32 random bytes, the same file on every replica.
    pub key_file: PathBuf,
    #[serde(default = "d_session_ttl")]
    pub ttl_secs: u64,
    /// Origins (`https://ray.example.com`) the login form may be posted from; empty: the
    /// request's own `Host` (set this when a proxy in front rewrites `Host`).
    #[serde(default)]
    pub login_origins: Vec<String>,
    /// Redis key prefix of revoked sessions (in the gateway's `[ratelimit] redis` server).
    #[serde(default = "d_revoked_prefix")]
    pub redis_key_prefix: String,
}

fn d_revoked_prefix() -> String {
    "rayward:revoked:".into()
}

fn d_session_ttl() -> u64 {
    8 * 3600
}

impl AuthConfig {
    /// Whether any way to log in is configured (htpasswd, tokens or OIDC).
    pub fn any_source(&self) -> bool {
        self.htpasswd.is_some() || !self.tokens.is_empty() || self.oidc.is_some()
    }

    /// Checks the section's values; `role_known` says whether a role name exists (for
    /// `auth.oidc.role_map`). Messages name the key (`auth.tokens[1]: …`).
    pub fn validate(&self, role_known: &dyn Fn(&str) -> bool) -> Result<(), String> {
        if let Some(o) = &self.oidc {
            o.validate(role_known)?;
        }
        for (i, t) in self.tokens.iter().enumerate() {
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("auth.tokens[{i}]: sha256 must be 64 hex digits"));
            }
            if let Some(exp) = &t.expires {
                time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| format!("auth.tokens[{i}].expires {exp:?}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Builds the [`crate::Authenticator`] this section describes: the htpasswd file read,
    /// the token digests checked, the OIDC keys fetched once.
    pub async fn authenticator(&self) -> Result<crate::Authenticator, String> {
        let htpasswd = match &self.htpasswd {
            Some(p) => Some(std::sync::Arc::new(
                crate::htpasswd::HtpasswdFile::open(p).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let tokens = crate::token::TokenStore::new(&self.tokens)?;
        let cache = crate::cache::VerifyCache::new(
            std::time::Duration::from_secs(self.cache_ttl_secs),
            self.cache_max_entries,
        );
        let mut authn = crate::Authenticator::new(htpasswd, tokens, cache);
        if let Some(o) = &self.oidc {
            let oidc = crate::oidc::Oidc::new(o).await?;
            authn = authn.with_oidc(std::sync::Arc::new(oidc));
        }
        Ok(authn)
    }
}

impl OidcConfig {
    /// Checks `[auth.oidc]`; `role_known` says whether a `role_map` target exists.
    pub fn validate(&self, role_known: &dyn Fn(&str) -> bool) -> Result<(), String> {
        let o = self;
        if o.issuer.is_empty() {
            return Err("auth.oidc.issuer: empty".into());
        }
        if o.audience.is_empty() || o.audience.iter().any(String::is_empty) {
            return Err("auth.oidc.audience: list the accepted audiences".into());
        }
        match (&o.jwks_file, &o.jwks_url) {
            (Some(_), Some(_)) | (None, None) => {
                return Err("auth.oidc: set jwks_file or jwks_url, exactly one".into())
            }
            (None, Some(u)) => {
                let uri: http::Uri = u
                    .parse()
                    .map_err(|e| format!("auth.oidc.jwks_url {u:?}: {e}"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(format!(
                        "auth.oidc.jwks_url {u:?}: must be an http:// or https:// URL"
                    ));
                }
            }
            (Some(_), None) => {
                if o.jwks_ca_file.is_some() {
                    return Err("auth.oidc.jwks_ca_file: only with jwks_url".into());
                }
            }
        }
        if o.algorithms.is_empty() {
            return Err("auth.oidc.algorithms: list at least one".into());
        }
        for a in &o.algorithms {
            parse_algorithm(a).map_err(|e| format!("auth.oidc.algorithms: {e}"))?;
        }
        if o.leeway_secs > 300 {
            return Err("auth.oidc.leeway_secs: at most 300".into());
        }
        if o.user_claim.is_empty() {
            return Err("auth.oidc.user_claim: empty".into());
        }
        if !o.role_map.is_empty() && o.roles_claim.is_none() {
            return Err("auth.oidc.role_map needs auth.oidc.roles_claim".into());
        }
        for (value, role) in &o.role_map {
            if !role_known(role) {
                return Err(format!("auth.oidc.role_map.{value}: unknown role {role:?}"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Expected `iss`, exactly as the IdP writes it.
    pub issuer: String,
    /// Accepted `aud` values (the token's `aud` must contain one).
    pub audience: Vec<String>,
    /// The IdP's keys as a JWKS file (re-read periodically) or an http(s) URL. Exactly one.
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    /// CA certificates (PEM) for an https `jwks_url` signed by a private CA.
    pub jwks_ca_file: Option<PathBuf>,
    /// Accepted signature algorithms; asymmetric only.
    #[serde(default = "d_oidc_algs")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "d_oidc_leeway")]
    pub leeway_secs: u64,
    /// Periodic key refresh.
    #[serde(default = "d_jwks_refresh")]
    pub jwks_refresh_secs: u64,
    /// Least time between two fetches caused by an unknown `kid`.
    #[serde(default = "d_jwks_min_refetch")]
    pub jwks_min_refetch_secs: u64,
    /// Claim that names the user (`sub`, `email`, `preferred_username`, …).
    #[serde(default = "d_user_claim")]
    pub user_claim: String,
    /// Claim holding the user's groups or roles (a string or an array of strings).
    pub roles_claim: Option<String>,
    /// Claim value → gateway role.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
}

fn d_oidc_algs() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn d_oidc_leeway() -> u64 {
    30
}
fn d_jwks_refresh() -> u64 {
    300
}
fn d_jwks_min_refetch() -> u64 {
    10
}
fn d_user_claim() -> String {
    "sub".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub user: String,
    /// Lower-case hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
    /// RFC 3339 time after which the token is refused.
    pub expires: Option<String>,
}

/// Algorithms a JWKS key may verify: asymmetric ones only.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err(format!("{name:?}: unsigned tokens are never accepted"));
    }
    let alg = Algorithm::from_str(name).map_err(|_| {
        format!("{name:?}: unknown algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)")
    })?;
    if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
        return Err(format!(
            "{name:?}: HMAC algorithms are refused (a JWKS holds public keys; an HMAC check keyed \
             with a public key lets anyone forge tokens)"
        ));
    }
    Ok(alg)
}

/// A server's TOML config file that cannot be used: unreadable, not parsed (at
/// `file:line:column`), or refused by the server's own validation.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Reads `path` and parses it with [`parse_toml`].
pub fn load_toml<T: DeserializeOwned>(
    path: &Path,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
        path: path.display().to_string(),
        err,
    })?;
    parse_toml(&text, &path.display().to_string(), validate)
}

/// Parses a config (strictly, as its serde attributes say) and validates it once; `name`
/// is the file in error messages. Shared by the gateway and `history serve`.
pub fn parse_toml<T: DeserializeOwned>(
    text: &str,
    name: &str,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let cfg: T = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::Parse {
            path: name.to_string(),
            line,
            column,
            message: e.message().to_string(),
        }
    })?;
    validate(&cfg).map_err(|message| ConfigError::Invalid {
        path: name.to_string(),
        message,
    })?;
    Ok(cfg)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}
