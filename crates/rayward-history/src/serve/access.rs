//! Authorization by namespace: each role lists the namespaces it may read, by name or by
//! label selector over the labels the config gives (`[namespace_labels]`). A user reads the
//! union of their roles' namespaces; everything else is answered exactly as if it did not
//! exist (404), so no answer confirms that a cluster is there.

use super::config::ServeConfig;
use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
}

/// A Kubernetes equality-based label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, joined
/// by commas (all must hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Req>);

fn check_key(k: &str) -> Result<(), String> {
    let ok = !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("{k:?} is not a label key"))
    }
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim) {
            let r = if let Some((k, v)) = part.split_once("!=") {
                Req::Ne(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Req::Eq(k.trim().into(), v.trim().into())
            } else if let Some(k) = part.strip_prefix('!') {
                Req::NotExists(k.trim().into())
            } else {
                Req::Exists(part.into())
            };
            let (Req::Eq(k, _) | Req::Ne(k, _) | Req::Exists(k) | Req::NotExists(k)) = &r;
            check_key(k)?;
            reqs.push(r);
        }
        Ok(Selector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => labels.get(k) == Some(v),
            Req::Ne(k, v) => labels.get(k) != Some(v),
            Req::Exists(k) => labels.contains_key(k),
            Req::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// What one user may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readable {
    All,
    Some(Vec<String>),
}

impl Readable {
    pub fn allows(&self, ns: &str) -> bool {
        match self {
            Readable::All => true,
            Readable::Some(v) => v.iter().any(|n| n == ns),
        }
    }

    /// For the catalog: `None` lists every namespace.
    pub fn as_filter(&self) -> Option<&[String]> {
        match self {
            Readable::All => None,
            Readable::Some(v) => Some(v),
        }
    }
}

/// Roles → namespaces, resolved once at start.
#[derive(Debug, Clone, Default)]
pub struct Access {
    roles: BTreeMap<String, Readable>,
}

impl Access {
    /// From a validated config.
    pub fn from_config(c: &ServeConfig) -> Access {
        let mut roles = BTreeMap::new();
        for (name, r) in &c.roles {
            if r.namespaces.iter().any(|n| n == "*") {
                roles.insert(name.clone(), Readable::All);
                continue;
            }
            let mut ns: Vec<String> = r.namespaces.clone();
            for s in &r.namespace_selectors {
                let Ok(sel) = Selector::parse(s) else {
                    continue;
                };
                for (n, labels) in &c.namespace_labels {
                    if sel.matches(labels) && !ns.contains(n) {
                        ns.push(n.clone());
                    }
                }
            }
            ns.sort();
            roles.insert(name.clone(), Readable::Some(ns));
        }
        Access { roles }
    }

    /// The namespaces readable with any of `roles` (unknown roles grant nothing).
    pub fn readable(&self, roles: &[String]) -> Readable {
        let mut out = Vec::new();
        for r in roles {
            match self.roles.get(r) {
                Some(Readable::All) => return Readable::All,
                Some(Readable::Some(v)) => {
                    for n in v {
                        if !out.contains(n) {
                            out.push(n.clone());
                        }
                    }
                }
                None => {}
            }
        }
        out.sort();
        Readable::Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let l: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
        for (s, want) in [
            ("team=a", true),
            ("team==a", true),
            ("team!=a", false),
            ("team", true),
            ("!team", false),
            ("team=a,env", false),
            ("team=a, !env", true),
        ] {
            assert_eq!(Selector::parse(s).unwrap().matches(&l), want, "{s}");
        }
        for bad in ["", "=a", "te am=a", "a,,b"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_resolve_to_namespaces() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("index.html"), "x").unwrap();
        let c = ServeConfig::parse(
            &format!(
                "listen = \"127.0.0.1:0\"\nstore = \"/s\"\ndashboard_dir = {:?}\n[auth]\nhtpasswd = \"/h\"\n\
[roles.a]\nnamespaces = [\"team-a\"]\n[roles.ml]\nnamespace_selectors = [\"dept=ml\"]\n[roles.all]\nnamespaces = [\"*\"]\n\
[namespace_labels]\nteam-b = {{ dept = \"ml\" }}\nteam-c = {{ dept = \"ml\" }}\nteam-d = {{ dept = \"web\" }}\n",
                d.path().display().to_string()
            ),
            "h",
        )
        .unwrap();
        let a = Access::from_config(&c);
        assert_eq!(
            a.readable(&["a".into(), "ml".into()]),
            Readable::Some(vec!["team-a".into(), "team-b".into(), "team-c".into()])
        );
        assert_eq!(a.readable(&["nope".into()]), Readable::Some(vec![]));
        assert_eq!(a.readable(&["ml".into(), "all".into()]), Readable::All);
        assert!(!a.readable(&["ml".into()]).allows("team-d"));
    }
}
