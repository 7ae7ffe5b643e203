//! One module per subcommand.

pub mod audit;
pub mod certs;
pub mod harden;
pub mod rules;
pub mod webhook;
