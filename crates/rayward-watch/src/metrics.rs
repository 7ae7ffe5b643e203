//! The metrics `rayward watch` serves on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of the findings gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct FindingLabels {
    pub namespace: String,
    pub rule: String,
    pub severity: String,
}

/// Labels of the Event counter: what became of one Event write.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `created`, `bumped`, `exists` (another replica wrote it first), `deferred` (the rate
    /// limit was spent) or `failed`.
    pub result: &'static str,
}

/// Every series of the watch, registered under the `rayward_watch` prefix.
pub struct Metrics {
    pub registry: Registry,
    pub(crate) findings: Family<FindingLabels, Gauge>,
    pub(crate) last_full_audit: Gauge,
    pub(crate) api_errors: Counter,
    pub(crate) reaudit_seconds: Histogram,
    pub(crate) events: Family<EventLabels, Counter>,
    pub(crate) leader: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rayward_watch");
        let findings = Family::<FindingLabels, Gauge>::default();
        registry.register(
            "findings",
            "Active findings now, by namespace, rule and severity",
            findings.clone(),
        );
        let last_full_audit = Gauge::default();
        registry.register(
            "last_full_audit_timestamp_seconds",
            "When the whole-run rules last ran over every object (Unix time)",
            last_full_audit.clone(),
        );
        let api_errors = Counter::default();
        registry.register(
            "api_errors",
            "Failed list, watch, Event or Lease requests (each is retried with backoff)",
            api_errors.clone(),
        );
        let reaudit_seconds = Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]);
        registry.register(
            "reaudit_seconds",
            "Time to judge one changed object with the per-object rules",
            reaudit_seconds.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Kubernetes Events written for findings, by result",
            events.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease (or runs without election) and writes Events",
            leader.clone(),
        );
        Metrics {
            registry,
            findings,
            last_full_audit,
            api_errors,
            reaudit_seconds,
            events,
            leader,
        }
    }

    /// The API error counter, for the Lease loop.
    pub fn api_errors_counter(&self) -> prometheus_client::metrics::counter::Counter {
        self.api_errors.clone()
    }

    pub(crate) fn event(&self, result: &'static str) {
        self.events.get_or_create(&EventLabels { result }).inc();
    }
}
