//! Integration tests of rayward-history: the collector on real sockets and a real local
//! store (one test binary per crate; each file is a module).

mod collect;
mod common;
