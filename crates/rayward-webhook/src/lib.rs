//! `rayward webhook`: the audit rules applied at admission.
//!
//! The API server sends an `AdmissionReview` for every RayCluster, RayJob, RayService,
//! RayCronJob, Service and Ingress it is about to store; this crate reads the object with
//! the same loader and runs the same [`rayward_rules::Engine`] as `rayward audit`, then
//! allows, warns or denies ([`policy`]), or patches the object with harden's safe fixes
//! ([`mutate`]). [`server`] serves it over HTTPS with certificates reloaded from disk.
//!
//! Modules, one concern each:
//! - [`review`]: the AdmissionReview v1 wire format (only the fields used);
//! - [`policy`]: object → findings → verdict (modes, exemptions, messages);
//! - [`mutate`]: the JSONPatch of safe fixes;
//! - [`metrics`]: Prometheus counters and the latency histogram;
//! - [`server`]: the routes, on [`rayward_serve`]'s HTTPS server (certificate reload,
//!   accept loop, graceful shutdown, health and metrics endpoints);
//! - [`tls`]: re-exported from [`rayward_serve::tls`].

pub mod client;
pub mod metrics;
pub mod mutate;
pub mod policy;
pub mod review;
pub mod server;
pub use rayward_serve::tls;

pub use policy::{Mode, Policy};
pub use server::{App, Reply, Server, ServerOptions};
