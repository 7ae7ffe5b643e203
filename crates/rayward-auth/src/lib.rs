//! Authentication for every rayward server that lets people in (the gateway today, the
//! history server next): who is asking. Basic credentials are checked against the htpasswd
//! file (through the verification cache), bearer tokens against the hashed token store,
//! bearer JWTs (three dot-separated parts) against the OIDC provider's keys. The result is
//! an [`Identity`]: a principal namespaced by its source (`htpasswd:alice`, `token:ci`,
//! `oidc:alice`, `k8s:system:serviceaccount:ns:sa`), plus the roles an OIDC token's
//! claims map to; what that principal may do is `authz`'s concern.

pub mod apr1;
pub mod assertion;
pub mod backoff;
pub mod cache;
pub mod config;
pub mod htpasswd;
pub mod login;
pub mod oidc;
pub mod principal;
pub mod revoke;
pub mod session;
pub mod shared;
pub mod token;
pub mod web;

use base64::Engine;
use cache::VerifyCache;
use htpasswd::{Hash, HtpasswdFile};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use token::{TokenOutcome, TokenStore};

/// Credentials as presented in one `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <redacted>)"),
            Credentials::Bearer(_) => write!(f, "Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// The user name claimed, for failed-login accounting (None for tokens).
    pub fn claimed_user(&self) -> Option<&str> {
        match self {
            Credentials::Basic { user, .. } => Some(user),
            Credentials::Bearer(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credentials required")]
    Missing,
    #[error("malformed Authorization header")]
    Malformed,
    #[error("more than one Authorization header")]
    Duplicate,
    #[error("invalid credentials")]
    Invalid,
    #[error("token expired")]
    Expired,
    /// The source that must vouch for the credential (the Kubernetes API server) did not
    /// answer: the request fails closed, with 503.
    #[error("credential source unavailable")]
    Unavailable,
}

impl AuthError {
    /// Label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::Duplicate => "duplicate",
            AuthError::Invalid => "invalid",
            AuthError::Expired => "expired",
            AuthError::Unavailable => "unavailable",
        }
    }
}

/// Parses the values of the request's `Authorization` headers.
pub fn parse_authorization(values: &[&[u8]]) -> Result<Credentials, AuthError> {
    let v = match values {
        [] => return Err(AuthError::Missing),
        [v] => *v,
        _ => return Err(AuthError::Duplicate),
    };
    let v = std::str::from_utf8(v).map_err(|_| AuthError::Malformed)?;
    let (scheme, rest) = v.split_once(' ').ok_or(AuthError::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| AuthError::Malformed)?;
        let s = String::from_utf8(raw).map_err(|_| AuthError::Malformed)?;
        let (user, password) = s.split_once(':').ok_or(AuthError::Malformed)?;
        if user.is_empty() || user.len() > 256 || password.len() > 1024 {
            return Err(AuthError::Malformed);
        }
        Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        // JWTs with many group claims run to several KiB.
        if rest.is_empty() || rest.len() > 8192 || rest.contains(' ') {
            return Err(AuthError::Malformed);
        }
        Ok(Credentials::Bearer(rest.to_string()))
    } else {
        Err(AuthError::Malformed)
    }
}

/// A bcrypt hash no password matches, verified for unknown users so that the time to
/// refuse does not reveal whether a user exists.
fn dummy_hash() -> &'static Hash {
    static H: OnceLock<Hash> = OnceLock::new();
    H.get_or_init(|| {
        let mut pw = [0u8; 16];
        getrandom::fill(&mut pw).expect("OS random source");
        let pw: String = pw.iter().map(|b| format!("{b:02x}")).collect();
        Hash::Bcrypt(bcrypt::hash(pw, bcrypt::DEFAULT_COST).expect("bcrypt"))
    })
}

/// Which credential source vouched for a user. Names are only unique within a source: an
/// OIDC token's `sub` may equal a local htpasswd user's name, and must not get that
/// user's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Htpasswd,
    Token,
    Oidc,
    /// A Kubernetes TokenReview (ServiceAccounts and kubectl users).
    Kubernetes,
}

impl Source {
    /// The principal prefix: `htpasswd:alice`, `token:ci`, `oidc:alice`, `k8s:system:…`.
    pub fn prefix(self) -> &'static str {
        match self {
            Source::Htpasswd => "htpasswd",
            Source::Token => "token",
            Source::Oidc => "oidc",
            Source::Kubernetes => "k8s",
        }
    }

    pub fn parse(prefix: &str) -> Option<Source> {
        [
            Source::Htpasswd,
            Source::Token,
            Source::Oidc,
            Source::Kubernetes,
        ]
        .into_iter()
        .find(|s| s.prefix() == prefix)
    }

    /// The gateway's own user databases (the htpasswd file and the config's tokens), whose
    /// names an unprefixed `[users]` key still means.
    pub fn is_local(self) -> bool {
        matches!(self, Source::Htpasswd | Source::Token)
    }
}

