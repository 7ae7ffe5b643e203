//! Helpers shared by several rules.

pub mod credentials;
pub mod embedded;
pub mod image;
pub mod network;
pub mod pod_security;
pub mod rbac;
pub mod tenancy;
pub mod version;
