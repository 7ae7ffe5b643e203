//! Prometheus metrics for `/metrics`: requests by route class and outcome, authentication
//! failures by reason, upstream latency, failed-login store errors.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `read`, `write`, `admin`, `denied`, or `gateway` for the gateway's own endpoints.
    pub class: &'static str,
    /// `forwarded`, `answered` (by the gateway itself), `rejected` (bad request),
    /// `unauthenticated`, `forbidden`, `limited`, `upstream_error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    pub reason: &'static str,
}

/// The `class` and `outcome` labels counted on every request, in the order of the
/// pre-resolved handles (`Metrics::handles`).
const CLASSES: [&str; 5] = ["read", "write", "admin", "denied", "gateway"];
const OUTCOMES: [&str; 9] = [
    "forwarded",
    "answered",
    "rejected",
    "unauthenticated",
    "forbidden",
    "limited",
    "upstream_error",
    "unavailable",
    "locked",
];

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    /// The requests counter of each (class, outcome), resolved on its first use: after
    /// that a request costs one atomic add, not a hash of its labels and a lookup under
    /// the family's lock. Resolved lazily so that /metrics shows only the series seen.
    handles: [[std::sync::OnceLock<Counter>; OUTCOMES.len()]; CLASSES.len()],
    pub auth_failures: Family<AuthLabels, Counter>,
    pub upstream_latency: Histogram,
    /// Redis (shared failed-login counters) did not answer; memory decided instead.
    pub login_store_errors: Counter,
    /// Redis (shared session revocations) did not answer; memory decided instead.
    pub session_store_errors: Counter,
    /// The Kubernetes API server did not answer a review: new decisions got 503.
    pub kube_unavailable: Family<crate::k8s::CallLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rayward_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let auth_failures = Family::<AuthLabels, Counter>::default();
        // 0.25 ms .. ~8 s
        let upstream_latency = Histogram::new(exponential_buckets(0.00025, 2.0, 16));
        registry.register(
            "requests",
            "Requests by route class and outcome",
            requests.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed authentications by reason",
            auth_failures.clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Time to the upstream's response headers",
            upstream_latency.clone(),
        );
        let login_store_errors = Counter::default();
        registry.register(
            "login_store_errors",
            "Failed-login store (Redis) errors; each fell back to this replica's memory",
            login_store_errors.clone(),
        );
        let session_store_errors = Counter::default();
        registry.register(
            "session_store_errors",
            "Session revocation store (Redis) errors; each fell back to this replica's memory",
            session_store_errors.clone(),
        );
        let kube_unavailable = Family::<crate::k8s::CallLabels, Counter>::default();
        registry.register(
            "kube_unavailable",
            "Kubernetes reviews (tokenreview, subjectaccessreview) the API server did not answer; each refused a new decision with 503",
            kube_unavailable.clone(),
        );
        Metrics {
            kube_unavailable,
            session_store_errors,
            registry,
            requests,
            handles: Default::default(),
            auth_failures,
            upstream_latency,
            login_store_errors,
        }
    }

    pub fn request(&self, class: &'static str, outcome: &'static str) {
        let c = CLASSES.iter().position(|c| *c == class);
        let o = OUTCOMES.iter().position(|o| *o == outcome);
        match (c, o) {
            (Some(c), Some(o)) => self.handles[c][o]
                .get_or_init(|| {
                    self.requests
                        .get_or_create(&RequestLabels { class, outcome })
                        .clone()
                })
                .inc(),
            _ => self
                .requests
                .get_or_create(&RequestLabels { class, outcome })
                .inc(),
        };
    }

    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&AuthLabels { reason })
            .inc();
    }

    /// Adds metrics computed at each scrape (`[discovery]`'s) to the same registry.
    pub fn register_collector(&mut self, c: Box<dyn prometheus_client::collector::Collector>) {
        self.registry.register_collector(c);
    }

    pub fn encode(&self) -> String {
        rayward_serve::endpoints::encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_with_labels() {
        let m = Metrics::new();
        m.request("write", "forbidden");
        m.request("write", "forbidden");
        m.auth_failure("invalid");
        m.upstream_latency.observe(0.001);
        let text = m.encode();
        assert!(
            text.contains(r#"rayward_gateway_requests_total{class="write",outcome="forbidden"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rayward_gateway_auth_failures_total{reason="invalid"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("rayward_gateway_upstream_latency_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn resolved_handles_and_other_labels_count_in_one_family() {
        let m = Metrics::new();
        assert!(!m.encode().contains("rayward_gateway_requests_total{"));
        m.request("read", "forwarded");
        m.request("read", "forwarded");
        m.request("read", "not-pre-resolved");
        m.request("other-class", "forwarded");
        let text = m.encode();
        for series in [
            r#"rayward_gateway_requests_total{class="read",outcome="forwarded"} 2"#,
            r#"rayward_gateway_requests_total{class="read",outcome="not-pre-resolved"} 1"#,
            r#"rayward_gateway_requests_total{class="other-class",outcome="forwarded"} 1"#,
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
        assert!(
            !text.contains(r#"outcome="answered""#),
            "only the series seen: {text}"
        );
    }
}
