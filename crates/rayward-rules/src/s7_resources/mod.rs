//! Guide §7: requests and limits.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
