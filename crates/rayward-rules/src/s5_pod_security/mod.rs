//! Guide §5: pod security (privilege, root, host namespaces, hostPath, capabilities, seccomp).

mod capabilities_not_dropped;
mod dangerous_capabilities;
mod host_namespaces;
mod host_path_volume;
mod privilege_escalation_allowed;
mod privileged_container;
mod runs_as_root;
mod seccomp_not_set;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[
    &privileged_container::PrivilegedContainer,
    &privilege_escalation_allowed::PrivilegeEscalationAllowed,
    &runs_as_root::RunsAsRoot,
    &host_namespaces::HostNamespaces,
    &host_path_volume::HostPathVolume,
    &dangerous_capabilities::DangerousCapabilities,
    &capabilities_not_dropped::CapabilitiesNotDropped,
    &seccomp_not_set::SeccompNotSet,
];
