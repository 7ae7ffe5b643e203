//! OIDC bearer JWTs: `Authorization: Bearer <jwt>` from an identity provider, verified
//! against its published keys (JWKS, from a file or an http(s) URL). The signature is
//! checked with `jsonwebtoken` under an algorithm from the configured allow-list (never
//! `none`, never HMAC: a JWKS holds public keys, and an HMAC check keyed with a public key
//! is the classic algorithm-confusion forgery); `iss`, `aud`, `exp` are required, `nbf`
//! checked, all with a small leeway. The user comes from one claim, roles from another
//! through the config's table, so the IdP's groups decide what a user may do.
//!
//! Keys are fetched at start, refreshed periodically, and refetched when a token names an
//! unknown `kid` (the IdP rotated) — at most once per `jwks_min_refetch_secs`, so a flood
//! of tokens with made-up `kid`s cannot turn the gateway into a load generator for the IdP.

use super::AuthError;
pub use crate::config::parse_algorithm;
use crate::config::OidcConfig;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Time allowed for one JWKS fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Who a valid token names, and the roles its claim maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    pub user: String,
    pub roles: Vec<String>,
}

struct Key {
    kid: Option<String>,
    /// The JWK's own `alg`, when it states one.
    alg: Option<Algorithm>,
    family: jsonwebtoken::AlgorithmFamily,
    key: DecodingKey,
}

type JwksClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<bytes::Bytes>,
>;

enum Source {
    File(PathBuf),
    Url {
        uri: http::Uri,
        client: Box<JwksClient>,
    },
}

pub struct Oidc {
    issuer: String,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    user_claim: String,
    roles_claim: Option<String>,
    role_map: BTreeMap<String, String>,
    source: Source,
    keys: RwLock<Arc<Vec<Key>>>,
    /// When the keys were last fetched (successfully or not); serialises fetches.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
    refresh: Duration,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("keys", &self.key_count())
            .finish()
    }
}