/// Who authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The principal, `SOURCE:NAME`: what the audit log, rate limits and role lookups use.
    pub user: String,
    pub source: Source,
    /// The name within its source.
    pub name: String,
    /// Roles granted by the credential itself (an OIDC token's mapped claim), on top of
    /// the config's `[users]` table.
    pub roles: Vec<String>,
    /// Groups the source reports (Kubernetes), for authorization by group.
    pub groups: Vec<String>,
}

impl Identity {
    pub fn new(source: Source, name: impl Into<String>) -> Identity {
        let name = name.into();
        Identity {
            user: format!("{}:{name}", source.prefix()),
            source,
            name,
            roles: Vec::new(),
            groups: Vec::new(),
        }
    }
}

/// A bearer value shaped like a JWS compact serialisation (header.payload.signature).
/// Opaque gateway tokens never contain dots, so the two kinds cannot be confused.
pub fn looks_like_jwt(t: &str) -> bool {
    t.bytes().filter(|&b| b == b'.').count() == 2
}

/// The JSON payload of a JWS compact token, read without checking the signature: only for
/// routing a token to the source that can check it (`iss`), or for the expiry of a token
/// another party has already verified (TokenReview).
pub fn unverified_claims(t: &str) -> Option<serde_json::Value> {
    let payload = t.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Until when an authentication's answer stands without asking again (see
/// [`Authenticator::authenticate_vouched`]); None: ask every time.
pub type Vouched = Option<Instant>;

pub struct Authenticator {
    htpasswd: Option<Arc<HtpasswdFile>>,
    tokens: TokenStore,
    cache: VerifyCache,
    oidc: Option<Arc<oidc::Oidc>>,
}

impl Authenticator {
    pub fn new(
        htpasswd: Option<Arc<HtpasswdFile>>,
        tokens: TokenStore,
        cache: VerifyCache,
    ) -> Authenticator {
        Authenticator {
            htpasswd,
            tokens,
            cache,
            oidc: None,
        }
    }

    /// Also accepts OIDC JWTs verified by `oidc`.
    pub fn with_oidc(mut self, oidc: Arc<oidc::Oidc>) -> Authenticator {
        self.oidc = Some(oidc);
        self
    }

    /// Whether a bearer value is for this authenticator to judge: a configured token
    /// (valid or expired), or a JWT whose `iss` is the configured OIDC issuer. Other bearer
    /// values may be for another source (a Kubernetes TokenReview).
    pub fn claims_bearer(&self, t: &str) -> bool {
        if looks_like_jwt(t) {
            let Some(o) = &self.oidc else { return false };
            unverified_claims(t)
                .and_then(|c| c.get("iss").and_then(|i| i.as_str()).map(str::to_string))
                .is_some_and(|iss| iss == o.issuer())
        } else {
            self.tokens.check(t, time::OffsetDateTime::now_utc()) != TokenOutcome::Unknown
        }
    }

    pub fn oidc(&self) -> Option<&Arc<oidc::Oidc>> {
        self.oidc.as_ref()
    }

    pub fn htpasswd(&self) -> Option<&Arc<HtpasswdFile>> {
        self.htpasswd.as_ref()
    }

    pub fn cache(&self) -> &VerifyCache {
        &self.cache
    }

    /// Starts the tasks that keep the credential sources current: the htpasswd file
    /// re-read when it changes (every second), the OIDC keys refetched on their interval.
    /// A version that fails to load leaves the previous one in force, said on stderr
    /// under `name`. The caller aborts the tasks when it stops serving.
    pub fn spawn_reloaders(&self, name: &'static str) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(o) = self.oidc.clone() {
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(o.refresh_interval());
                tick.tick().await; // the keys were loaded at start
                loop {
                    tick.tick().await;
                    if let Err(e) = o.refetch().await {
                        eprintln!("{name}: keeping previous OIDC keys: {e}");
                    }
                }
            }));
        }
        if let Some(h) = self.htpasswd.clone() {
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    if let Err(e) = h.reload_if_changed() {
                        eprintln!("{name}: keeping previous users: {e}");
                    }
                }
            }));
        }
        tasks
    }

    /// Returns who authenticated. Password checks that miss the cache run on a
    /// blocking thread.
    pub async fn authenticate(&self, creds: Credentials) -> Result<Identity, AuthError> {
        self.authenticate_vouched(creds).await.map(|(id, _)| id)
    }

    /// The generation of the credential sources a [`Vouched`] answer depends on: the
    /// htpasswd file's ([`HtpasswdFile::generation`]). Read it before authenticating; a
    /// memo of the answer is good only while it is unchanged.
    pub fn generation(&self) -> u64 {
        self.htpasswd.as_ref().map_or(0, |h| h.generation())
    }

    /// [`Authenticator::authenticate`], also saying until when the answer may be
    /// remembered without asking again: only a Basic credential checked against the
    /// htpasswd file and held in the verification cache has such an instant (the cache
    /// entry's expiry); tokens, OIDC JWTs and every failure have none.
    pub async fn authenticate_vouched(
        &self,
        creds: Credentials,
    ) -> Result<(Identity, Vouched), AuthError> {
        let id = match creds {
            Credentials::Bearer(t) if looks_like_jwt(&t) => {
                let Some(o) = &self.oidc else {
                    return Err(AuthError::Invalid);
                };
                let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
                let id = o.verify(&t, now).await?;
                let mut out = Identity::new(Source::Oidc, id.user);
                out.roles = id.roles;
                Ok(out)
            }
            Credentials::Bearer(t) => {
                match self.tokens.check(&t, time::OffsetDateTime::now_utc()) {
                    TokenOutcome::Valid(u) => Ok(Identity::new(Source::Token, u)),
                    TokenOutcome::Expired(_) => Err(AuthError::Expired),
                    TokenOutcome::Unknown => Err(AuthError::Invalid),
                }
            }
            Credentials::Basic { user, password } => {
                let stored = self.htpasswd.as_ref().and_then(|f| f.get(&user));
                if let Some(h) = &stored {
                    if let Some(until) =
                        self.cache
                            .hit_until(&user, &password, h.as_str(), Instant::now())
                    {
                        return Ok((Identity::new(Source::Htpasswd, user), Some(until)));
                    }
                }
                let (known, hash) = match stored {
                    Some(h) => (true, h),
                    None => (false, dummy_hash().clone()),
                };
                let (ok, password) = tokio::task::spawn_blocking(move || {
                    let ok = hash.verify(&password);
                    (ok.then_some(hash), password)
                })
                .await
                .map_err(|_| AuthError::Invalid)?;
                match ok {
                    Some(h) if known => {
                        let until = self
                            .cache
                            .insert(&user, &password, h.as_str(), Instant::now());
                        return Ok((Identity::new(Source::Htpasswd, user), until));
                    }
                    _ => Err(AuthError::Invalid),
                }
            }
        };
        id.map(|id| (id, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn basic(user: &str, pw: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
        .into_bytes()
    }

    #[test]
    fn parses_basic_and_bearer() {
        let b = basic("alice", "pa:ss");
        assert_eq!(
            parse_authorization(&[&b]),
            Ok(Credentials::Basic {
                user: "alice".into(),
                password: "pa:ss".into()
            })
        );
        assert_eq!(
            parse_authorization(&[b"bearer abc.def"]),
            Ok(Credentials::Bearer("abc.def".into()))
        );
        assert_eq!(parse_authorization(&[]), Err(AuthError::Missing));
        assert_eq!(parse_authorization(&[&b, &b]), Err(AuthError::Duplicate));
        for bad in [
            &b"Basic"[..],
            b"Basic !!!",
            b"Digest x",
            b"Bearer ",
            b"Bearer a b",
            b"Basic YWxpY2U=", // no colon
            b"Basic OnB3",     // empty user
        ] {
            assert_eq!(
                parse_authorization(&[bad]),
                Err(AuthError::Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Credentials::Basic {
            user: "alice".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credentials::Bearer("tok".into())).contains("tok"));
    }

    #[tokio::test]
    async fn verifies_and_caches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("htpasswd");
        let h = bcrypt::hash("Correct-Horse1", 4).unwrap();
        std::fs::write(&p, format!("alice:{h}\n")).unwrap();
        let f = Arc::new(HtpasswdFile::open(&p).unwrap());
        let a = Authenticator::new(
            Some(f),
            TokenStore::default(),
            VerifyCache::new(Duration::from_secs(60), 10),
        );
        let ok = Credentials::Basic {
            user: "alice".into(),
            password: "Correct-Horse1".into(),
        };
        assert_eq!(
            a.authenticate(ok.clone()).await,
            Ok(Identity::new(Source::Htpasswd, "alice"))
        );
        assert_eq!(a.cache().len(), 1);
        assert_eq!(
            a.authenticate(ok).await,
            Ok(Identity::new(Source::Htpasswd, "alice"))
        );
        assert_eq!(a.cache().len(), 1);
        let wrong = Credentials::Basic {
            user: "alice".into(),
            password: "correct-horse1".into(),
        };
        assert_eq!(a.authenticate(wrong).await, Err(AuthError::Invalid));
        let nobody = Credentials::Basic {
            user: "mallory".into(),
            password: "Correct-Horse1".into(),
        };
        assert_eq!(a.authenticate(nobody).await, Err(AuthError::Invalid));
        assert_eq!(a.cache().len(), 1, "failures are not cached");
    }
}
