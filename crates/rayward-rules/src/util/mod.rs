//! Helpers shared by several rules.

pub mod credentials;
pub mod image;
pub mod quantity;
pub mod version;
