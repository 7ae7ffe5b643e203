//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several replicas
//! only one writes Events.
//!
//! kube-rs 5 has no leader election, so `rayward watch` runs its own loop: read the Lease,
//! [`decide`], then write what was decided with the `resourceVersion` that was read (a
//! 409 Conflict means another replica wrote first, and this one simply reads again). The
//! decision is apart from the API calls, with time passed in, so every case is unit
//! tested; [`elect`] carries it out.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use std::time::{Duration, SystemTime};

/// What the Lease says, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseView {
    pub holder: Option<String>,
    /// `spec.renewTime` (or `acquireTime` when never renewed).
    pub renewed: Option<SystemTime>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
}

/// What this replica does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// No Lease yet: create it, holding it.
    Create,
    /// The Lease is free or expired: take it over (replace with the read resourceVersion).
    Acquire,
    /// This replica holds it: renew (replace with the read resourceVersion).
    Renew,
    /// Another replica holds a live Lease: follow, and look again later.
    Follow { holder: String },
}

/// Decides what `me` does with the Lease `lease` at `now`. A Lease without a holder or
/// whose holder let it run out (renewed + duration passed) is free; a renew time in the
/// future (clock skew) counts as just renewed, so skew never makes a live Lease look
/// expired.
pub fn decide(lease: Option<&LeaseView>, me: &str, now: SystemTime) -> Action {
    let Some(l) = lease else {
        return Action::Create;
    };
    match l.holder.as_deref() {
        Some(h) if h == me => Action::Renew,
        Some(h) if !h.is_empty() => {
            let expired = match l.renewed {
                None => true,
                Some(at) => now.duration_since(at).unwrap_or(Duration::ZERO) >= l.duration,
            };
            if expired {
                Action::Acquire
            } else {
                Action::Follow {
                    holder: h.to_string(),
                }
            }
        }
        _ => Action::Acquire,
    }
}

/// Whether a leader that last renewed at `renewed` may still act at `now`: only within
/// `renew_deadline`, which is shorter than the Lease's duration, so a leader that cannot
/// renew stops writing Events before another replica may take over.
pub fn still_leader(renewed: SystemTime, renew_deadline: Duration, now: SystemTime) -> bool {
    now.duration_since(renewed).unwrap_or(Duration::ZERO) < renew_deadline
}

/// Where the Lease lives and who this replica is.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    pub namespace: String,
    pub name: String,
    /// This replica's name in `spec.holderIdentity` (the pod's name in a Deployment).
    pub identity: String,
    /// `spec.leaseDurationSeconds`: how long a silent leader keeps the Lease.
    pub duration: Duration,
}

impl LeaseOptions {
    /// A leader that could not renew for this long stops acting (two thirds of the
    /// Lease), before any other replica may take the Lease over.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// How often the Lease is read and renewed (a fifth of it, at least 200 ms).
    pub fn retry(&self) -> Duration {
        (self.duration / 5).max(Duration::from_millis(200))
    }
}

fn view(l: &Lease) -> LeaseView {
    let spec = l.spec.clone().unwrap_or_default();
    let at = spec.renew_time.or(spec.acquire_time).map(|t| {
        SystemTime::UNIX_EPOCH
            + Duration::from_nanos(t.0.as_nanosecond().clamp(0, u64::MAX as i128) as u64)
    });
    LeaseView {
        holder: spec.holder_identity,
        renewed: at,
        duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64),
    }
}

fn micro_now() -> serde_json::Value {
    serde_json::Value::String(
        k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
    )
}

