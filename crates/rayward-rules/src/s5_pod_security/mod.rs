//! Guide §5: pod security (privilege, root, host namespaces, hostPath, capabilities, seccomp).

mod privileged_container;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[&privileged_container::PrivilegedContainer];
