//! Helpers shared by several rules.

pub mod credentials;
pub mod image;
pub mod pod_security;
pub mod quantity;
pub mod version;
