//! The gateway's word to `rayward history serve` about who is asking: a short-lived
//! assertion, signed with HMAC-SHA256 under a key both read from a mounted Secret, that
//! names the user, their groups, the scope the gateway authorized (`namespace/kind/name`
//! of one stored cluster, or [`LISTING`] for the gateway's own listing fetch), the HTTP
//! method, the exact path and query forwarded, when it was issued and when it expires,
//! and a random id so it is good for one request. The gateway signs; serve verifies. One
//! implementation for both sides, so they cannot disagree on the bytes.
//!
//! Wire form (the [`HEADER`] value): `v1.<base64url(JSON claims)>.<base64url(MAC)>`, the
//! MAC over `rayward-assertion-v1.` followed by the claims part, so that no other signed
//! value of rayward (a session cookie under the same key by mistake) verifies as one.
//!
//! Keys: a file of one key per line (at least 32 bytes each, e.g. `openssl rand -base64
//! 48`); the first signs, every line verifies. Rotation: add the new key as a second
//! line on both sides, then move it first, then drop the old one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;

/// The request header that carries the assertion. The gateway removes any copy a client
/// sent on every route and sets it only on history forwards it has authorized.
pub const HEADER: &str = "x-rayward-assertion";

/// The scope of the gateway's own fetch of serve's listing (`GET /api/clusters`).
pub const LISTING: &str = "*";

/// The principal the gateway names on its own listing fetch. `gateway:` is no source of
/// user identities (`htpasswd:`, `token:`, `oidc:`, `k8s:`), so no user is ever called so.
pub const GATEWAY_PRINCIPAL: &str = "gateway:rayward";

/// Validity of the assertions the gateway issues: one forward, with clock skew to spare.
pub const TTL_SECS: u64 = 15;

/// Shortest key accepted, in bytes.
pub const MIN_KEY: usize = 32;
/// Most keys in one file (the current one and those still accepted during rotation).
pub const MAX_KEYS: usize = 4;
/// Longest assertion read (a JWT-sized value; groups are capped by the signer).
pub const MAX_LEN: usize = 16 * 1024;
/// Clock difference tolerated between gateway and serve.
pub const SKEW_SECS: u64 = 5;

const DOMAIN: &[u8] = b"rayward-assertion-v1.";
const PREFIX: &str = "v1.";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("key file {path}: {why}")]
    Keys { path: String, why: String },
    #[error("malformed assertion")]
    Malformed,
    #[error("assertion signature does not verify")]
    Signature,
    #[error("assertion expired")]
    Expired,
    #[error("assertion issued in the future or valid for too long")]
    Lifetime,
    #[error("assertion is for {0}, not this method")]
    Method(String),
    #[error("assertion is for another path")]
    Path,
    #[error("assertion is for another scope")]
    Scope,
    #[error("assertion already used")]
    Replayed,
}

/// What the gateway vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The principal, namespaced by source (`htpasswd:alice`, `k8s:…`).
    pub sub: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `namespace/kind/name` (kind lower-case), or [`LISTING`].
    pub scope: String,
    pub method: String,
    /// The path and query exactly as forwarded.
    pub path: String,
    /// Unix seconds.
    pub iat: u64,
    pub exp: u64,
    /// Random, hex: one request per assertion.
    pub jti: String,
}

/// The keys of one side.
#[derive(Clone)]
pub struct Keys {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} keys, redacted)", self.keys.len())
    }
}

impl Keys {
    /// Reads the key file: one key per non-empty line, surrounding blanks trimmed.
    pub fn load(path: &Path) -> Result<Keys, AssertionError> {
        let err = |why: String| AssertionError::Keys {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        if text.len() > 64 * 1024 {
            return Err(err("over 64 KiB".into()));
        }
        Keys::parse(&text).map_err(err)
    }

    /// Keys from the bytes of a key file.
    pub fn parse(text: &[u8]) -> Result<Keys, String> {
        let mut keys = Vec::new();
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            if line.len() < MIN_KEY {
                return Err(format!(
                    "line {}: a key of {} bytes; at least {MIN_KEY} are needed",
                    i + 1,
                    line.len()
                ));
            }
            keys.push(line.to_vec());
        }
        if keys.is_empty() {
            return Err("no key".into());
        }
        if keys.len() > MAX_KEYS {
            return Err(format!(
                "{} keys; at most {MAX_KEYS} (the current one first, then those still accepted)",
                keys.len()
            ));
        }
        Ok(Keys { keys })
    }

