//! Kubernetes Events on offending objects: which active findings become an Event and
//! when ([`EventGate`]), their names ([`event_name`]), and the writes ([`Writer`]).
//!
//! One Event per object and rule: a finding that stays active is not announced again
//! within `repeat` (the writer bumps the existing Event's count after that), a fixed
//! finding is forgotten so that it is announced again if it comes back, and a token
//! bucket caps the rate at which Events are written at all, so a cluster-wide change
//! (10,000 objects failing one rule) cannot flood the API server. A finding held back by
//! the bucket is not lost: it stays active and is offered again on the next pass.

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One object (by the name it has in findings, `k8s://context/ns/Kind/name`) and one
/// rule: what one Event stands for. Ordered most severe first, so that when the rate
/// limit holds Events back, the critical ones go out first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Active {
    pub severity: std::cmp::Reverse<rayward_rules::Severity>,
    pub object: Arc<str>,
    pub rule: &'static str,
}

/// What to do with one active finding now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Never announced (or fixed since): create the Event.
    Create,
    /// Announced more than `repeat` ago and still active: bump the Event's count.
    Bump,
    /// Due, but the rate limit is spent: try again on the next pass.
    Later,
}

/// The de-duplicating, rate-limiting gate in front of the Event writer.
pub struct EventGate {
    repeat: Duration,
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    announced: BTreeMap<Active, Instant>,
}

impl EventGate {
    /// At most `per_second` Events on average, `burst` at once; one object+rule announced
    /// at most once every `repeat`.
    pub fn new(repeat: Duration, per_second: f64, burst: u32, now: Instant) -> EventGate {
        EventGate {
            repeat,
            per_second: per_second.max(0.0),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            refilled: now,
            announced: BTreeMap::new(),
        }
    }

    /// Records an Event that already exists in the cluster (found by a new leader), so
    /// it is not created a second time.
    pub fn already_announced(&mut self, a: Active, at: Instant) {
        self.announced.insert(a, at);
    }

    /// Forgets one announcement whose write failed, so the next pass offers it again.
    pub fn forget(&mut self, a: &Active) {
        self.announced.remove(a);
    }

    /// Decides for every active finding; findings no longer active are forgotten.
    pub fn pass(&mut self, active: &BTreeSet<Active>, now: Instant) -> Vec<(Active, Decision)> {
        self.announced.retain(|a, _| active.contains(a));
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
        let mut out = Vec::new();
        for a in active {
            let due = match self.announced.get(a) {
                None => Decision::Create,
                Some(at) if now.saturating_duration_since(*at) >= self.repeat => Decision::Bump,
                Some(_) => continue,
            };
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                self.announced.insert(a.clone(), now);
                out.push((a.clone(), due));
            } else {
                out.push((a.clone(), Decision::Later));
            }
        }
        out
    }
}

/// The name of the Event for one object (by uid) and rule: the same on every replica and
/// every run, so a second create of the same Event is a 409 Conflict from the API server,
/// never a duplicate, whatever a failover interrupts. `<object name>.<rule>.<16 hex of
/// FNV-1a(uid)>`, the object name cut so the whole stays a DNS subdomain (253 bytes).
pub fn event_name(object_name: &str, rule: &str, uid: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.bytes().chain([0]).chain(rule.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let rule = rule.to_ascii_lowercase();
    let keep = 253 - (rule.len() + 2 + 16);
    // Object names are DNS subdomains (ASCII), so cutting at a byte is cutting at a char;
    // a trailing '.' or '-' after the cut would not be a valid name.
    let mut name: String = object_name.chars().take(keep).collect();
    while name.ends_with(['.', '-']) {
        name.pop();
    }
    format!("{name}.{rule}.{h:016x}")
}

/// The label on every Event rayward writes: how a new leader finds the ones that exist.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "rayward-watch");

/// The object an Event is about, as `involvedObject` names it.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub uid: String,
}

/// What one Event says.
#[derive(Clone, Debug)]
pub struct Details {
    pub target: Target,
    pub rule: &'static str,
    pub rule_name: &'static str,
    pub severity: String,
    /// The first finding's message.
    pub message: String,
    /// How many findings of the rule the object has (at different paths).
    pub count: usize,
}

