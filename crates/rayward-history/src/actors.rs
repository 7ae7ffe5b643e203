//! The actors view at the end of a cluster: the dashboard's `/logical/actors` snapshot,
//! corrected by the actor events Ray exported.
//!
//! Why: the dashboard's actor table lags GCS. At issue 12's full scale the collector's
//! final snapshot, taken 10 s after the last job ended, still showed 13 job supervisors as
//! `PENDING_CREATION` (and lacked 10) that the live table showed `DEAD` later
//! (docs/benchmarks.md). In Kubernetes the Ray container stops in parallel with the
//! collector's final flush, so waiting for the dashboard to catch up is not reliable
//! either. Ray 2.60's GCS exports every actor state change as an `ACTOR_LIFECYCLE_EVENT`
//! (state, timestamp, pid, node and worker ids) and every actor's definition as an
//! `ACTOR_DEFINITION_EVENT` (name, class, job, namespace), as soon as it happens: the
//! collector's receiver keeps the latest of each actor here ([`ActorTable`]), the
//! collector stores the table with every snapshot (endpoint `actor_events`), and serve
//! applies it over the stored snapshot ([`overlay`]): an actor whose exported state is
//! newer than the snapshot's entry (by the GCS timestamps both carry) takes the exported
//! state; an actor the snapshot lacks is added from its definition.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The snapshot endpoint name the table is stored under.
pub const ENDPOINT: &str = "actor_events";

/// Most actors tracked per session (about 300 bytes each: 30 MB would be 100,000; the
/// collector's whole budget is 30 MB, so a tenth of that). Past it new actors are counted
/// in [`ActorTable::untracked`], not kept; their snapshot entries are served as stored.
pub const MAX_ACTORS: usize = 10_000;

/// One state change as exported (`ActorLifecycleEvent.StateTransition`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    #[serde(default)]
    pub state: String,
    /// RFC 3339 with nanoseconds, UTC (`2026-12-06T02:18:56.897Z`).
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub pid: u64,
    /// Base64 of Ray's binary ids; empty when not placed.
    #[serde(default)]
    pub node_id: String,
    #[serde(default)]
    pub worker_id: String,
}

/// `actorLifecycleEvent` of an exported event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub actor_id: String,
    #[serde(default)]
    pub state_transitions: Vec<Transition>,
}

/// `actorDefinitionEvent` of an exported event (the fields the Actors page shows).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub actor_id: String,
    #[serde(default)]
    pub job_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub class_name: String,
    #[serde(default)]
    pub ray_namespace: String,
    #[serde(default)]
    pub is_detached: bool,
}

/// What is kept of one actor: hex ids as the dashboard writes them, Unix ms times.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    /// The latest exported state and its GCS time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(default)]
    pub state_ms: u64,
    /// First `ALIVE` time, and the `DEAD` time.
    #[serde(default)]
    pub start_ms: u64,
    #[serde(default)]
    pub end_ms: u64,
    #[serde(default)]
    pub pid: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub worker_id: String,
    /// From the definition event, when it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub def: Option<Def>,
}

/// The definition fields kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Def {
    pub job_id: String,
    pub name: String,
    pub class_name: String,
    pub ray_namespace: String,
    pub is_detached: bool,
}

/// The latest exported state of every actor of one session, by hex actor id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActorTable {
    pub session: String,
    pub actors: BTreeMap<String, Tracked>,
    /// Actors not kept past [`MAX_ACTORS`].
    #[serde(default)]
    pub untracked: u64,
    /// Bumped on every change (not stored): the collector writes the table when it moved.
    #[serde(skip)]
    pub generation: u64,
}

/// Ray's base64 binary id as the dashboard's hex; `None` when not base64.
fn hex_id(b64: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()?;
    Some(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// `2026-12-06T02:18:56.897199160Z` as Unix ms (UTC only, as Ray writes it); 0 otherwise.
pub fn rfc3339_ms(t: &str) -> u64 {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' || !t.ends_with('Z') {
        return 0;
    }
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return 0;
    };
    let frac = t[19..t.len() - 1].strip_prefix('.').unwrap_or("");
    let ms = frac
        .chars()
        .chain("000".chars())
        .take(3)
        .collect::<String>()
        .parse::<i64>()
        .unwrap_or(0);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + ms).unwrap_or(0)
}

impl ActorTable {
    fn entry(&mut self, id: String) -> Option<&mut Tracked> {
        if !self.actors.contains_key(&id) && self.actors.len() >= MAX_ACTORS {
            self.untracked += 1;
            return None;
        }
        Some(self.actors.entry(id).or_default())
    }

