//! Authorization: may this user use this route class? Roles map to sets of classes:
//! `viewer` (read), `submitter` (read, write), `admin` (read, write, admin) and custom
//! roles from the config. `denied` routes are granted to no role.

use crate::authn::Identity;
use crate::config::{builtin_role, Config};
use crate::route::Class;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Authz {
    /// role name → classes (built-in and custom roles).
    roles: HashMap<String, Vec<Class>>,
    /// user → role name, from `[users]`.
    users: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        role: String,
    },
    /// Authenticated, but the role does not cover the class (or the user has no role).
    Deny {
        role: Option<String>,
    },
}

impl Authz {
    /// From a validated config (every user's role exists).
    pub fn from_config(c: &Config) -> Authz {
        let mut roles: HashMap<String, Vec<Class>> = ["viewer", "submitter", "admin"]
            .into_iter()
            .map(|r| (r.to_string(), builtin_role(r).unwrap_or_default().to_vec()))
            .collect();
        for (name, rc) in &c.roles {
            roles.insert(
                name.clone(),
                rc.classes.iter().filter_map(|s| Class::parse(s)).collect(),
            );
        }
        Authz {
            roles,
            users: c.users.clone().into_iter().collect(),
        }
    }

    pub fn role_of(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// The roles of an identity: its `[users]` role, then those its credential carries.
    pub fn roles_of(&self, id: &Identity) -> Vec<String> {
        let mut out: Vec<String> = self
            .role_of(&id.user)
            .map(str::to_string)
            .into_iter()
            .collect();
        for r in &id.roles {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }

    pub fn decide(&self, user: &str, class: Class) -> Decision {
        self.decide_identity(&Identity::user(user), class)
    }

    /// Allowed when any of the identity's roles covers the class.
    pub fn decide_identity(&self, id: &Identity, class: Class) -> Decision {
        let roles = self.roles_of(id);
        if roles.is_empty() {
            return Decision::Deny { role: None };
        }
        let allowed = class != Class::Denied
            && roles
                .iter()
                .any(|r| self.roles.get(r).is_some_and(|cs| cs.contains(&class)));
        let role = roles.join(",");
        if allowed {
            Decision::Allow { role }
        } else {
            Decision::Deny { role: Some(role) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authz() -> Authz {
        let c = Config::parse(
            r#"
listen = "127.0.0.1:1"
upstream = "http://127.0.0.1:2"
ray_token = { env = "T" }
auth = { htpasswd = "/x" }
[users]
v = "viewer"
s = "submitter"
a = "admin"
o = "ops"
[roles.ops]
classes = ["read", "admin"]
"#,
            "t",
        )
        .unwrap();
        Authz::from_config(&c)
    }

    fn allowed(z: &Authz, u: &str, c: Class) -> bool {
        matches!(z.decide(u, c), Decision::Allow { .. })
    }

    #[test]
    fn role_matrix() {
        let z = authz();
        use Class::*;
        for (user, read, write, admin) in [
            ("v", true, false, false),
            ("s", true, true, false),
            ("a", true, true, true),
            ("o", true, false, true),
            ("nobody", false, false, false),
        ] {
            assert_eq!(allowed(&z, user, Read), read, "{user} read");
            assert_eq!(allowed(&z, user, Write), write, "{user} write");
            assert_eq!(allowed(&z, user, Admin), admin, "{user} admin");
            assert!(!allowed(&z, user, Denied), "{user} denied");
        }
        assert_eq!(
            z.decide("v", Write),
            Decision::Deny {
                role: Some("viewer".into())
            }
        );
    }

    #[test]
    fn credential_roles_add_to_the_users_table() {
        let z = authz();
        let jwt = |user: &str, roles: &[&str]| Identity {
            user: user.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        // An OIDC user absent from [users] gets exactly its mapped roles.
        assert!(matches!(
            z.decide_identity(&jwt("x@corp", &["viewer"]), Class::Read),
            Decision::Allow { .. }
        ));
        assert_eq!(
            z.decide_identity(&jwt("x@corp", &["viewer"]), Class::Write),
            Decision::Deny {
                role: Some("viewer".into())
            }
        );
        assert_eq!(
            z.decide_identity(&jwt("x@corp", &[]), Class::Read),
            Decision::Deny { role: None }
        );
        // Any role covering the class allows; the user's table role comes first.
        assert_eq!(
            z.decide_identity(&jwt("v", &["ops"]), Class::Admin),
            Decision::Allow {
                role: "viewer,ops".into()
            }
        );
        assert!(matches!(
            z.decide_identity(&jwt("v", &["ops", "admin"]), Class::Denied),
            Decision::Deny { .. }
        ));
    }
}
