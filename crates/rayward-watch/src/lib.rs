//! `rayward watch`: the audit of a running cluster, kept current. Each object is judged by
//! the per-object rules when it changes (one object, not the cluster); the whole-run rules
//! (NetworkPolicy coverage, quotas, RBAC, stale pods) run again over every kept object at
//! most every [`Options::settle`] after a change. Findings are served as Prometheus
//! metrics that go away when the object is fixed or deleted, and written as Kubernetes
//! Events on the offending objects (de-duplicated and rate-limited, [`events`]); with
//! several replicas, only the holder of a Lease writes Events ([`lease`]). `/healthz`
//! answers while the process runs, `/readyz` once every kind's first listing is in.
//!
//! Same engine, same rules as `rayward audit --cluster` (no second copy): objects arrive
//! through `rayward_live::Cluster::watch_each` as the same JSON inputs.

pub mod events;
mod http;
pub mod lease;
pub mod metrics;
mod state;

pub use http::serve;
pub use metrics::{FindingLabels, Metrics};

use events::{Active, Decision, Details, EventGate, Writer, Written};
use rayward_live::{Change, Cluster};
use rayward_manifest::{load_bytes, Limits, Node};
use rayward_rules::{Engine, Severity};
use state::State;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Bounds and pace.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The quiet time after a change before the whole-run rules run again.
    pub settle: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settle: Duration::from_millis(300),
        }
    }
}

/// How Events are written.
#[derive(Clone, Debug)]
pub struct EventOptions {
    /// Findings below this severity get no Event (they stay in the metrics).
    pub min_severity: Severity,
    /// Events written per second on average, and at once.
    pub per_second: f64,
    pub burst: u32,
    /// A finding still active this long after its Event is announced again (the Event's
    /// count goes up); below the API server's Event TTL (one hour by default), so an
    /// active finding keeps a visible Event.
    pub repeat: Duration,
    /// `reportingInstance`: this replica.
    pub identity: String,
    /// The namespaces watched (`None`: all), where a new leader looks for Events that
    /// exist already.
    pub namespaces: Option<Vec<String>>,
}

impl Default for EventOptions {
    fn default() -> Self {
        EventOptions {
            min_severity: Severity::Medium,
            per_second: 10.0,
            burst: 50,
            repeat: Duration::from_secs(30 * 60),
            identity: "rayward-watch".into(),
            namespaces: None,
        }
    }
}

/// The watch: state, metrics, readiness.
pub struct Watch {
    engine: Engine,
    state: Mutex<State>,
    pub metrics: Metrics,
    ready: AtomicBool,
    /// The severity from which findings become Events (`None`: no Events).
    event_floor: Option<Severity>,
}

impl Watch {
    /// A watch that serves metrics only.
    pub fn new(engine: Engine) -> Arc<Watch> {
        Watch::with_events(engine, None)
    }

