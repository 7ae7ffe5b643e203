//! Principals in the config: the keys of `[users]`. Identities are namespaced by the source
//! that vouched for them (`htpasswd:alice`, `token:ci`, `oidc:alice`,
//! `k8s:system:serviceaccount:team-a:ci`), so an OIDC subject named like a local user never
//! gets that user's roles.
//!
//! Compatibility: a bare key (`alice = "viewer"`, as configs before namespacing wrote)
//! still names a user of the gateway's own databases, the htpasswd file or the `[[auth.tokens]]`
//! list, and nothing else. An OIDC or Kubernetes principal must be written with its prefix.

use crate::authn::Source;

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
