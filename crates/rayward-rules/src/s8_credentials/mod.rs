//! Guide §8: no plaintext cloud credentials.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
