//! Browser sessions: after a login through the gateway's form, the browser holds a
//! signed cookie `rayward_session=<user>.<expiry>.<id>.<pw>.<mac>` (HMAC-SHA256 under a key
//! from a file). Any replica with the same key file accepts it, so replicas need no shared
//! session store. HttpOnly (no script reads it), SameSite=Strict (no other site's page
//! can send it), Secure when the gateway serves TLS.
//!
//! A session does not outlive its user: `<pw>` is a keyed fingerprint of the user's stored
//! password hash, which the server compares on every request with the hash in the current
//! htpasswd file (a removed user or a changed password ends every session at once), and
//! `<id>` (random) is what logout revokes ([`Claims::id`], kept by the server until the
//! cookie would have expired anyway).
//!
//! The login form carries a CSRF token: the form's GET sets a random nonce in its own
//! cookie (`rayward_csrf`, HttpOnly, SameSite=Strict) and puts the nonce's MAC in a
//! hidden field; the POST must bring both ([`Sessions::csrf_ok`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

pub const COOKIE: &str = "rayward_session";
/// The login form's CSRF nonce.
pub const CSRF_COOKIE: &str = "rayward_csrf";
/// How long a login form stays usable.
pub const CSRF_TTL_SECS: u64 = 3600;

pub struct Sessions {
    key: Vec<u8>,
    ttl_secs: u64,
}

/// What a valid session cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The htpasswd user.
    pub user: String,
    /// Unix seconds.
    pub expiry: u64,
    /// Random, per login: what logout revokes.
    pub id: String,
    /// Keyed fingerprint of the password hash the user logged in against.
    pw: Vec<u8>,
}

impl Sessions {
    /// Reads the key file (at least 32 bytes; e.g. `head -c 32 /dev/urandom`).
    pub fn from_key_file(path: &Path, ttl_secs: u64) -> Result<Sessions, String> {
        let key =
            std::fs::read(path).map_err(|e| format!("session.key_file {}: {e}", path.display()))?;
        Sessions::new(key, ttl_secs)
            .map_err(|e| format!("session.key_file {}: {e}", path.display()))
    }

    pub fn new(key: Vec<u8>, ttl_secs: u64) -> Result<Sessions, String> {
        if key.len() < 32 {
            return Err(format!("key has {} bytes, needs at least 32", key.len()));
        }
        Ok(Sessions { key, ttl_secs })
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// An HMAC under the key, with a domain label so that the cookie's MAC, the password
    /// fingerprint and the CSRF token can never stand in for one another.
    fn mac(&self, domain: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(domain);
        for p in parts {
            m.update(b".");
            m.update(p);
        }
        m
    }

    /// The keyed fingerprint of a stored password hash (16 bytes of an HMAC: the cookie
    /// reveals nothing about the hash).
    pub fn fingerprint(&self, stored_hash: &str) -> Vec<u8> {
        self.mac(b"pw", &[stored_hash.as_bytes()])
            .finalize()
            .into_bytes()[..16]
            .to_vec()
    }

    /// A cookie value for `user`, who logged in against `stored_hash`, valid until
    /// `now + ttl`.
    pub fn issue(&self, user: &str, stored_hash: &str, now_unix: u64) -> String {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).expect("OS random source");
        let (u, id, pw) = (
            B64.encode(user),
            B64.encode(id),
            B64.encode(self.fingerprint(stored_hash)),
        );
        let expiry = (now_unix + self.ttl_secs).to_string();
        let tag = self
            .mac(
                b"session",
                &[
                    u.as_bytes(),
                    expiry.as_bytes(),
                    id.as_bytes(),
                    pw.as_bytes(),
                ],
            )
            .finalize()
            .into_bytes();
        format!("{u}.{expiry}.{id}.{pw}.{}", B64.encode(tag))
    }

