//! The one test binary of rayward-install.

mod check;
mod discovery;
mod objects;
