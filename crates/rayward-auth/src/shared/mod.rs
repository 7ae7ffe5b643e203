//! What replicas of one server share through Redis (`redis://host:port`), with this
//! replica's memory as the fallback when Redis does not answer: failed-login counters and
//! lockouts ([`logins`]) and logged-out sessions ([`revocations`]). The gateway and
//! `rayward history serve` use the same code, each with its own key prefixes.

pub mod logins;
pub mod revocations;
mod store;

pub use logins::{LockState, LoginLimiter};
pub use revocations::Revocations;
pub use store::connect;
