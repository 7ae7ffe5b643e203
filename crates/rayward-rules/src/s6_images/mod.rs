//! Guide §6: image security and Ray versions.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
