//! Guide §1.4: NetworkPolicies for Ray pods.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