    /// The claims of a valid, unexpired cookie value. The caller still checks
    /// [`Sessions::still_valid`] against the current password hash, and the revocations.
    pub fn verify(&self, value: &str, now_unix: u64) -> Option<Claims> {
        let mut parts = value.split('.');
        let (u, exp, id, pw, tag) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if parts.next().is_some() {
            return None;
        }
        let tag = B64.decode(tag).ok()?;
        self.mac(
            b"session",
            &[u.as_bytes(), exp.as_bytes(), id.as_bytes(), pw.as_bytes()],
        )
        .verify_slice(&tag)
        .ok()?;
        let expiry: u64 = exp.parse().ok()?;
        if now_unix >= expiry {
            return None;
        }
        Some(Claims {
            user: String::from_utf8(B64.decode(u).ok()?).ok()?,
            expiry,
            id: id.to_string(),
            pw: B64.decode(pw).ok()?,
        })
    }

    /// Whether a session's user still has the password hash it logged in against
    /// (`current`: the user's hash in the htpasswd file now; None: the user is gone).
    pub fn still_valid(&self, claims: &Claims, current: Option<&str>) -> bool {
        let Some(h) = current else { return false };
        self.mac(b"pw", &[h.as_bytes()])
            .verify_truncated_left(&claims.pw)
            .is_ok()
            && claims.pw.len() == 16
    }

    /// `Set-Cookie` value for a session.
    pub fn set_cookie(&self, value: &str, secure: bool) -> String {
        format!(
            "{COOKIE}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
            self.ttl_secs,
            if secure { "; Secure" } else { "" }
        )
    }

    /// `Set-Cookie` value that removes the session.
    pub fn clear_cookie(secure: bool) -> String {
        format!(
            "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
            if secure { "; Secure" } else { "" }
        )
    }

    /// A new login form's CSRF pair: the nonce cookie's `Set-Cookie` value (scoped to
    /// `path`) and the token for the form's hidden field.
    pub fn csrf_issue(&self, path: &str, secure: bool) -> (String, String) {
        let mut n = [0u8; 16];
        getrandom::fill(&mut n).expect("OS random source");
        let nonce = B64.encode(n);
        let token = B64.encode(
            self.mac(b"csrf", &[nonce.as_bytes()])
                .finalize()
                .into_bytes(),
        );
        let cookie = format!(
            "{CSRF_COOKIE}={nonce}; Path={path}; Max-Age={CSRF_TTL_SECS}; HttpOnly; SameSite=Strict{}",
            if secure { "; Secure" } else { "" }
        );
        (cookie, token)
    }

    /// Whether a login POST's hidden-field `token` belongs to its nonce cookie.
    pub fn csrf_ok(&self, nonce: Option<&str>, token: Option<&str>) -> bool {
        let (Some(nonce), Some(token)) = (nonce, token) else {
            return false;
        };
        let Ok(tag) = B64.decode(token) else {
            return false;
        };
        !nonce.is_empty()
            && self
                .mac(b"csrf", &[nonce.as_bytes()])
                .verify_slice(&tag)
                .is_ok()
    }
}

/// The value of the session cookie among the request's `Cookie` headers.
pub fn find_cookie<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    find_named_cookie(cookie_headers, COOKIE)
}

