//! All integration tests of `rayward-harden` in one binary: one link instead of one per file keeps
//! the test build small enough for CI's disk (each binary statically links every dependency).
//! Each file below is one module; run one with `cargo test -p rayward-harden --test rayward-harden -- MODULE::`.
mod corpus;
mod crd_schema;
mod diff_scale;
mod harden;
mod hostile;
mod names;
mod workload_identity;
