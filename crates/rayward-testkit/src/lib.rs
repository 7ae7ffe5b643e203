//! Test support for rayward's end-to-end tests (dev-dependency only, never published).
//!
//! The guards here start real things — Ray 2.60 from PyPI, a real kube-apiserver — and
//! stop everything they started on `Drop`, also when the test panics. Paths of the real
//! tools come from environment variables set by `scripts/test.sh`; a missing variable is a
//! test failure with a message saying what to set, never a silent skip.

pub mod apiserver;
pub mod browser;
pub mod cli;
pub mod crd;
pub mod fleet;
pub mod process;
pub mod pss;
pub mod ray;
pub mod yaml;

use std::path::PathBuf;

/// The path in environment variable `var`, which `scripts/test.sh` sets. Panics with a
/// message naming the variable (an end-to-end test without its tool must fail, not skip).
pub fn env_path(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "{var} is not set: end-to-end tests need it (scripts/test.sh sets it; see \
             docs in crates/rayward-testkit)"
        ),
    }
}

/// A fresh directory with a short path (`/tmp/rwXXXXXX`), removed on drop. Short because
/// Ray puts unix sockets under its temp dir and their paths are limited to 107 bytes.
pub fn short_temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rw")
        .tempdir_in("/tmp")
        .expect("create a temp dir under /tmp")
}

/// Runs a future to completion on a fresh single-threaded runtime, so synchronous tests can
/// use the async kube client without a test-runtime macro. A kube `Client` lives on the
/// runtime that created it: create and use it inside one `block_on`.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}
