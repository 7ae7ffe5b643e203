//! Guide §7: requests and limits.

mod missing_resources;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[&missing_resources::MissingResources];
