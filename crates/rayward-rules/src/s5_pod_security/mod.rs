//! Guide §5: pod security (privilege, root, host namespaces, hostPath, capabilities, seccomp).

mod capabilities_not_dropped;
mod dangerous_capabilities;
mod host_namespaces;
mod host_path_volume;
mod namespace_without_pod_security;
mod privilege_escalation_allowed;
mod privileged_container;
mod ray_pod_older_than_owner;
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
    &namespace_without_pod_security::NamespaceWithoutPodSecurity,
    &ray_pod_older_than_owner::RayPodOlderThanOwner,
];
