//! `/metrics` of `[discovery]`, computed at each scrape from the routing table and a few
//! counters the watches keep:
//!
//! - `rayward_gateway_discovery_clusters{state="ready"|"not_ready"}`: clusters in the
//!   table, with and without a reachable dashboard endpoint (and token);
//! - `rayward_gateway_discovery_token_read_failures_total`: reads of token Secrets that
//!   gave no token (API error, timeout, Secret absent or without `auth_token`);
//! - `rayward_gateway_discovery_watch_errors_total{kind}`: watch errors per watched kind
//!   (`raycluster`, `service`, `endpointslice`);
//! - `rayward_gateway_discovery_last_event_age_seconds`: seconds since the last event any
//!   watch delivered (since start when none yet). A quiet fleet sends no events, so the age
//!   grows while all is well; alert on it together with the watch errors.
//!
//! Label sets are fixed (two states, three kinds): no per-cluster label, so a gateway in
//! front of `max_clusters` clusters exports the same dozen series as one in front of two.

use crate::discovery::Discovery;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The watched kinds, as the `kind` label names them.
pub const KINDS: [&str; 3] = ["raycluster", "service", "endpointslice"];

/// What the watches and the token reader count.
#[derive(Debug)]
pub struct Counts {
    pub token_read_failures: AtomicU64,
    /// Per [`KINDS`] entry.
    pub watch_errors: [AtomicU64; 3],
    started: Instant,
    /// Milliseconds after `started` of the last watch event.
    last_event_ms: AtomicU64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            token_read_failures: AtomicU64::new(0),
            watch_errors: Default::default(),
            started: Instant::now(),
            last_event_ms: AtomicU64::new(0),
        }
    }
}

impl Counts {
    /// A token Secret could not be read, was absent, or held no `auth_token`.
    pub fn token_read_failure(&self) {
        self.token_read_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A watch delivered an event.
    pub fn event(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_event_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Seconds since the last event (since start when none yet).
    pub fn last_event_age(&self) -> f64 {
        let now = self.started.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_event_ms.load(Ordering::Relaxed)) as f64 / 1000.0
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The collector registered in the gateway's registry.
pub struct DiscoveryCollector(pub Arc<Discovery>);

impl std::fmt::Debug for DiscoveryCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiscoveryCollector")
    }
}

impl Collector for DiscoveryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let table = self.0.table();
        let (mut ready, mut not_ready) = (0i64, 0i64);
        for c in table.values().flat_map(|m| m.values()) {
            if c.upstream.is_ok() {
                ready += 1;
            } else {
                not_ready += 1;
            }
        }
        let counts = self.0.counts();
        let g = ConstGauge::new(0i64);
        let mut e = encoder.encode_descriptor(
            "discovery_clusters",
            "Discovered Ray clusters by state (ready: dashboard endpoint and token known)",
            None,
            g.metric_type(),
        )?;
        for (state, n) in [("ready", ready), ("not_ready", not_ready)] {
            ConstGauge::new(n).encode(e.encode_family(&StateLabels { state })?)?;
        }
        let c = ConstCounter::new(counts.token_read_failures.load(Ordering::Relaxed));
        let e = encoder.encode_descriptor(
            "discovery_token_read_failures",
            "Failed reads of token Secrets (each kept the last token read)",
            None,
            c.metric_type(),
        )?;
        c.encode(e)?;
        let c = ConstCounter::new(0u64);
        let mut e = encoder.encode_descriptor(
            "discovery_watch_errors",
            "Errors of the watches, by watched kind (each retried with backoff)",
            None,
            c.metric_type(),
        )?;
        for (kind, n) in KINDS.iter().zip(&counts.watch_errors) {
            ConstCounter::new(n.load(Ordering::Relaxed))
                .encode(e.encode_family(&KindLabels { kind })?)?;
        }
        let g = ConstGauge::new(counts.last_event_age());
        let e = encoder.encode_descriptor(
            "discovery_last_event_age_seconds",
            "Seconds since a watch last delivered an event (since start when none yet)",
            None,
            g.metric_type(),
        )?;
        g.encode(e)?;
        Ok(())
    }
}
