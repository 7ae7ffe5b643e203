//! One module per subcommand.

pub mod audit;
pub mod certs;
pub mod gateway;
pub mod harden;
mod output;
pub mod probe;
pub mod rules;
pub mod watch;
pub mod webhook;
