//! Guide §2-§3: namespace isolation and resource quotas.

mod default_namespace;
mod namespace_without_quota;
mod quota_without_gpu_cap;

pub use namespace_without_quota::NamespaceWithoutQuota;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[
    &default_namespace::DefaultNamespace,
    &namespace_without_quota::NamespaceWithoutQuota,
    &quota_without_gpu_cap::QuotaWithoutGpuCap,
];