    /// Takes the state changes of one lifecycle event; a change older than the one kept
    /// (events may come out of order across batches) only fills the start time.
    pub fn lifecycle(&mut self, l: &Lifecycle) {
        let Some(id) = hex_id(&l.actor_id) else {
            return;
        };
        let Some(t) = self.entry(id) else {
            return;
        };
        for tr in &l.state_transitions {
            let ms = rfc3339_ms(&tr.timestamp);
            if tr.state == "ALIVE" && (t.start_ms == 0 || ms < t.start_ms) {
                t.start_ms = ms;
            }
            if tr.state == "DEAD" {
                t.end_ms = t.end_ms.max(ms);
            }
            if ms >= t.state_ms && !tr.state.is_empty() {
                t.state = tr.state.clone();
                t.state_ms = ms;
                if tr.pid != 0 {
                    t.pid = tr.pid;
                }
                if let Some(n) = hex_id(&tr.node_id).filter(|n| !n.is_empty()) {
                    t.node_id = n;
                }
                if let Some(w) = hex_id(&tr.worker_id).filter(|w| !w.is_empty()) {
                    t.worker_id = w;
                }
            }
        }
        self.generation += 1;
    }

    /// Takes one definition event.
    pub fn definition(&mut self, d: &Definition) {
        let Some(id) = hex_id(&d.actor_id) else {
            return;
        };
        let Some(t) = self.entry(id) else {
            return;
        };
        t.def = Some(Def {
            job_id: hex_id(&d.job_id).unwrap_or_default(),
            name: d.name.clone(),
            class_name: d.class_name.clone(),
            ray_namespace: d.ray_namespace.clone(),
            is_detached: d.is_detached,
        });
        self.generation += 1;
    }
}

/// Rank of a state in an actor's life, for a snapshot entry without a timestamp.
fn rank(state: &str) -> u8 {
    match state {
        "DEPENDENCIES_UNREADY" => 0,
        "PENDING_CREATION" => 1,
        "ALIVE" | "RESTARTING" => 2,
        "DEAD" => 3,
        _ => 0,
    }
}