/// One round: read, decide, write. `Ok(true)` when this replica holds the Lease now.
async fn round(api: &Api<Lease>, o: &LeaseOptions) -> Result<bool, kube::Error> {
    let current = api.get_opt(&o.name).await?;
    let secs = o.duration.as_secs().max(1) as i32;
    let action = decide(
        current.as_ref().map(view).as_ref(),
        &o.identity,
        SystemTime::now(),
    );
    let mut spec = serde_json::json!({
        "holderIdentity": o.identity,
        "leaseDurationSeconds": secs,
        "renewTime": micro_now(),
    });
    match (action, current) {
        (Action::Follow { .. }, _) => Ok(false),
        (Action::Create, _) | (_, None) => {
            spec["acquireTime"] = micro_now();
            spec["leaseTransitions"] = 0.into();
            let lease: Lease = serde_json::from_value(serde_json::json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": o.name, "namespace": o.namespace},
                "spec": spec,
            }))
            .expect("a valid Lease");
            api.create(&PostParams::default(), &lease).await?;
            Ok(true)
        }
        (action, Some(mut lease)) => {
            let old = lease.spec.clone().unwrap_or_default();
            if action == Action::Acquire {
                spec["acquireTime"] = micro_now();
                spec["leaseTransitions"] = (old.lease_transitions.unwrap_or(0) + 1).into();
            } else {
                spec["acquireTime"] = serde_json::to_value(&old.acquire_time).unwrap_or_default();
                spec["leaseTransitions"] = old.lease_transitions.unwrap_or(0).into();
            }
            lease.spec = Some(serde_json::from_value(spec).expect("a valid LeaseSpec"));
            lease.metadata.managed_fields = None;
            // The read resourceVersion stays in the object: a replica that wrote in
            // between makes this a 409, and this one reads again next round.
            api.replace(&o.name, &PostParams::default(), &lease).await?;
            Ok(true)
        }
    }
}

/// Runs the election until `leader` has no receiver left: sends `true` while this replica
/// may act as leader (it renewed within [`LeaseOptions::renew_deadline`]), `false`
/// otherwise. Failed requests count in `errors` and are retried next round.
pub async fn elect(
    client: kube::Client,
    o: LeaseOptions,
    leader: tokio::sync::watch::Sender<bool>,
    errors: prometheus_client::metrics::counter::Counter,
) {
    let api: Api<Lease> = Api::namespaced(client, &o.namespace);
    let mut renewed: Option<SystemTime> = None;
    loop {
        match round(&api, &o).await {
            Ok(true) => renewed = Some(SystemTime::now()),
            Ok(false) => renewed = None,
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                errors.inc();
                eprintln!(
                    "rayward watch: Lease {}/{}: {}",
                    o.namespace,
                    o.name,
                    rayward_manifest::terminal::escape(&e.to_string())
                );
            }
        }
        let acting =
            renewed.is_some_and(|t| still_leader(t, o.renew_deadline(), SystemTime::now()));
        if *leader.borrow() != acting {
            eprintln!(
                "rayward watch: {} {} the Lease {}/{}",
                o.identity,
                if acting { "holds" } else { "does not hold" },
                o.namespace,
                o.name
            );
        }
        if leader.send(acting).is_err() {
            return;
        }
        tokio::time::sleep(o.retry()).await;
    }
}

/// Gives the Lease up (empties its holder) if this replica holds it, so that another
/// replica takes over at once instead of after the Lease runs out.
pub async fn release(client: kube::Client, o: &LeaseOptions) {
    let api: Api<Lease> = Api::namespaced(client, &o.namespace);
    if let Ok(Some(mut lease)) = api.get_opt(&o.name).await {
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() == Some(o.identity.as_str()) {
            spec.holder_identity = None;
            lease.spec = Some(spec);
            lease.metadata.managed_fields = None;
            let _ = api.replace(&o.name, &PostParams::default(), &lease).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: SystemTime) -> LeaseView {
        LeaseView {
            holder: Some(holder.to_string()),
            renewed: Some(renewed),
            duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn who_does_what() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(decide(None, "me", t), Action::Create);
        assert_eq!(decide(Some(&lease("me", t)), "me", t), Action::Renew);
        assert_eq!(
            decide(Some(&lease("other", t)), "me", t + Duration::from_secs(14)),
            Action::Follow {
                holder: "other".into()
            }
        );
        assert_eq!(
            decide(Some(&lease("other", t)), "me", t + Duration::from_secs(15)),
            Action::Acquire
        );
        let released = LeaseView {
            holder: Some(String::new()),
            ..lease("x", t)
        };
        assert_eq!(decide(Some(&released), "me", t), Action::Acquire);
    }

    #[test]
    fn a_renew_time_in_the_future_is_not_expiry() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ahead = lease("other", t + Duration::from_secs(60));
        assert_eq!(
            decide(Some(&ahead), "me", t),
            Action::Follow {
                holder: "other".into()
            }
        );
    }

    #[test]
    fn a_leader_that_cannot_renew_stops_before_the_lease_runs_out() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let deadline = Duration::from_secs(10);
        assert!(still_leader(t, deadline, t + Duration::from_secs(9)));
        assert!(!still_leader(t, deadline, t + Duration::from_secs(10)));
    }
}
