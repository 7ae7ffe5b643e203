//! The endpoints every rayward server answers itself: `/healthz` and `/readyz` for the
//! kubelet's probes, `/metrics` for Prometheus. Each server decides who may read
//! `/metrics` (the gateway only lets its allowed networks); the paths, bodies and content
//! type are the same everywhere.

use prometheus_client::registry::Registry;

/// The content type of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One of the server's own endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Own {
    /// `/healthz` or `/readyz`: answered `ok` while the server runs.
    Health,
    /// `/metrics`.
    Metrics,
}

impl Own {
    /// Which own endpoint a path is (the query is not part of `path`).
    pub fn of(path: &str) -> Option<Own> {
        match path {
            "/healthz" | "/readyz" => Some(Own::Health),
            "/metrics" => Some(Own::Metrics),
            _ => None,
        }
    }
}

/// The body of a health answer.
pub const HEALTHY: &str = "ok\n";

/// The OpenMetrics text of a registry.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn paths_and_encoding() {
        assert_eq!(Own::of("/healthz"), Some(Own::Health));
        assert_eq!(Own::of("/readyz"), Some(Own::Health));
        assert_eq!(Own::of("/metrics"), Some(Own::Metrics));
        assert_eq!(Own::of("/metrics/"), None);
        assert_eq!(Own::of("/HEALTHZ"), None);
        let mut r = Registry::with_prefix("t");
        let c = Counter::<u64>::default();
        r.register("hits", "Hits", c.clone());
        c.inc();
        let text = encode(&r);
        assert!(text.contains("t_hits_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