    /// A watch that also keeps the set of findings that deserve an Event, from
    /// `event_floor` up.
    pub fn with_events(engine: Engine, event_floor: Option<Severity>) -> Arc<Watch> {
        Arc::new(Watch {
            engine,
            state: Mutex::new(State::default()),
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            event_floor,
        })
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Judges one changed object with the per-object rules.
    fn on_apply(&self, name: String, json: &str) {
        let t = Instant::now();
        let loaded = load_bytes(&name, json.as_bytes(), &Limits::default());
        // The uid names the Event (slim objects no longer carry it).
        let target = loaded.objects.first().map(|o| events::Target {
            api_version: o.api_version.clone(),
            kind: o.kind_name.clone(),
            name: o.name.clone(),
            namespace: o.namespace.clone(),
            uid: o
                .root
                .get("metadata")
                .and_then(|m| m.get("uid"))
                .and_then(Node::as_str)
                .unwrap_or_default()
                .to_string(),
        });
        let checked = self.engine.check_batch(loaded.objects);
        let kept = checked.kept.into_iter().next();
        self.state().apply(name, kept, target, checked.findings);
        self.metrics
            .reaudit_seconds
            .observe(t.elapsed().as_secs_f64());
    }

    /// Runs the whole-run rules over every kept object, then publishes every finding.
    fn conclude(&self) {
        let mut st = self.state();
        let Some(counts) = st.conclude(&self.engine, self.event_floor) else {
            return;
        };
        drop(st);
        // Series of fixed or deleted objects go away: the family is rebuilt whole.
        self.metrics.findings.clear();
        for (labels, n) in counts {
            self.metrics.findings.get_or_create(&labels).set(n);
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.metrics.last_full_audit.set(now);
    }

    /// Follows the cluster's changes until the process ends.
    pub async fn run(
        self: Arc<Self>,
        cluster: &Cluster,
        opts: Options,
    ) -> Result<(), rayward_live::LiveError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let watches = cluster.watch_each(tx).await?;
        let mut synced = 0usize;
        let mut last_change: Option<Instant> = None;
        loop {
            let wait = match last_change {
                Some(t) => opts.settle.saturating_sub(t.elapsed()),
                None => Duration::from_secs(3600),
            };
            match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(change)) => {
                    match change {
                        Change::Apply(l) => self.on_apply(l.name, &l.json),
                        Change::Delete(name) => self.state().remove(&name),
                        Change::Synced => {
                            synced += 1;
                            if synced >= watches {
                                self.ready.store(true, Ordering::Relaxed);
                            }
                        }
                        Change::Error(_) => {
                            self.metrics.api_errors.inc();
                        }
                    }
                    last_change.get_or_insert_with(Instant::now);
                }
                Ok(None) => return Ok(()),
                Err(_) => {
                    // Quiet for `settle`: judge the whole set.
                    self.conclude();
                    last_change = None;
                }
            }
        }
    }

    /// Writes Events for the active findings while `leader` says this replica leads
    /// (always `true` without election). A new leader first reads the Events that exist,
    /// so it writes none twice; an Event's name is fixed by object uid and rule, so even a
    /// write racing a failover is a 409, never a duplicate. Runs until `leader` closes.
    pub async fn announce(
        self: Arc<Self>,
        cluster: &Cluster,
        opts: EventOptions,
        mut leader: tokio::sync::watch::Receiver<bool>,
    ) {
        let writer = Writer::new(cluster.client(), opts.identity.clone());
        let rules: Vec<(&'static str, Severity)> = self
            .engine
            .rule_severities()
            .map(|(r, s)| (r.meta().id, s))
            .collect();
        let mut gate = EventGate::new(opts.repeat, opts.per_second, opts.burst, Instant::now());
        let mut primed = false;
        let mut seen_generation = u64::MAX;
        let mut last_pass = Instant::now();
        let mut deferred = false;
        loop {
            let leading = *leader.borrow_and_update();
            self.metrics.leader.set(i64::from(leading));
            if !leading {
                primed = false;
                if leader.changed().await.is_err() {
                    return;
                }
                continue;
            }
            if !primed && self.ready() {
                match writer.existing(opts.namespaces.as_deref()).await {
                    Ok(list) => {
                        gate = EventGate::new(
                            opts.repeat,
                            opts.per_second,
                            opts.burst,
                            Instant::now(),
                        );
                        let st = self.state();
                        for (t, reason, last) in list {
                            let Some(&(rule, severity)) =
                                rules.iter().find(|(id, _)| *id == reason)
                            else {
                                continue;
                            };
                            let object = rayward_live::object_name(
                                cluster.context(),
                                t.namespace.as_deref(),
                                &t.kind,
                                &t.name,
                            );
                            // An Event of an object since re-created (another uid) is not
                            // this object's.
                            if st.uid(&object) != Some(t.uid.as_str()) {
                                continue;
                            }
                            let ago = last
                                .and_then(|l| SystemTime::now().duration_since(l).ok())
                                .unwrap_or_default();
                            let at = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
                            gate.already_announced(
                                Active {
                                    severity: std::cmp::Reverse(severity),
                                    object: object.into(),
                                    rule,
                                },
                                at,
                            );
                        }
                        primed = true;
                        seen_generation = u64::MAX;
                    }
                    Err(e) => {
                        self.metrics.api_errors.inc();
                        eprintln!(
                            "rayward watch: cannot list existing Events: {}",
                            rayward_manifest::terminal::escape(&e.to_string())
                        );
                    }
                }
            }
            let (generation, active) = self.state().active();
            // A pass walks every active finding: only when something changed, something
            // waits for the rate limit, or a repeat may be due.
            let due = generation != seen_generation
                || deferred
                || last_pass.elapsed() >= (opts.repeat / 10).max(Duration::from_secs(1));
            if primed && due {
                seen_generation = generation;
                last_pass = Instant::now();
                deferred = false;
                for (a, decision) in gate.pass(&active, Instant::now()) {
                    if decision == Decision::Later {
                        deferred = true;
                        self.metrics.event("deferred");
                        continue;
                    }
                    if !*leader.borrow() {
                        break;
                    }
                    let Some(details) = self.state().details(&a) else {
                        continue;
                    };
                    match writer.write(&details, decision).await {
                        Ok(Written::Created) => self.metrics.event("created"),
                        Ok(Written::Bumped) => self.metrics.event("bumped"),
                        Ok(Written::Exists) => self.metrics.event("exists"),
                        Err(e) => {
                            gate.forget(&a);
                            deferred = true;
                            self.metrics.event("failed");
                            self.metrics.api_errors.inc();
                            eprintln!(
                                "rayward watch: Event for {} {}: {}",
                                rayward_manifest::terminal::escape(&a.object),
                                a.rule,
                                rayward_manifest::terminal::escape(&e.to_string())
                            );
                        }
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                r = leader.changed() => if r.is_err() { return },
            }
        }
    }
}

/// The findings that deserve an Event, one per object and rule.
pub(crate) type ActiveSet = Arc<BTreeSet<Active>>;

/// The Event of one object and rule, from the state's findings.
pub(crate) fn details_of(
    target: &events::Target,
    a: &Active,
    findings: &mut dyn Iterator<Item = &rayward_rules::Finding>,
) -> Option<Details> {
    let mut first: Option<&rayward_rules::Finding> = None;
    let mut count = 0;
    for f in findings.filter(|f| f.rule_id == a.rule && f.suppressed.is_none()) {
        first.get_or_insert(f);
        count += 1;
    }
    let f = first?;
    Some(Details {
        target: target.clone(),
        rule: f.rule_id,
        rule_name: f.rule_name,
        severity: f.severity.to_string(),
        message: f.message.clone(),
        count,
    })
}
