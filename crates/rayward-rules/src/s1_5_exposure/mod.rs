//! Guide §1.2, §1.3, §1.5, §1.6: Ray's ports, dashboard and services not exposed; authentication.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
