//! `rayward history`: the dashboard of terminated Ray clusters (issue 12, docs/history.md).
//!
//! `rayward history collect` runs beside every Ray container and copies what the dashboard
//! shows into an object store, so the evidence of a failed job outlives its cluster:
//!
//! - [`layout`]: where everything goes in the store (one prefix per namespace, kind, name
//!   and session), versioned so a reader that finds a newer layout says so;
//! - [`store`]: the `object_store` crate opened from a URL (a local directory by default;
//!   S3-compatible, GCS, Azure from the URL), credentials only from the environment or a
//!   mounted file;
//! - [`index`]: the compact per-node, per-session index, written after the objects it
//!   names, so a collector killed mid-upload leaves the previous consistent index;
//! - [`logs`]: incremental, rotation-aware shipping of the session's log files;
//! - [`spool`]: the bounded local disk buffer of what was acknowledged but not yet stored;
//! - [`receiver`]: the loopback endpoint Ray's event aggregator POSTs to, plus `/healthz`
//!   and `/metrics`;
//! - [`snapshot`]: the dashboard API answers the UI reads, taken from the head;
//! - [`metrics`]: what the collector counts;
//! - [`collect`]: the loop that ties them together, and its final flush on SIGTERM;
//! - [`catalog`]: the listing of clusters and sessions, read from the indexes only;
//! - [`replay`]: the read-only dashboard API of one stored session;
//! - [`logview`]: its log files as the dashboard's log routes show them (ranges, tails);
//! - [`serve`]: `rayward history serve`, the authenticated, namespace-scoped server of
//!   the UI and that API.
//! - [`retention`]: which sessions to delete (age, count per cluster, total bytes), never
//!   one still being written; `history gc` and `serve` apply it.

pub mod actors;
pub mod catalog;
pub mod collect;
pub mod index;
pub mod layout;
pub mod logs;
pub mod logview;
pub mod metrics;
pub mod receiver;
pub mod replay;
pub mod retention;
pub mod serve;
pub mod snapshot;
pub mod spool;
pub mod store;
