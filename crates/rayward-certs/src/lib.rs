//! Certificates for Ray's mutual TLS between nodes (guide §1.1), without shell scripts or
//! openssl in the image.
//!
//! - [`create_ca`] writes `ca.crt` and `ca.key` (key at mode 0600).
//! - [`issue_node`] writes `tls.crt`, `tls.key` and a copy of `ca.crt`: one certificate that
//!   Ray uses as server and as client (EKU serverAuth + clientAuth), with SANs for the pod IP,
//!   `127.0.0.1`, `localhost` and any given names.
//! - [`check`] reads such a folder and says whether Ray would accept it.
//!
//! Ray's settings for the files: `RAY_USE_TLS=1`, `RAY_TLS_SERVER_CERT=DIR/tls.crt`,
//! `RAY_TLS_SERVER_KEY=DIR/tls.key`, `RAY_TLS_CA_CERT=DIR/ca.crt`.
//!
//! Every error names the file it is about.

mod check;
mod files;
mod issue;

pub use check::{check, CheckOptions, CheckReport};
pub use issue::{ca_secret_yaml, create_ca, issue_node, CaOptions, KeyAlg, NodeOptions};

use std::path::PathBuf;

/// Names of the files in a CA folder and a node folder.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const NODE_CERT: &str = "tls.crt";
pub const NODE_KEY: &str = "tls.key";

/// Default lifetimes, in days.
pub const DEFAULT_CA_DAYS: u32 = 3650;
pub const DEFAULT_NODE_DAYS: u32 = 365;

/// An error of `rayward certs`; all but `Usage` name a file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The I/O error is part of the message, not a `source`: `anyhow`'s `{:#}` would print
    /// it twice.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{}: already exists (use --force to overwrite)", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Error::Invalid {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
