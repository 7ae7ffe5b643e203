//! What the collector counts, served on `/metrics` (OpenMetrics, prometheus-client as the
//! other rayward servers): bytes shipped by kind, events received and refused, upload
//! errors, the spool's fill and drops, and the lag (age of the oldest data not yet in the
//! store).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `kind` of what was shipped: `log`, `events`, `snapshot`, `index`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// Why an event POST was refused: `size`, `json`, `content_type`, `method`, `peer`, `spool`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// The collector's metrics.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub shipped_bytes: Family<KindLabel, Counter>,
    pub upload_errors: Counter,
    pub events_received: Counter,
    pub event_posts_refused: Family<ReasonLabel, Counter>,
    pub spool_bytes: Gauge,
    pub spool_max_bytes: Gauge,
    pub dropped_entries: Counter,
    pub dropped_bytes: Counter,
    pub log_bytes_pending: Gauge,
    pub lag_seconds: Gauge<f64, AtomicU64>,
    pub snapshots_failed: Counter,
}

impl Metrics {
    /// Counts `n` bytes shipped of `kind`.
    pub fn shipped(&self, kind: &str, n: u64) {
        self.shipped_bytes
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc_by(n);
    }

    /// Counts a refused POST.
    pub fn refused(&self, reason: &str) {
        self.event_posts_refused
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// A registry holding every metric, prefixed `rayward_history`.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("rayward_history");
        r.register(
            "shipped_bytes",
            "Bytes stored, by kind",
            self.shipped_bytes.clone(),
        );
        r.register(
            "upload_errors",
            "Failed writes to the store",
            self.upload_errors.clone(),
        );
        r.register(
            "events_received",
            "Ray events accepted",
            self.events_received.clone(),
        );
        r.register(
            "event_posts_refused",
            "Event POSTs answered 4xx/5xx, by reason",
            self.event_posts_refused.clone(),
        );
        r.register(
            "spool_bytes",
            "Bytes in the local buffer",
            self.spool_bytes.clone(),
        );
        r.register(
            "spool_max_bytes",
            "Bound of the local buffer",
            self.spool_max_bytes.clone(),
        );
        r.register(
            "dropped_entries",
            "Buffered entries dropped past the bound",
            self.dropped_entries.clone(),
        );
        r.register(
            "dropped_bytes",
            "Buffered bytes dropped past the bound",
            self.dropped_bytes.clone(),
        );
        r.register(
            "log_bytes_pending",
            "Log bytes seen but not stored yet",
            self.log_bytes_pending.clone(),
        );
        r.register(
            "lag_seconds",
            "Seconds since the store last confirmed everything acknowledged",
            self.lag_seconds.clone(),
        );
        r.register(
            "snapshots_failed",
            "Dashboard API reads that failed",
            self.snapshots_failed.clone(),
        );
        r
    }
}
