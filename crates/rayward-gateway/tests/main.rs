//! All integration tests of `rayward-gateway` in one binary: one link instead of one per file keeps
//! the test build small enough for CI's disk (each binary statically links every dependency).
//! Each file below is one module; run one with `cargo test -p rayward-gateway --test rayward-gateway -- MODULE::`.
mod browser_e2e;
mod common;
mod discovery;
mod idle;
mod kube_e2e;
mod lifecycle;
mod memo;
mod metrics;
mod oidc;
mod pool;
mod proxy;
mod ray_e2e;
mod redis_e2e;
mod relay;
mod session;
mod tls;
