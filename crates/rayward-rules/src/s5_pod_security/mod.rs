//! Guide §5: pod security (privilege, root, host namespaces, hostPath, capabilities, seccomp).

mod capabilities_not_dropped;
mod privilege_escalation_allowed;
mod privileged_container;
mod runs_as_root;
mod seccomp_not_set;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[
    &privileged_container::PrivilegedContainer,
    &privilege_escalation_allowed::PrivilegeEscalationAllowed,
    &runs_as_root::RunsAsRoot,
    &capabilities_not_dropped::CapabilitiesNotDropped,
    &seccomp_not_set::SeccompNotSet,
];
