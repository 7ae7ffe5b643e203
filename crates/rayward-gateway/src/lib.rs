//! `rayward gateway`: an authenticating, authorizing, auditing reverse proxy for the Ray
//! dashboard and Jobs API (guide §1.5.3). Users authenticate to the gateway (htpasswd,
//! hashed bearer tokens, OIDC JWTs); every request is classified by route (read, write, admin,
//! denied) after its path is normalised once; roles decide; the gateway alone holds the
//! cluster's Ray token and injects it. One concern per module:
//!
//! | module | concern |
//! |---|---|
//! | `config` | the TOML file, validated at start |
//! | `net` | CIDR allow/deny, client address behind trusted proxies |
//! | `route` | path normalisation, route classification |
//! | `authn` | `rayward-auth`: htpasswd (bcrypt, apr1), bearer tokens, OIDC JWTs, sessions, verification cache, login page |
//! | `authz` | roles → route classes (on the routed cluster) |
//! | `scope` | `[roles.X] clusters`: which discovered clusters a role reaches |
//! | `memo` | per-connection memo of the last verified `Authorization` header |
//! | `ratelimit` | failed-login backoff, per-user request rate |
//! | `pool` | keep-alive HTTP/1 connections to each upstream |
//! | `proxy` | header rewriting, streaming, WebSocket splice, 5xx replacement |
//! | `idle` | idle timeouts on streamed bodies and spliced WebSockets |
//! | `audit_log` | JSON-lines record of state changes and denials |
//! | `metrics` | Prometheus `/metrics` |
//! | `passwd` | `rayward gateway passwd` |
//! | `discovery` | `[discovery]`: RayClusters, head Services, EndpointSlices and token Secrets → the routing table |
//! | `discovery_metrics` | `/metrics` of `[discovery]`: clusters ready/not ready, token read failures, watch errors, last event age |
//! | `upstreams` | which cluster a request is for (host, path prefix, history), before authorization |
//! | `landing` | the list of clusters at `/` under `[discovery]` |
//! | `service` | the order of the stages |
//! | `server` | building the parts; listening is `rayward-serve`'s |

pub mod audit_log;
/// Authentication lives in its own crate, for every server that lets people in.
pub use rayward_auth as authn;
pub mod authz;
pub mod config;
pub mod discovery;
pub mod discovery_metrics;
pub mod history;
pub mod idle;
pub mod jobs;
pub mod k8s;
pub mod landing;
pub mod memo;
pub mod metrics;
pub mod net;
pub mod passwd;
pub mod pool;
/// `[users]` keys and their roles, shared with the history server.
pub use rayward_auth::principal;
pub mod proxy;
pub mod ratelimit;
pub mod relay;
pub mod revoke;
pub mod route;
pub mod scope;
pub mod server;
pub mod service;
pub mod upstreams;

pub use config::Config;
pub use server::{run, Server, StartError};
