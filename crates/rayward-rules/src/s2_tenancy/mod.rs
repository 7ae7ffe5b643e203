//! Guide §2-§3: namespace isolation and resource quotas.

mod namespace_without_quota;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[&namespace_without_quota::NamespaceWithoutQuota];
