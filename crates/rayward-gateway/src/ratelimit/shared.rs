//! Failed-login counters shared through Redis: [`rayward_auth::shared::logins`] (the same
//! code serves `rayward history serve`).

pub use rayward_auth::shared::logins::*;