    fn mac(key: &[u8], body: &str) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(DOMAIN);
        m.update(body.as_bytes());
        m
    }

    /// Signs `claims` with the first key.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = B64.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let tag = Keys::mac(&self.keys[0], &body).finalize().into_bytes();
        format!("{PREFIX}{body}.{}", B64.encode(tag))
    }

    /// A fresh assertion for one forwarded request, valid `ttl_secs` from `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        sub: &str,
        groups: &[String],
        scope: &str,
        method: &str,
        path: &str,
        now: u64,
        ttl_secs: u64,
    ) -> String {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).expect("the OS random source");
        self.sign(&Claims {
            sub: sub.to_string(),
            // Bounded: a Kubernetes user in thousands of groups must not make a header
            // the upstream refuses.
            groups: groups.iter().take(64).cloned().collect(),
            scope: scope.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            iat: now,
            exp: now + ttl_secs,
            jti: id.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// The claims of `value` if any key signed it, it is fresh at `now` (issued no later
    /// than now + skew, not expired, valid no longer than `max_age_secs`), and it names
    /// exactly this `method` and `path` (path and query as received). The scope and
    /// one-time use are the caller's to check ([`Claims::scope`], [`Claims::jti`]).
    pub fn verify(
        &self,
        value: &[u8],
        method: &str,
        path: &str,
        now: u64,
        max_age_secs: u64,
    ) -> Result<Claims, AssertionError> {
        if value.len() > MAX_LEN {
            return Err(AssertionError::Malformed);
        }
        let value = std::str::from_utf8(value).map_err(|_| AssertionError::Malformed)?;
        let rest = value
            .strip_prefix(PREFIX)
            .ok_or(AssertionError::Malformed)?;
        let (body, tag) = rest.split_once('.').ok_or(AssertionError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| AssertionError::Malformed)?;
        // Every key is tried (at most MAX_KEYS), each in constant time.
        if !self
            .keys
            .iter()
            .any(|k| Keys::mac(k, body).verify_slice(&tag).is_ok())
        {
            return Err(AssertionError::Signature);
        }
        let raw = B64.decode(body).map_err(|_| AssertionError::Malformed)?;
        let c: Claims = serde_json::from_slice(&raw).map_err(|_| AssertionError::Malformed)?;
        if c.iat > now + SKEW_SECS || c.exp < c.iat || c.exp - c.iat > max_age_secs {
            return Err(AssertionError::Lifetime);
        }
        if now >= c.exp + SKEW_SECS {
            return Err(AssertionError::Expired);
        }
        if c.method != method {
            return Err(AssertionError::Method(c.method));
        }
        if c.path != path {
            return Err(AssertionError::Path);
        }
        Ok(c)
    }
}

/// Assertions already used, until they expire: a captured one cannot be sent again, to
/// this path or any other. Bounded; when full of unexpired ids, new assertions are
/// refused (fail closed) until some expire.
pub struct Seen {
    ids: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    max: usize,
}

impl Seen {
    pub fn new(max: usize) -> Seen {
        Seen {
            ids: std::sync::Mutex::new(std::collections::HashMap::new()),
            max,
        }
    }

    /// Records `c`'s id: Err if it was seen before (or the record is full).
    pub fn first_use(&self, c: &Claims, now: u64) -> Result<(), AssertionError> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.contains_key(&c.jti) {
            return Err(AssertionError::Replayed);
        }
        if ids.len() >= self.max {
            ids.retain(|_, exp| *exp + SKEW_SECS > now);
            if ids.len() >= self.max {
                return Err(AssertionError::Replayed);
            }
        }
        ids.insert(c.jti.clone(), c.exp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &[u8] = b"0123456789abcdef0123456789abcdef-one";
    const K2: &[u8] = b"0123456789abcdef0123456789abcdef-two";

    fn keys(lines: &[&[u8]]) -> Keys {
        Keys::parse(&lines.join(&b'\n')).unwrap()
    }

    #[test]
    fn round_trip_and_every_mismatch() {
        let k = keys(&[K1]);
        let a = k.issue(
            "htpasswd:alice",
            &["g".into()],
            "team-a/rayjob/train",
            "GET",
            "/clusters/team-a/rayjob/train/s/api/jobs/?x=1",
            1000,
            15,
        );
        let p = "/clusters/team-a/rayjob/train/s/api/jobs/?x=1";
        let c = k.verify(a.as_bytes(), "GET", p, 1001, 30).unwrap();
        assert_eq!(c.sub, "htpasswd:alice");
        assert_eq!(c.groups, vec!["g".to_string()]);
        assert_eq!(c.scope, "team-a/rayjob/train");
        assert_eq!(c.jti.len(), 32);
        assert_eq!(
            k.verify(a.as_bytes(), "HEAD", p, 1001, 30),
            Err(AssertionError::Method("GET".into()))
        );
        assert_eq!(
            k.verify(
                a.as_bytes(),
                "GET",
                "/clusters/team-a/rayjob/train/s/api/jobs/",
                1001,
                30
            ),
            Err(AssertionError::Path)
        );
        assert_eq!(
            k.verify(a.as_bytes(), "GET", p, 1020, 30),
            Err(AssertionError::Expired)
        );
        assert_eq!(
            k.verify(a.as_bytes(), "GET", p, 990, 30),
            Err(AssertionError::Lifetime)
        );
        // Valid for longer than the verifier allows.
        assert_eq!(
            k.verify(a.as_bytes(), "GET", p, 1001, 10),
            Err(AssertionError::Lifetime)
        );
        // Another key, a changed claim, a cut value.
        assert_eq!(
            keys(&[K2]).verify(a.as_bytes(), "GET", p, 1001, 30),
            Err(AssertionError::Signature)
        );
        let (head, tag) = a.rsplit_once('.').unwrap();
        let mut c2 = c.clone();
        c2.sub = "htpasswd:root".into();
        let forged = format!("v1.{}.{tag}", B64.encode(serde_json::to_vec(&c2).unwrap()));
        assert_eq!(
            k.verify(forged.as_bytes(), "GET", p, 1001, 30),
            Err(AssertionError::Signature)
        );
        for bad in [head, "", "v1.", "v2.a.b", &a[..a.len() - 1]] {
            assert!(
                k.verify(bad.as_bytes(), "GET", p, 1001, 30).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn rotation_accepts_every_listed_key_and_signs_with_the_first() {
        let old = keys(&[K1]);
        let both = keys(&[K2, K1]);
        let a = old.issue("u", &[], LISTING, "GET", "/api/clusters", 5, 10);
        assert!(both
            .verify(a.as_bytes(), "GET", "/api/clusters", 6, 30)
            .is_ok());
        let b = both.issue("u", &[], LISTING, "GET", "/api/clusters", 5, 10);
        assert_eq!(
            old.verify(b.as_bytes(), "GET", "/api/clusters", 6, 30),
            Err(AssertionError::Signature)
        );
        assert!(keys(&[K2])
            .verify(b.as_bytes(), "GET", "/api/clusters", 6, 30)
            .is_ok());
    }

    #[test]
    fn key_files_are_checked() {
        assert!(Keys::parse(b"short\n").unwrap_err().contains("line 1"));
        assert!(Keys::parse(b"\n \n").unwrap_err().contains("no key"));
        let five = [K1; 5].join(&b'\n');
        assert!(Keys::parse(&five).unwrap_err().contains("at most 4"));
        let e = Keys::load(Path::new("/nonexistent/key")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/key"), "{e}");
        assert!(!format!("{:?}", keys(&[K1])).contains("0123"));
    }

    #[test]
    fn an_assertion_is_good_once() {
        let k = keys(&[K1]);
        let a = k.issue("u", &[], LISTING, "GET", "/api/clusters", 5, 10);
        let c = k
            .verify(a.as_bytes(), "GET", "/api/clusters", 6, 30)
            .unwrap();
        let seen = Seen::new(2);
        assert!(seen.first_use(&c, 6).is_ok());
        assert_eq!(seen.first_use(&c, 6), Err(AssertionError::Replayed));
        let mut other = c.clone();
        other.jti = "b".into();
        assert!(seen.first_use(&other, 6).is_ok());
        other.jti = "c".into();
        // Full of unexpired ids: refused; once they expire, room again.
        assert_eq!(seen.first_use(&other, 6), Err(AssertionError::Replayed));
        assert!(seen.first_use(&other, 100).is_ok());
    }
}
