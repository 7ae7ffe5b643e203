//! Guide §1.6 and §9: RayJob submission and one job per cluster.

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[];
