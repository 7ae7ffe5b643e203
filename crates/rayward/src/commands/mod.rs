//! One module per subcommand.

pub mod audit;
pub mod certs;
pub mod check;
pub mod gateway;
pub mod harden;
pub mod history;
pub mod install;
mod output;
pub mod probe;
pub mod rules;
pub mod watch;
pub mod webhook;
