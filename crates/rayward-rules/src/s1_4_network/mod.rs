//! Guide §1.4: NetworkPolicies for Ray pods.

mod network_policy_open_ray_ports;
mod network_policy_selects_no_ray_pod;
mod ray_pods_without_network_policy;
mod running_ray_pods_unselected;

pub use ray_pods_without_network_policy::RayPodsWithoutNetworkPolicy;

use crate::Rule;

pub(crate) const RULES: &[&dyn Rule] = &[
    &ray_pods_without_network_policy::RayPodsWithoutNetworkPolicy,
    &network_policy_selects_no_ray_pod::NetworkPolicySelectsNoRayPod,
    &network_policy_open_ray_ports::NetworkPolicyOpenRayPorts,
    &running_ray_pods_unselected::RunningRayPodsUnselected,
];
