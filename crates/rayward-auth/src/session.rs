//! Browser sessions: after a login through the gateway's form, the browser holds a
//! signed cookie `rayward_session=<user>.<expiry>.<mac>` (HMAC-SHA256 under a key from a
//! file). Any replica with the same key file accepts it, so replicas need no shared
//! session store. HttpOnly (no script reads it), SameSite=Strict (no other site's page
//! can send it), Secure when the gateway serves TLS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

pub const COOKIE: &str = "rayward_session";

pub struct Sessions {
    key: Vec<u8>,
    ttl_secs: u64,
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

    fn mac(&self, user_b64: &str, expiry: u64) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        m.update(user_b64.as_bytes());
        m.update(b".");
        m.update(expiry.to_string().as_bytes());
        m
    }

    /// A cookie value for `user`, valid until `now + ttl`.
    pub fn issue(&self, user: &str, now_unix: u64) -> String {
        let u = B64.encode(user);
        let expiry = now_unix + self.ttl_secs;
        let tag = self.mac(&u, expiry).finalize().into_bytes();
        format!("{u}.{expiry}.{}", B64.encode(tag))
    }

    /// The user of a valid, unexpired cookie value.
    pub fn verify(&self, value: &str, now_unix: u64) -> Option<String> {
        let mut parts = value.split('.');
        let (u, exp, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expiry: u64 = exp.parse().ok()?;
        let tag = B64.decode(tag).ok()?;
        self.mac(u, expiry).verify_slice(&tag).ok()?;
        if now_unix >= expiry {
            return None;
        }
        String::from_utf8(B64.decode(u).ok()?).ok()
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
}

/// The value of the session cookie among the request's `Cookie` headers.
pub fn find_cookie<'a>(cookie_headers: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    for h in cookie_headers {
        let s = std::str::from_utf8(h).ok()?;
        for c in s.split(';') {
            if let Some((name, value)) = c.trim().split_once('=') {
                if name == COOKIE {
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

    #[test]
    fn round_trip_and_expiry() {
        let v = s().issue("alice", 1000);
        assert_eq!(s().verify(&v, 1000), Some("alice".into()));
        assert_eq!(s().verify(&v, 4599), Some("alice".into()));
        assert_eq!(s().verify(&v, 4600), None, "expired");
    }

    #[test]
    fn tampering_and_other_keys_fail() {
        let v = s().issue("alice", 1000);
        let (u, rest) = v.split_once('.').unwrap();
        assert_ne!(u, B64.encode("admin"));
        // Another user name with the same tag.
        assert_eq!(
            s().verify(&format!("{}.{rest}", B64.encode("admin")), 1000),
            None
        );
        // A later expiry with the same tag.
        let parts: Vec<&str> = v.split('.').collect();
        assert_eq!(
            s().verify(&format!("{}.99999999.{}", parts[0], parts[2]), 1000),
            None
        );
        let other = Sessions::new(vec![8u8; 32], 3600).unwrap();
        assert_eq!(other.verify(&v, 1000), None);
        for junk in ["", "a.b", "a.1.c.d", "..", "YWxpY2U.x.y"] {
            assert_eq!(s().verify(junk, 1000), None, "{junk}");
        }
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
    }
}
