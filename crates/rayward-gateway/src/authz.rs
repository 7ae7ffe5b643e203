//! Authorization: may this user use this route class, on this cluster? Roles map to sets
//! of classes: `viewer` (read), `submitter` (read, write), `admin` (read, write, admin) and
//! custom roles from the config. `denied` routes are granted to no role. Under
//! `[discovery]` a role holds only on the clusters its `clusters` patterns name
//! ([`crate::scope`]; none when it names none).

use crate::authn::Identity;
use crate::config::{builtin_role, Config};
use crate::route::Class;
use std::collections::HashMap;

/// The role maps are read on every request: foldhash, randomly seeded, not SipHash.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
pub struct Authz {
    /// role name → classes (built-in and custom roles).
    roles: Map<String, Vec<Class>>,
    /// role name → the clusters it reaches (`[roles.X] clusters`).
    clusters: Map<String, crate::scope::Clusters>,
    /// `[discovery]`: roles reach only the clusters they name.
    scoped: bool,
    /// principal (or bare local name) → role name, from `[users]`.
    users: rayward_auth::principal::Users,
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
    /// None of the identity's roles reaches the cluster: answered as if it did not exist.
    OutOfScope,
}

/// [`Decision`] without the role names (see [`Authz::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    OutOfScope,
}

impl Authz {
    /// From a validated config (every user's role exists).
    pub fn from_config(c: &Config) -> Authz {
        let mut roles: Map<String, Vec<Class>> = ["viewer", "submitter", "admin"]
            .into_iter()
            .map(|r| (r.to_string(), builtin_role(r).unwrap_or_default().to_vec()))
            .collect();
        let mut clusters = Map::default();
        for (name, rc) in &c.roles {
            if let Some(classes) = &rc.classes {
                roles.insert(
                    name.clone(),
                    classes.iter().filter_map(|s| Class::parse(s)).collect(),
                );
            }
            if let Some(cs) = &rc.clusters {
                clusters.insert(name.clone(), cs.clone());
            }
        }
        Authz {
            roles,
            clusters,
            scoped: c.discovery.is_some(),
            users: rayward_auth::principal::Users::new(&c.users),
        }
    }

    /// The `[users]` role of an identity ([`rayward_auth::principal::Users::role_of`]).
    pub fn role_of(&self, id: &Identity) -> Option<&str> {
        self.users.role_of(id)
    }

    /// The roles of an identity: its `[users]` role, then those its credential carries.
    pub fn roles_of(&self, id: &Identity) -> Vec<String> {
        self.users.roles_of(id)
    }

    /// Allowed when any of the identity's roles covers the class (on every cluster: the
    /// landing page, single-upstream mode).
    pub fn decide_identity(&self, id: &Identity, class: Class) -> Decision {
        self.decide_on(id, class, None)
    }

    /// Whether role `role` holds on cluster `namespace/name`.
    fn reaches(&self, role: &str, namespace: &str, name: &str) -> bool {
        !self.scoped
            || self
                .clusters
                .get(role)
                .is_some_and(|c| c.matches(namespace, name))
    }

    /// [`Authz::decide_on`] for roles already looked up ([`Authz::roles_of`]), without
    /// building the role string: the gateway's hot path looks the roles up once per
    /// request and needs the string only for a denial's message.
    pub fn verdict(&self, roles: &[String], class: Class, target: Option<(&str, &str)>) -> Verdict {
        if roles.is_empty() {
            return Verdict::Deny;
        }
        let reaching = roles
            .iter()
            .filter(|r| target.is_none_or(|(ns, name)| self.reaches(r, ns, name)));
        let mut any = false;
        for r in reaching {
            any = true;
            if class != Class::Denied && self.roles.get(r).is_some_and(|cs| cs.contains(&class)) {
                return Verdict::Allow;
            }
        }
        if any {
            Verdict::Deny
        } else {
            Verdict::OutOfScope
        }
    }

    /// As [`Authz::decide_identity`], on cluster `target` (`namespace`, `name`): only the
    /// identity's roles that reach it count; [`Decision::OutOfScope`] when none does.
    pub fn decide_on(&self, id: &Identity, class: Class, target: Option<(&str, &str)>) -> Decision {
        let mut roles = self.roles_of(id);
        if roles.is_empty() {
            return Decision::Deny { role: None };
        }
        if let Some((ns, name)) = target {
            roles.retain(|r| self.reaches(r, ns, name));
            if roles.is_empty() {
                return Decision::OutOfScope;
            }
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
    use crate::authn::Source;

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
"oidc:ov" = "viewer"
"htpasswd:h" = "admin"
"token:t" = "viewer"
[roles.ops]
classes = ["read", "admin"]
"#,
            "t",
        )
        .unwrap();
        Authz::from_config(&c)
    }

    fn local(u: &str) -> Identity {
        Identity::new(Source::Htpasswd, u)
    }

