//! Helpers shared by several rules.

pub mod image;
pub mod network;
pub mod quantity;
pub mod rbac;
pub mod tenancy;
pub mod version;