/// Applies `table` (the stored `actor_events`) over `snapshot` (the stored
/// `/logical/actors` answer, `{"data": {"actors": {id: entry}}}`): an entry whose stored
/// `timestamp` (the GCS time of its last state change) is older than the exported state,
/// or absent with a lower-ranked state, takes the exported state, pid, node and times; an
/// actor missing from the snapshot is added from its definition. Returns how many entries
/// changed or were added.
pub fn overlay(snapshot: &mut serde_json::Value, table: &ActorTable) -> usize {
    use serde_json::{json, Value};
    let Some(actors) = snapshot
        .get_mut("data")
        .and_then(|d| d.get_mut("actors"))
        .and_then(Value::as_object_mut)
    else {
        return 0;
    };
    let mut changed = 0;
    for (id, t) in &table.actors {
        if t.state.is_empty() {
            continue;
        }
        match actors.get_mut(id) {
            Some(e) => {
                let snap_state = e["state"].as_str().unwrap_or("").to_string();
                let newer = match e["timestamp"].as_f64() {
                    Some(ts) if ts > 0.0 => t.state_ms as f64 > ts,
                    _ => rank(&t.state) > rank(&snap_state),
                };
                if !newer || snap_state == t.state {
                    continue;
                }
                e["state"] = json!(t.state);
                e["timestamp"] = json!(t.state_ms as f64);
                if t.start_ms > 0 && e["startTime"].as_u64().unwrap_or(0) == 0 {
                    e["startTime"] = json!(t.start_ms);
                }
                if t.state == "DEAD" && t.end_ms > 0 {
                    e["endTime"] = json!(t.end_ms);
                }
                if t.pid > 0 && e["pid"].as_u64().unwrap_or(0) == 0 {
                    e["pid"] = json!(t.pid);
                }
                changed += 1;
            }
            None => {
                let Some(d) = &t.def else { continue };
                actors.insert(
                    id.clone(),
                    json!({
                        "actorId": id,
                        "jobId": d.job_id,
                        "address": {"nodeId": t.node_id, "ipAddress": "", "port": 0, "workerId": t.worker_id},
                        "name": d.name,
                        "className": d.class_name,
                        "actorClass": d.class_name,
                        "rayNamespace": d.ray_namespace,
                        "isDetached": d.is_detached,
                        "state": t.state,
                        "numRestarts": "0",
                        "timestamp": t.state_ms as f64,
                        "pid": t.pid,
                        "startTime": t.start_ms,
                        "endTime": t.end_ms,
                        "reprName": "",
                        "requiredResources": {},
                        "gpus": [],
                        "tpus": [],
                        "processStats": null,
                        "mem": [],
                        "exitDetail": "",
                    }),
                );
                changed += 1;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    // A job supervisor's events as Ray 2.60 exported them (ids shortened to 4 bytes).
    const LIFE_1: &str = r#"{"actorId":"6IcAjw==","stateTransitions":[{"timestamp":"2026-12-06T02:18:55.342200501Z","state":"DEPENDENCIES_UNREADY","nodeId":"","workerId":"","pid":0},{"state":"PENDING_CREATION","timestamp":"2026-12-06T02:18:55.346499176Z","nodeId":"","workerId":"","pid":0}]}"#;
    const LIFE_2: &str = r#"{"actorId":"6IcAjw==","stateTransitions":[{"state":"ALIVE","timestamp":"2026-12-06T02:18:56.835000000Z","nodeId":"RzLT","workerId":"","pid":8207},{"state":"DEAD","timestamp":"2026-12-06T02:18:56.897000000Z","nodeId":"","workerId":"","pid":0}]}"#;
    const DEF: &str = r#"{"actorId":"6IcAjw==","jobId":"AgAAAA==","isDetached":true,"name":"_ray_internal_job_actor_raysubmit_W","rayNamespace":"SUPERVISOR_ACTOR_RAY_NAMESPACE","className":"JobSupervisor","labelSelector":{}}"#;

    fn table(order: &[&str]) -> ActorTable {
        let mut t = ActorTable::default();
        for s in order {
            if s.contains("className") {
                t.definition(&serde_json::from_str(s).unwrap());
            } else {
                t.lifecycle(&serde_json::from_str(s).unwrap());
            }
        }
        t
    }

    #[test]
    fn times_parse_as_utc_ms() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), 0);
        assert_eq!(
            rfc3339_ms("2026-12-06T02:18:56.897199160Z"),
            1_796_523_536_897
        );
        assert_eq!(rfc3339_ms("2000-03-01T00:00:01.5Z"), 951_868_801_500);
        assert_eq!(rfc3339_ms("not a time"), 0);
    }

    #[test]
    fn latest_state_wins_whatever_the_order() {
        for order in [[LIFE_1, LIFE_2, DEF], [DEF, LIFE_2, LIFE_1]] {
            let t = table(&order);
            let a = &t.actors["e887008f"];
            assert_eq!(a.state, "DEAD");
            assert_eq!(
                (a.start_ms, a.end_ms, a.pid),
                (1_796_523_536_835, 1_796_523_536_897, 8207)
            );
            assert_eq!(a.def.as_ref().unwrap().job_id, "02000000");
        }
    }

    #[test]
    fn overlay_corrects_lagging_entries_and_adds_missing_ones() {
        let t = table(&[LIFE_1, LIFE_2, DEF]);
        let mut snap = serde_json::json!({"result": true, "data": {"actors": {
            "e887008f": {"actorId": "e887008f", "state": "PENDING_CREATION", "timestamp": 1_796_523_535_346.0, "startTime": 0, "endTime": 0, "pid": 0},
        }}});
        assert_eq!(overlay(&mut snap, &t), 1);
        let e = &snap["data"]["actors"]["e887008f"];
        assert_eq!(e["state"], "DEAD");
        assert_eq!(e["endTime"], 1_796_523_536_897u64);
        assert_eq!(e["pid"], 8207);
        // Already as new as the events: untouched.
        assert_eq!(overlay(&mut snap, &t), 0);
        // A snapshot newer than the events keeps its state.
        let mut newer = serde_json::json!({"data": {"actors": {
            "e887008f": {"state": "ALIVE", "timestamp": 1_796_523_599_000.0},
        }}});
        assert_eq!(overlay(&mut newer, &t), 0);
        assert_eq!(newer["data"]["actors"]["e887008f"]["state"], "ALIVE");
        // Missing: added from the definition.
        let mut empty = serde_json::json!({"data": {"actors": {}}});
        assert_eq!(overlay(&mut empty, &t), 1);
        let e = &empty["data"]["actors"]["e887008f"];
        assert_eq!(
            (&e["state"], &e["className"], &e["jobId"]),
            (
                &serde_json::json!("DEAD"),
                &serde_json::json!("JobSupervisor"),
                &serde_json::json!("02000000")
            )
        );
    }

    #[test]
    fn bounded() {
        let mut t = ActorTable::default();
        for i in 0..(MAX_ACTORS as u32 + 5) {
            let id = base64::engine::general_purpose::STANDARD.encode(i.to_be_bytes());
            let l = Lifecycle {
                actor_id: id,
                state_transitions: vec![],
            };
            t.lifecycle(&l);
        }
        assert_eq!((t.actors.len(), t.untracked), (MAX_ACTORS, 5));
    }
}
