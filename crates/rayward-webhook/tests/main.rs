//! All integration tests of `rayward-webhook` in one binary: one link instead of one per file keeps
//! the test build small enough for CI's disk (each binary statically links every dependency).
//! Each file below is one module; run one with `cargo test -p rayward-webhook --test rayward-webhook -- MODULE::`.
mod handler;
mod kube_e2e;
mod tls_reload;
