//! All integration tests of `rayward-rules` in one binary: one link instead of one per file keeps
//! the test build small enough for CI's disk (each binary statically links every dependency).
//! Each file below is one module; run one with `cargo test -p rayward-rules --test rayward-rules -- MODULE::`.
mod fixes;
mod fixtures;
mod fuzz_seeds;
