//! What every rayward server shares, so the webhook, the gateway and the history server
//! to come serve HTTPS the same way:
//!
//! - [`tls`]: the certificate and key read from files, polled and swapped in when they
//!   change (a mounted Secret is updated by a symlink swap that file watchers miss);
//! - [`listen`]: the accept loop: TLS handshake and header deadlines, HTTP/1.1 limits,
//!   WebSocket upgrades, and graceful shutdown (stop accepting, let requests in flight
//!   finish within a drain time);
//! - [`framing`]: ambiguous request framing (both `Transfer-Encoding` and
//!   `Content-Length`, repeated lengths, obs-fold, bare LF) refused on the raw bytes, before
//!   hyper's parser resolves it one way;
//! - [`front`]: a server's own HTTP/1 path ahead of hyper on plain connections (the
//!   gateway's relay), which hands hyper whatever it does not serve;
//! - [`endpoints`]: `/healthz`, `/readyz` and `/metrics` (OpenMetrics text);
//! - [`shutdown`]: SIGTERM (Kubernetes stopping the pod) or Ctrl-C.

pub mod endpoints;
pub mod framing;
pub mod front;
pub mod listen;
pub mod shutdown;
pub mod tls;

pub use framing::{RefusalHook, Refused};
pub use front::{Front, Handoff};
pub use listen::{serve, ConnOptions};
pub use tls::{CertStore, TlsError};