/// The value of cookie `name` among the request's `Cookie` headers.
pub fn find_named_cookie<'a>(
    cookie_headers: impl Iterator<Item = &'a [u8]>,
    name: &str,
) -> Option<String> {
    for h in cookie_headers {
        let s = std::str::from_utf8(h).ok()?;
        for c in s.split(';') {
            if let Some((n, value)) = c.trim().split_once('=') {
                if n == name {
                    return Some(value.to_string());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Sessions {
        Sessions::new(vec![7u8; 32], 3600).unwrap()
    }

    const H: &str = "$2y$04$abcdefghijklmnopqrstuu5dCwGhOqvCHEe8bQ2vHnD6O4XMK6dW.";

    #[test]
    fn round_trip_and_expiry() {
        let v = s().issue("alice", H, 1000);
        let c = s().verify(&v, 1000).unwrap();
        assert_eq!((c.user.as_str(), c.expiry), ("alice", 4600));
        assert!(s().still_valid(&c, Some(H)));
        assert!(s().verify(&v, 4599).is_some());
        assert_eq!(s().verify(&v, 4600), None, "expired");
        // Each login is its own session.
        assert_ne!(
            s().verify(&s().issue("alice", H, 1000), 1000).unwrap().id,
            c.id
        );
    }

    #[test]
    fn a_changed_password_or_removed_user_ends_the_session() {
        let c = s().verify(&s().issue("alice", H, 1000), 1000).unwrap();
        assert!(!s().still_valid(&c, Some("$2y$04$other")));
        assert!(!s().still_valid(&c, None));
        let other = Sessions::new(vec![8u8; 32], 3600).unwrap();
        assert!(!other.still_valid(&c, Some(H)), "fingerprints are keyed");
    }

    #[test]
    fn tampering_and_other_keys_fail() {
        let v = s().issue("alice", H, 1000);
        let parts: Vec<&str> = v.split('.').collect();
        assert_eq!(parts.len(), 5);
        let with = |i: usize, x: &str| {
            let mut p = parts.clone();
            p[i] = x;
            p.join(".")
        };
        let admin = B64.encode("admin");
        for forged in [
            with(0, &admin),
            with(1, "99999999"),
            with(2, "AAAAAAAAAAAAAAAAAAAAAA"),
            with(3, "AAAAAAAAAAAAAAAAAAAAAA"),
        ] {
            assert_eq!(s().verify(&forged, 1000), None, "{forged}");
        }
        let other = Sessions::new(vec![8u8; 32], 3600).unwrap();
        assert_eq!(other.verify(&v, 1000), None);
        // The old three-part cookie of earlier versions is no longer a session.
        for junk in [
            "",
            "a.b",
            "YWxpY2U.4600.x",
            "a.1.c.d",
            "....",
            "a.1.c.d.e.f",
        ] {
            assert_eq!(s().verify(junk, 1000), None, "{junk}");
        }
    }

    #[test]
    fn csrf_tokens_belong_to_their_nonce() {
        let (cookie, token) = s().csrf_issue("/rayward/login", false);
        let nonce = cookie
            .strip_prefix("rayward_csrf=")
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        assert!(cookie.contains("HttpOnly; SameSite=Strict"));
        assert!(s().csrf_ok(Some(nonce), Some(&token)));
        let (cookie2, token2) = s().csrf_issue("/rayward/login", true);
        assert!(cookie2.ends_with("; Secure"));
        assert!(
            !s().csrf_ok(Some(nonce), Some(&token2)),
            "another form's token"
        );
        assert!(!s().csrf_ok(None, Some(&token)));
        assert!(!s().csrf_ok(Some(nonce), None));
        assert!(!s().csrf_ok(Some(""), Some(&token)));
        let other = Sessions::new(vec![8u8; 32], 3600).unwrap();
        assert!(!other.csrf_ok(Some(nonce), Some(&token)));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Sessions::new(vec![1; 31], 60).is_err());
    }

    #[test]
    fn cookie_attributes() {
        let c = s().set_cookie("v", true);
        assert_eq!(
            c,
            "rayward_session=v; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!s().set_cookie("v", false).contains("Secure"));
        assert_eq!(
            find_cookie([&b"a=1; rayward_session=xyz; b=2"[..]].into_iter()),
            Some("xyz".into())
        );
        assert_eq!(find_cookie([&b"a=1"[..]].into_iter()), None);
        assert_eq!(
            find_named_cookie([&b"rayward_csrf=n1"[..]].into_iter(), CSRF_COOKIE),
            Some("n1".into())
        );
    }
}
