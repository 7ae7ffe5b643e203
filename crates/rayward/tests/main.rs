//! All integration tests of `rayward` in one binary: one link instead of one per file keeps
//! the test build small enough for CI's disk (each binary statically links every dependency).
//! Each file below is one module; run one with `cargo test -p rayward --test rayward -- MODULE::`.
mod budgets;
mod certs;
mod check;
mod cli;
mod corpus;
mod gateway_cli;
mod harden;
mod harden_outputs;
mod harden_pod_security;
mod history;
mod history_browser;
mod history_gateway;
mod history_gc;
mod history_ray;
mod history_ray_actors;
mod history_serve;
mod history_serve_cache;
mod history_serve_redis;
mod history_trusted_gateway;
mod install;
mod install_discovery;
mod kubectl_plugin;
mod kubernetes_reading;
mod live;
mod markdown;
mod probe;
mod proof;
mod ray_tls;
mod report_html;
mod special_files;
mod terminal_output;
mod watch;
mod webhook;
