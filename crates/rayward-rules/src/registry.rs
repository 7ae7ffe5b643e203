//! The catalog: every rule, by the guide's sections. Adding a rule is one file in its
//! section's folder and one line in that section's `RULES`.

use crate::Rule;

/// Every rule, ordered by id.
pub fn all() -> Vec<&'static dyn Rule> {
    let mut rules: Vec<&'static dyn Rule> = [
        crate::s1_1_tls::RULES,
        crate::s1_4_network::RULES,
        crate::s1_5_exposure::RULES,
        crate::s2_tenancy::RULES,
        crate::s4_rbac::RULES,
        crate::s5_pod_security::RULES,
        crate::s6_images::RULES,
        crate::s7_resources::RULES,
        crate::s8_credentials::RULES,
        crate::s9_jobs::RULES,
    ]
    .concat();
    rules.sort_by_key(|r| r.meta().id);
    rules
}

/// The rule with this id or name.
pub fn find(token: &str) -> Option<&'static dyn Rule> {
    all().into_iter().find(|r| r.meta().is(token))
}

/// The ids of the rules whose findings rest on other objects of the run
/// ([`Scope::JudgesOthers`](crate::Scope)): the admission webhook, which sees one object,
/// leaves them to `rayward audit`.
pub fn judging_others() -> Vec<&'static str> {
    all()
        .into_iter()
        .map(|r| r.meta())
        .filter(|m| m.scope == crate::Scope::JudgesOthers)
        .map(|m| m.id)
        .collect()
}

/// The rules that have a fix, with it, ordered by id (the order harden applies them in).
pub fn fixable() -> Vec<(&'static dyn Rule, &'static dyn crate::fix::Fix)> {
    all()
        .into_iter()
        .filter_map(|r| r.fixer().map(|f| (r, f)))
        .collect()
}
