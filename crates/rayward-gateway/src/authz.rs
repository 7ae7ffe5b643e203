//! Authorization: may this user use this route class? Roles map to sets of classes:
//! `viewer` (read), `submitter` (read, write), `admin` (read, write, admin) and custom
//! roles from the config. `denied` routes are granted to no role.

use crate::config::{builtin_role, Config};
use crate::route::Class;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Authz {
    /// user → (role name, classes)
    users: HashMap<String, (String, Vec<Class>)>,
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
        let users = c
            .users
            .iter()
            .map(|(user, role)| {
                let classes = builtin_role(role)
                    .map(<[Class]>::to_vec)
                    .unwrap_or_else(|| {
                        c.roles[role]
                            .classes
                            .iter()
                            .filter_map(|s| Class::parse(s))
                            .collect()
                    });
                (user.clone(), (role.clone(), classes))
            })
            .collect();
        Authz { users }
    }

    pub fn role_of(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(|(r, _)| r.as_str())
    }

    pub fn decide(&self, user: &str, class: Class) -> Decision {
        match self.users.get(user) {
            None => Decision::Deny { role: None },
            Some((role, classes)) => {
                if class != Class::Denied && classes.contains(&class) {
                    Decision::Allow { role: role.clone() }
                } else {
                    Decision::Deny {
                        role: Some(role.clone()),
                    }
                }
            }
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
}
