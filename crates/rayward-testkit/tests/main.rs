//! All integration tests of `rayward-testkit` in one binary: one link instead of one per file keeps
//! the test build small enough for CI's disk (each binary statically links every dependency).
//! Each file below is one module; run one with `cargo test -p rayward-testkit --test rayward-testkit -- MODULE::`.
mod crd_schemas;
mod two_heads;
