//! Principals in the config: the keys of `[users]`. Identities are namespaced by the source
//! that vouched for them (`htpasswd:alice`, `token:ci`, `oidc:alice`,
//! `k8s:system:serviceaccount:team-a:ci`), so an OIDC subject named like a local user never
//! gets that user's roles.
//!
//! Compatibility: a bare key (`alice = "viewer"`, as configs before namespacing wrote)
//! still names a user of the gateway's own databases, the htpasswd file or the `[[auth.tokens]]`
//! list, and nothing else. An OIDC or Kubernetes principal must be written with its prefix.
//!
//! Shared by every server with a `[users]` table (the gateway, the history server).

use crate::{Identity, Source};
use std::collections::{BTreeMap, HashMap};

/// The `[users]` table: principal (or bare local name) → role name.
#[derive(Debug, Clone, Default)]
pub struct Users(HashMap<String, String, foldhash::fast::RandomState>);

impl Users {
    pub fn new(table: &BTreeMap<String, String>) -> Users {
        Users(table.clone().into_iter().collect())
    }

    /// The role of an identity: its principal's (`htpasswd:alice`), else, for the server's
    /// own user databases only, its bare name's (`alice`). An OIDC `sub` equal to a local
    /// user's name therefore gets nothing from that user's entry.
    pub fn role_of(&self, id: &Identity) -> Option<&str> {
        self.0
            .get(&id.user)
            .or_else(|| id.source.is_local().then(|| self.0.get(&id.name)).flatten())
            .map(String::as_str)
    }

    /// The roles of an identity: its `[users]` role, then those its credential carries.
    pub fn roles_of(&self, id: &Identity) -> Vec<String> {
        let mut out: Vec<String> = self.role_of(id).map(str::to_string).into_iter().collect();
        for r in &id.roles {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }
}

/// Checks a `[users]` key: a bare name without `:`, or `SOURCE:NAME` with a known source.
pub fn check_users_key(key: &str) -> Result<(), String> {
    match key.split_once(':') {
        None if key.is_empty() => Err("empty user name".into()),
        None => Ok(()),
        Some((prefix, name)) => {
            if Source::parse(prefix).is_none() {
                return Err(format!(
                    "unknown source {prefix:?}: write htpasswd:NAME, token:NAME, oidc:NAME or k8s:NAME"
                ));
            }
            if name.is_empty() {
                return Err("empty name after the source".into());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in [
            "alice",
            "htpasswd:alice",
            "token:ci",
            "oidc:sam@corp.test",
            "k8s:system:serviceaccount:team-a:ci",
        ] {
            assert_eq!(check_users_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "ldap:x", "oidc:", "system:serviceaccount:a:b"] {
            assert!(check_users_key(bad).is_err(), "{bad}");
        }
    }
}
