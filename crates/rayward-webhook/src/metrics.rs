//! Prometheus metrics of `/metrics`: reviews by endpoint, kind and verdict; findings by
//! rule; latency of the review handler.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    pub endpoint: &'static str,
    pub mode: &'static str,
    /// One of the kinds rayward knows, or `other`: see [`kind_label`].
    pub kind: String,
    pub verdict: &'static str,
}

/// The `kind` label of a review. A direct caller can send any `request.kind`; taken as
/// is, each new kind would be a new time series (300 random kinds grew `/metrics` to
/// 20 MB). Only the kinds rayward has a reading for are labels; the rest count as `other`.
pub fn kind_label(gvk: &crate::review::GroupVersionKind) -> String {
    let api = if gvk.group.is_empty() {
        gvk.version.clone()
    } else {
        format!("{}/{}", gvk.group, gvk.version)
    };
    match rayward_manifest::Kind::of(&api, &gvk.kind) {
        rayward_manifest::Kind::Other => "other".to_string(),
        _ => gvk.kind.clone(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub rule: &'static str,
    pub severity: &'static str,
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

/// The webhook's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    pub reviews: Family<ReviewLabels, Counter>,
    pub findings: Family<FindingLabels, Counter>,
    pub bad_requests: Family<EndpointLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s: the target is p99 under 2 ms, the API server's timeout seconds.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rayward_webhook");
        let reviews = Family::<ReviewLabels, Counter>::default();
        let findings = Family::<FindingLabels, Counter>::default();
        let bad_requests = Family::<EndpointLabels, Counter>::default();
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "reviews",
            "Admission reviews answered, by endpoint, mode, object kind and verdict",
            reviews.clone(),
        );
        registry.register(
            "findings",
            "Findings on reviewed objects (suppressed ones excluded), by rule",
            findings.clone(),
        );
        registry.register(
            "bad_requests",
            "Requests refused with an HTTP error (not an AdmissionReview, too large, …)",
            bad_requests.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Time to answer one review, from the body read to the response encoded",
            latency.clone(),
        );
        Metrics {
            registry,
            reviews,
            findings,
            bad_requests,
            latency,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        rayward_serve::endpoints::encode(&self.registry)
    }
}
