//! The settings of each way to authenticate, as a server's TOML config holds them (the
//! gateway's `[auth.oidc]` and `[[auth.tokens]]`), validated where they are parsed.

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

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