impl Oidc {
    /// Builds the verifier and loads the keys once. A JWKS file that cannot be read or
    /// parsed is an error (a config mistake); a URL that cannot be fetched is logged and
    /// retried (an IdP outage must not stop the gateway, whose other methods still work).
    pub async fn new(cfg: &OidcConfig) -> Result<Oidc, String> {
        let algorithms = cfg
            .algorithms
            .iter()
            .map(|a| parse_algorithm(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("auth.oidc.algorithms: {e}"))?;
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(p), None) => Source::File(p.clone()),
            (None, Some(u)) => {
                let uri: http::Uri = u
                    .parse()
                    .map_err(|e| format!("auth.oidc.jwks_url {u:?}: {e}"))?;
                let tls = uri.scheme_str() == Some("https");
                Source::Url {
                    uri,
                    client: Box::new(https_client(cfg.jwks_ca_file.as_deref(), tls)?),
                }
            }
            _ => return Err("auth.oidc: set jwks_file or jwks_url, exactly one".into()),
        };
        let o = Oidc {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            algorithms,
            leeway: cfg.leeway_secs,
            user_claim: cfg.user_claim.clone(),
            roles_claim: cfg.roles_claim.clone(),
            role_map: cfg.role_map.clone(),
            source,
            keys: RwLock::new(Arc::new(Vec::new())),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refetch: Duration::from_secs(cfg.jwks_min_refetch_secs),
            refresh: Duration::from_secs(cfg.jwks_refresh_secs.max(1)),
        };
        match (o.refetch().await, &o.source) {
            (Ok(_), _) => {}
            (Err(e), Source::File(_)) => return Err(e),
            (Err(e), Source::Url { .. }) => {
                eprintln!("rayward gateway: OIDC keys not loaded yet, will retry: {e}")
            }
        }
        Ok(o)
    }

    /// How often the periodic refresh runs.
    /// The configured issuer (`iss` of the tokens this verifier accepts).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn refresh_interval(&self) -> Duration {
        self.refresh
    }

    pub fn key_count(&self) -> usize {
        self.keys.read().expect("jwks lock").len()
    }

    /// Fetches and swaps in the key set now; on failure the previous keys stay in force.
    /// Returns the number of usable keys.
    pub async fn refetch(&self) -> Result<usize, String> {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        let text = self.fetch().await?;
        let keys = self.parse_jwks(&text)?;
        let n = keys.len();
        *self.keys.write().expect("jwks lock") = Arc::new(keys);
        Ok(n)
    }

    /// Refetches on an unknown `kid`, unless a fetch happened within `min_refetch`.
    async fn refetch_bounded(&self) {
        {
            let last = self.last_fetch.lock().await;
            if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
                return;
            }
        }
        if let Err(e) = self.refetch().await {
            eprintln!("rayward gateway: OIDC keys: {e}");
        }
    }

    async fn fetch(&self) -> Result<String, String> {
        match &self.source {
            Source::File(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("auth.oidc.jwks_file {}: {e}", p.display())),
            Source::Url { uri, client } => {
                let req = http::Request::get(uri.clone())
                    .header(http::header::ACCEPT, "application/json")
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let fut = async {
                    let resp = client.request(req).await.map_err(|e| e.to_string())?;
                    if resp.status() != http::StatusCode::OK {
                        return Err(format!("status {}", resp.status()));
                    }
                    let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8".to_string())
                };
                tokio::time::timeout(FETCH_TIMEOUT, fut)
                    .await
                    .map_err(|_| "timed out".to_string())
                    .and_then(|r| r)
                    .map_err(|e| format!("auth.oidc.jwks_url {uri}: {e}"))
            }
        }
    }

    /// Keeps the keys that can verify one of the allowed algorithms: signing keys
    /// (`use` absent or `sig`) of an asymmetric type; HMAC (`oct`) keys are dropped.
    fn parse_jwks(&self, text: &str) -> Result<Vec<Key>, String> {
        let where_ = match &self.source {
            Source::File(p) => format!("auth.oidc.jwks_file {}", p.display()),
            Source::Url { uri, .. } => format!("auth.oidc.jwks_url {uri}"),
        };
        // Parsed key by key, so one key of a type this crate does not know does not
        // discard the whole set.
        let raw: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{where_}: not JSON: {e}"))?;
        let Some(list) = raw.get("keys").and_then(|k| k.as_array()) else {
            return Err(format!("{where_}: no \"keys\" array"));
        };
        let mut keys = Vec::new();
        for k in list {
            let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(k.clone()) else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                continue;
            }
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                continue;
            }
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => continue,
                Some(a) => match Algorithm::from_str(&a.to_string()) {
                    Ok(a) if self.algorithms.contains(&a) => Some(a),
                    _ => continue,
                },
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                family: key.family(),
                key,
            });
        }
        // An empty set is kept (the IdP may publish keys later), never an error.
        Ok(keys)
    }

    /// Verifies `token` and maps its claims to a user and roles.
    pub async fn verify(&self, token: &str, now_unix: u64) -> Result<JwtIdentity, AuthError> {
        // alg "none" or an unknown name fails to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid);
        }
        let key = match self.find_key(header.kid.as_deref(), header.alg) {
            Some(k) => k,
            None => {
                self.refetch_bounded().await;
                self.find_key(header.kid.as_deref(), header.alg)
                    .ok_or(AuthError::Invalid)?
            }
        };
        let mut v = Validation::new(header.alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.audience);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &v)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                })?;
        let claims = data.claims;
        // jsonwebtoken ≥ 10.3 refuses mistyped time claims; checked again here so a
        // regression there cannot turn a string `nbf` into no `nbf`.
        for c in ["exp", "nbf", "iat"] {
            if claims.get(c).is_some_and(|v| !v.is_number()) {
                return Err(AuthError::Invalid);
            }
        }
        if let Some(nbf) = claims.get("nbf").and_then(|v| v.as_f64()) {
            if nbf > (now_unix + self.leeway) as f64 {
                return Err(AuthError::Invalid);
            }
        }
        let user = claims
            .get(&self.user_claim)
            .and_then(|v| v.as_str())
            .filter(|u| !u.is_empty() && u.len() <= 256)
            .ok_or(AuthError::Invalid)?
            .to_string();
        Ok(JwtIdentity {
            user,
            roles: self.map_roles(&claims),
        })
    }

    fn map_roles(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
        let Some(name) = &self.roles_claim else {
            return Vec::new();
        };
        let values: Vec<&str> = match claims.get(name) {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        let mut seen = HashSet::new();
        values
            .into_iter()
            .filter_map(|v| self.role_map.get(v))
            .filter(|r| seen.insert(r.as_str()))
            .cloned()
            .collect()
    }

    fn find_key(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.keys.read().expect("jwks lock").clone();
        let usable = |k: &&Key| k.family == alg.family() && k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => keys
                .iter()
                .filter(usable)
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| k.key.clone()),
            // Without a `kid`, only an unambiguous set will do.
            None => {
                let mut it = keys.iter().filter(usable);
                match (it.next(), it.next()) {
                    (Some(k), None) => Some(k.key.clone()),
                    _ => None,
                }
            }
        }
    }
}

/// An http(s) client for the JWKS URL: roots from `ca_file` when given (a private IdP),
/// else the system's (required only when the URL is https).
fn https_client(ca_file: Option<&std::path::Path>, tls: bool) -> Result<JwksClient, String> {
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let with_roots = |roots: rustls::RootCertStore| -> Result<rustls::ClientConfig, String> {
        Ok(
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    let builder = match ca_file {
        Some(p) => {
            use rustls_pki_types::pem::PemObject;
            use rustls_pki_types::CertificateDer;
            let bad =
                |e: &dyn std::fmt::Display| format!("auth.oidc.jwks_ca_file {}: {e}", p.display());
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(p).map_err(|e| bad(&e))? {
                roots.add(c.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no certificate"));
            }
            builder.with_tls_config(with_roots(roots)?)
        }
        None if tls => builder
            .with_provider_and_native_roots(provider.clone())
            .map_err(|e| format!("auth.oidc: system CA certificates: {e}"))?,
        // Plain http: no TLS is ever made, no roots are needed.
        None => builder.with_tls_config(with_roots(rustls::RootCertStore::empty())?),
    };
    let conn = builder.https_or_http().enable_http1().build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(conn),
    )
}
