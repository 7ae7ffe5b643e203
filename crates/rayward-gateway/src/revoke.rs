//! Revoked sessions, in memory and shared through Redis: [`rayward_auth::shared::revocations`]
//! (the same code serves `rayward history serve`).

pub use rayward_auth::shared::revocations::*;
