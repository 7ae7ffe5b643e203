//! The one test binary of rayward-install.

mod objects;
