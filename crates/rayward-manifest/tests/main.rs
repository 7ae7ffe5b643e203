//! All integration tests of `rayward-manifest` in one binary: one link instead of one per file keeps
//! the test build small enough for CI's disk (each binary statically links every dependency).
//! Each file below is one module; run one with `cargo test -p rayward-manifest --test rayward-manifest -- MODULE::`.
mod emit_corpus;
mod fast_differential;
mod fast_subset;
mod kubectl_differential;
