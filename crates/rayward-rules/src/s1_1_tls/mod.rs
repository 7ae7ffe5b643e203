//! Guide §1.1: TLS between Ray nodes.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
