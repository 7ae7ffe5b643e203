//! Per-user bearer tokens, stored only as SHA-256 digests with an optional expiry, so the
//! config file never holds a usable secret. Tokens are long random strings, so a plain
//! (unsalted, fast) digest is enough: there is nothing to brute-force.

use crate::config::TokenEntry;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
struct Stored {
    user: String,
    expires: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    by_digest: HashMap<[u8; 32], Stored>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenOutcome {
    Valid(String),
    Expired(String),
    Unknown,
}

/// Lower-case hex SHA-256 of a token, the form the config stores.
pub fn digest_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TokenStore {
    /// Builds the store from validated config entries.
    pub fn new(entries: &[TokenEntry]) -> Result<TokenStore, String> {
        let mut by_digest = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let d = unhex(&e.sha256.to_ascii_lowercase())
                .ok_or_else(|| format!("auth.tokens[{i}]: sha256 must be 64 hex digits"))?;
            let expires = e
                .expires
                .as_deref()
                .map(|s| {
                    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .map_err(|err| format!("auth.tokens[{i}].expires: {err}"))
                })
                .transpose()?;
            if by_digest
                .insert(
                    d,
                    Stored {
                        user: e.user.clone(),
                        expires,
                    },
                )
                .is_some()
            {
                return Err(format!("auth.tokens[{i}]: the same token appears twice"));
            }
        }
        Ok(TokenStore { by_digest })
    }

    pub fn check(&self, token: &str, now: OffsetDateTime) -> TokenOutcome {
        let d: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match self.by_digest.get(&d) {
            None => TokenOutcome::Unknown,
            Some(s) if s.expires.is_some_and(|e| now >= e) => TokenOutcome::Expired(s.user.clone()),
            Some(s) => TokenOutcome::Valid(s.user.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_expired_unknown() {
        let entries = vec![
            TokenEntry {
                user: "ci".into(),
                sha256: digest_hex("tok-ci"),
                expires: Some("2030-01-01T00:00:00Z".into()),
            },
            TokenEntry {
                user: "old".into(),
                sha256: digest_hex("tok-old").to_ascii_uppercase(),
                expires: Some("2020-01-01T00:00:00Z".into()),
            },
        ];
        let s = TokenStore::new(&entries).unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(); // 2027
        assert_eq!(s.check("tok-ci", now), TokenOutcome::Valid("ci".into()));
        assert_eq!(s.check("tok-old", now), TokenOutcome::Expired("old".into()));
        assert_eq!(s.check("tok-CI", now), TokenOutcome::Unknown);
        let later = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap(); // 2030
        assert_eq!(s.check("tok-ci", later), TokenOutcome::Expired("ci".into()));
    }

    #[test]
    fn digest_matches_sha256sum() {
        // printf %s abc | sha256sum
        assert_eq!(
            digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
