//! Guide §4: service accounts and RBAC.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