    fn allowed(z: &Authz, u: &str, c: Class) -> bool {
        matches!(z.decide_identity(&local(u), c), Decision::Allow { .. })
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
            ("h", true, true, true),
        ] {
            assert_eq!(allowed(&z, user, Read), read, "{user} read");
            assert_eq!(allowed(&z, user, Write), write, "{user} write");
            assert_eq!(allowed(&z, user, Admin), admin, "{user} admin");
            assert!(!allowed(&z, user, Denied), "{user} denied");
        }
        assert_eq!(
            z.decide_identity(&local("v"), Write),
            Decision::Deny {
                role: Some("viewer".into())
            }
        );
    }

    #[test]
    fn under_discovery_roles_hold_only_on_their_clusters() {
        let c = Config::parse(
            r#"
listen = "127.0.0.1:1"
auth = { htpasswd = "/x" }
[discovery]
namespaces = ["team-a", "team-b"]
[users]
v = "viewer"
s = "submitter"
w = "team-b-writer"
n = "admin"
[roles.viewer]
clusters = ["*/*"]
[roles.submitter]
clusters = ["team-a/*"]
[roles.team-b-writer]
classes = ["read", "write"]
clusters = ["team-b/x"]
"#,
            "t",
        )
        .unwrap();
        let z = Authz::from_config(&c);
        let on = |u: &str, class, ns, name| z.decide_on(&local(u), class, Some((ns, name)));
        use Class::*;
        assert!(matches!(
            on("v", Read, "team-b", "y"),
            Decision::Allow { .. }
        ));
        assert_eq!(
            on("v", Write, "team-b", "y"),
            Decision::Deny {
                role: Some("viewer".into())
            }
        );
        assert!(matches!(
            on("s", Write, "team-a", "q"),
            Decision::Allow { .. }
        ));
        assert_eq!(on("s", Read, "team-b", "x"), Decision::OutOfScope);
        assert!(matches!(
            on("w", Write, "team-b", "x"),
            Decision::Allow { .. }
        ));
        assert_eq!(on("w", Read, "team-b", "xx"), Decision::OutOfScope);
        assert_eq!(on("w", Read, "team-a", "x"), Decision::OutOfScope);
        // A role naming no clusters holds on none under [discovery] ...
        assert_eq!(on("n", Read, "team-a", "x"), Decision::OutOfScope);
        // ... and no cluster named (the landing page itself): classes only.
        assert!(matches!(
            z.decide_identity(&local("n"), Admin),
            Decision::Allow { .. }
        ));
        assert_eq!(
            on("nobody", Read, "team-a", "x"),
            Decision::Deny { role: None }
        );
        // The hot path's verdict (roles looked up once) says what decide_on says.
        for u in ["v", "s", "w", "n", "nobody"] {
            for class in [Read, Write, Admin, Denied] {
                for target in [
                    None,
                    Some(("team-a", "x")),
                    Some(("team-b", "x")),
                    Some(("team-b", "y")),
                    Some(("team-b", "xx")),
                ] {
                    let id = local(u);
                    let want = match z.decide_on(&id, class, target) {
                        Decision::Allow { .. } => Verdict::Allow,
                        Decision::Deny { .. } => Verdict::Deny,
                        Decision::OutOfScope => Verdict::OutOfScope,
                    };
                    let got = z.verdict(&z.roles_of(&id), class, target);
                    assert_eq!(got, want, "{u} {class:?} {target:?}");
                }
            }
        }
    }

    #[test]
    fn prefixed_keys_name_one_source_and_bare_keys_the_local_ones() {
        let z = authz();
        let id = |s, n| Identity::new(s, n);
        assert_eq!(z.role_of(&id(Source::Token, "s")), Some("submitter"));
        assert_eq!(z.role_of(&id(Source::Token, "t")), Some("viewer"));
        assert_eq!(z.role_of(&id(Source::Htpasswd, "t")), None);
        assert_eq!(z.role_of(&id(Source::Token, "h")), None);
        assert_eq!(z.role_of(&id(Source::Oidc, "ov")), Some("viewer"));
        assert_eq!(z.role_of(&id(Source::Htpasswd, "ov")), None);
        assert_eq!(z.role_of(&id(Source::Kubernetes, "a")), None);
    }

    #[test]
    fn credential_roles_add_to_the_users_table() {
        let z = authz();
        let jwt = |user: &str, roles: &[&str]| {
            let mut id = Identity::new(Source::Oidc, user);
            id.roles = roles.iter().map(|r| r.to_string()).collect();
            id
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
        // Any role covering the class allows; the principal's table role comes first.
        assert_eq!(
            z.decide_identity(&jwt("ov", &["ops"]), Class::Admin),
            Decision::Allow {
                role: "viewer,ops".into()
            }
        );
        // An OIDC subject named like a local user gets nothing of that user's entry
        // (the issue's finding: sub "a" was admin).
        assert_eq!(
            z.decide_identity(&jwt("a", &[]), Class::Read),
            Decision::Deny { role: None }
        );
        assert_eq!(
            z.decide_identity(&jwt("s", &["viewer"]), Class::Write),
            Decision::Deny {
                role: Some("viewer".into())
            }
        );
        assert!(matches!(
            z.decide_identity(&jwt("v", &["ops", "admin"]), Class::Denied),
            Decision::Deny { .. }
        ));
    }
}