impl Details {
    fn text(&self) -> String {
        let mut t = format!(
            "[{}] {} {}: {}",
            self.severity, self.rule, self.rule_name, self.message
        );
        if self.count > 1 {
            t.push_str(&format!(" (and {} more)", self.count - 1));
        }
        // The API server refuses messages over 1 KiB for events.k8s.io; keep core/v1 the same.
        if t.len() > 1024 {
            let mut cut = 1021;
            while !t.is_char_boundary(cut) {
                cut -= 1;
            }
            t.truncate(cut);
            t.push_str("...");
        }
        t
    }

    /// Cluster-scoped objects (a Namespace) get their Events in `default`, as kubectl does.
    fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or("default")
    }

    fn name(&self) -> String {
        let id = if self.target.uid.is_empty() {
            format!(
                "{}/{}/{}",
                self.target.kind,
                self.namespace(),
                self.target.name
            )
        } else {
            self.target.uid.clone()
        };
        event_name(&self.target.name, self.rule, &id)
    }
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Writes core/v1 Events (what `kubectl describe` and `kubectl get events` show).
pub struct Writer {
    client: kube::Client,
    /// `reportingInstance`: this replica.
    identity: String,
}

/// What became of one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Bumped,
    /// Another replica (a former leader) wrote it already: nothing duplicated.
    Exists,
}

impl Writer {
    pub fn new(client: kube::Client, identity: String) -> Writer {
        Writer { client, identity }
    }

    /// Creates the Event, or bumps its count when it exists and `decision` says so.
    pub async fn write(&self, d: &Details, decision: Decision) -> Result<Written, kube::Error> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), d.namespace());
        let name = d.name();
        if decision == Decision::Bump {
            // Gone (the API server keeps Events an hour by default): a new one below.
            if let Some(e) = api.get_opt(&name).await? {
                let patch = serde_json::json!({
                    "count": e.count.unwrap_or(1) + 1,
                    "lastTimestamp": now_rfc3339(),
                    "message": d.text(),
                });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                return Ok(Written::Bumped);
            }
        }
        let now = now_rfc3339();
        let event: Event = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": d.namespace(),
                "labels": {MANAGED_BY.0: MANAGED_BY.1},
            },
            "involvedObject": {
                "apiVersion": d.target.api_version,
                "kind": d.target.kind,
                "name": d.target.name,
                "namespace": d.target.namespace,
                "uid": d.target.uid,
            },
            "reason": d.rule,
            "message": d.text(),
            "type": "Warning",
            "source": {"component": "rayward-watch"},
            "reportingComponent": "rayward.io/watch",
            "reportingInstance": self.identity,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }))
        .expect("a valid Event");
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => Ok(Written::Created),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Written::Exists),
            Err(e) => Err(e),
        }
    }

    /// The Events rayward wrote that exist now (in `namespaces`, or everywhere), as
    /// (involved object, reason, last time): what a new leader must not write again.
    pub async fn existing(
        &self,
        namespaces: Option<&[String]>,
    ) -> Result<Vec<(Target, String, Option<SystemTime>)>, kube::Error> {
        let apis: Vec<Api<Event>> = match namespaces {
            Some(list) => list
                .iter()
                .map(|ns| Api::namespaced(self.client.clone(), ns))
                .collect(),
            None => vec![Api::all(self.client.clone())],
        };
        let mut out = Vec::new();
        for api in apis {
            let mut lp = ListParams::default()
                .labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1))
                .limit(500);
            loop {
                let page = api.list(&lp).await?;
                for e in page.items {
                    let io = e.involved_object;
                    let last = e.last_timestamp.map(|t| {
                        SystemTime::UNIX_EPOCH + Duration::from_secs(t.0.as_second().max(0) as u64)
                    });
                    out.push((
                        Target {
                            api_version: io.api_version.unwrap_or_default(),
                            kind: io.kind.unwrap_or_default(),
                            name: io.name.unwrap_or_default(),
                            namespace: io.namespace,
                            uid: io.uid.unwrap_or_default(),
                        },
                        e.reason.unwrap_or_default(),
                        last,
                    ));
                }
                match page.metadata.continue_ {
                    Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                    _ => break,
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(name: &str) -> Active {
        finding_at(name, rayward_rules::Severity::High)
    }

    fn finding_at(name: &str, severity: rayward_rules::Severity) -> Active {
        Active {
            severity: std::cmp::Reverse(severity),
            object: format!("k8s://ctx/ns/RayCluster/{name}").into(),
            rule: "RW101",
        }
    }

    #[test]
    fn held_back_by_the_rate_limit_the_most_severe_go_first() {
        use rayward_rules::Severity::{Critical, Medium};
        let t0 = Instant::now();
        let mut gate = EventGate::new(Duration::from_secs(60), 1.0, 1, t0);
        let active: BTreeSet<Active> = [
            finding_at("a", Medium),
            finding_at("b", Medium),
            finding_at("z", Critical),
        ]
        .into();
        let first = gate.pass(&active, t0);
        assert_eq!(first[0], (finding_at("z", Critical), Decision::Create));
        assert!(first[1..].iter().all(|(_, d)| *d == Decision::Later));
    }

    #[test]
    fn one_event_per_object_and_rule_until_repeat_then_a_bump() {
        let t0 = Instant::now();
        let mut gate = EventGate::new(Duration::from_secs(60), 10.0, 10, t0);
        let active: BTreeSet<Active> = [finding("a")].into();
        assert_eq!(
            gate.pass(&active, t0),
            vec![(finding("a"), Decision::Create)]
        );
        assert!(gate.pass(&active, t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            gate.pass(&active, t0 + Duration::from_secs(61)),
            vec![(finding("a"), Decision::Bump)]
        );
        // Fixed, then broken again: a new Event.
        gate.pass(&BTreeSet::new(), t0 + Duration::from_secs(62));
        assert_eq!(
            gate.pass(&active, t0 + Duration::from_secs(63)),
            vec![(finding("a"), Decision::Create)]
        );
    }

    #[test]
    fn the_rate_limit_defers_and_does_not_drop() {
        let t0 = Instant::now();
        let mut gate = EventGate::new(Duration::from_secs(60), 1.0, 2, t0);
        let active: BTreeSet<Active> = ["a", "b", "c"].into_iter().map(finding).collect();
        let first = gate.pass(&active, t0);
        let created = first.iter().filter(|(_, d)| *d == Decision::Create).count();
        assert_eq!(created, 2, "{first:?}");
        assert_eq!(first[2], (finding("c"), Decision::Later));
        // One second refills one token: the deferred one goes out, nothing is repeated.
        assert_eq!(
            gate.pass(&active, t0 + Duration::from_secs(1)),
            vec![(finding("c"), Decision::Create)]
        );
    }

    #[test]
    fn events_a_new_leader_finds_are_not_created_again() {
        let t0 = Instant::now();
        let mut gate = EventGate::new(Duration::from_secs(60), 10.0, 10, t0);
        gate.already_announced(finding("a"), t0);
        let active: BTreeSet<Active> = ["a", "b"].into_iter().map(finding).collect();
        assert_eq!(
            gate.pass(&active, t0),
            vec![(finding("b"), Decision::Create)]
        );
    }

    #[test]
    fn event_names_are_stable_distinct_and_valid() {
        let a = event_name("rc", "RW101", "uid-1");
        assert_eq!(a, event_name("rc", "RW101", "uid-1"));
        assert!(a.starts_with("rc.rw101."), "{a}");
        assert_ne!(a, event_name("rc", "RW102", "uid-1"));
        // A deleted and re-created object (new uid) gets new Events.
        assert_ne!(a, event_name("rc", "RW101", "uid-2"));
        let long = event_name(&format!("{}-x", "a".repeat(252)), "RW101", "u");
        assert!(long.len() <= 253, "{}", long.len());
        assert!(long
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'));
    }
}
