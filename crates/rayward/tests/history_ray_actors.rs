//! The actors view at the end of a cluster, against a real Ray 2.60 head (token auth,
//! event export on) inside netns-run: the collector's last dashboard snapshot shows a
//! job's supervisor actor `ALIVE`; the job then ends, the live table shows the supervisor
//! `DEAD`, and Ray is killed before the collector's final flush (in Kubernetes the Ray
//! container stops in parallel with it), so the final snapshot cannot be taken. History
//! must still show every actor in the state the live table last showed: the exported
//! actor events carry it (crate docs of `rayward_history::actors`).

use crate::history::{get, until, Collector, Reader};
use crate::history_ray::{live, with_export};
use crate::history_serve::{basic, config_file, start_with_env};
use rayward_history::index::Role;
use rayward_testkit::ray::{random_token, Ray};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const START: Duration = Duration::from_secs(180);

/// Actor id → (name, state) of an `/logical/actors` answer.
fn states(v: &Value) -> BTreeMap<String, (String, String)> {
    v["data"]["actors"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(id, a)| {
                    let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                    (id.clone(), (s("name"), s("state")))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs Ray 2.60 (RAYWARD_RAY_VENV) inside netns-run"]
fn ray_e2e_history_actors_are_dead_in_history_when_ray_stops_before_the_final_flush() {
    let ray = Ray::new();
    let token = random_token();
    let d = ray.dir().to_path_buf();
    let store = d.join("store");
    let env = [("RAY_AUTH_TOKEN", token.as_str())];
    let addr: SocketAddr = "127.0.0.1:8084".parse().unwrap();

    let mut c = ray.command("head", None);
    with_export(&mut c, &token, 8084);
    c.args(["start", "--head", "--node-ip-address", "127.0.0.1"])
        .args(["--dashboard-host", "127.0.0.1", "--num-cpus", "1"])
        .args(["--include-dashboard", "true", "--disable-usage-stats"])
        .arg("--temp-dir")
        .arg(ray.temp_dir("head"));
    let o = ray.run(&mut c, "start-head", START);
    assert!(o.success(), "head: {o:?}");

    // A job that runs a few seconds: its supervisor actor is ALIVE meanwhile.
    let mut c = ray.command("client", None);
    c.env("RAY_AUTH_MODE", "token")
        .env("RAY_AUTH_TOKEN", &token)
        .args([
            "job",
            "submit",
            "--no-wait",
            "--submission-id",
            "actors-job",
        ])
        .args(["--address", "http://127.0.0.1:8265", "--"])
        .args(["python", "-c", "import time; time.sleep(8)"]);
    let o = ray.run(&mut c, "submit", START);
    assert!(o.success(), "submit: {o:?}");
    let supervisor = |v: &Value| {
        states(v)
            .into_iter()
            .find(|(_, (name, _))| name == "_ray_internal_job_actor_actors-job")
    };
    assert!(
        until(Duration::from_secs(60), || supervisor(&live(
            "/logical/actors",
            &token
        ))
        .is_some_and(|(_, (_, s))| s == "ALIVE")),
        "the supervisor never ALIVE: {}",
        live("/logical/actors", &token)
    );

    // The collector comes up now and snapshots the dashboard once (the interval is long):
    // that snapshot shows the supervisor ALIVE. Ray's aggregator delivers the events it
    // held for the collector's endpoint meanwhile.
    let args: Vec<String> = [
        "--store",
        store.to_str().unwrap(),
        "--namespace",
        "team-a",
        "--kind",
        "RayJob",
        "--name",
        "actors",
        "--node",
        "actors-head",
        "--head",
        "--interval",
        "0.5",
        "--snapshot-interval",
        "3600",
        "--final-flush",
        "60",
        "--spool-dir",
        d.join("spool").to_str().unwrap(),
        "--ray-dir",
        ray.temp_dir("head").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut collector = Collector::start(&args, addr, &d.join("collector.err"), &env);
    let r = Reader::local(&store);
    let stored_alive = until(Duration::from_secs(60), || {
        r.indexes().iter().any(|(_, i)| {
            i.role == Role::Head
                && i.snapshots.get("actors").is_some_and(|s| {
                    let v: Value = serde_json::from_slice(&r.read(&s.key)).unwrap_or_default();
                    supervisor(&v).is_some_and(|(_, (_, st))| st == "ALIVE")
                })
        })
    });
    assert!(stored_alive, "no stored snapshot with the supervisor ALIVE");

    // The job ends; the live table shows its supervisor DEAD.
    assert!(
        until(Duration::from_secs(120), || supervisor(&live(
            "/logical/actors",
            &token
        ))
        .is_some_and(|(_, (_, s))| s == "DEAD")),
        "the supervisor never DEAD live"
    );
    let live_states = states(&live("/logical/actors", &token));
    // Ray's aggregator sends its batches about every second: give the last one the time.
    std::thread::sleep(Duration::from_secs(3));
    // Ray goes first (killed), then the kubelet's SIGTERM reaches the collector: its
    // final snapshot finds no dashboard; the flush still completes.
    let left = ray.stop_all();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        collector.terminate(Duration::from_secs(90)),
        0,
        "{}",
        collector.stderr()
    );
    assert_eq!(get(addr, "/healthz").0, 0, "collector gone");

    // `history serve` on the store: every actor of the live table, in its live state.
    let (_, head) = r
        .indexes()
        .into_iter()
        .find(|(_, i)| i.role == Role::Head)
        .expect("the head's index");
    assert!(head.finished, "final flush done");
    let ui = d.join("ui");
    std::fs::create_dir_all(&ui).unwrap();
    std::fs::write(ui.join("index.html"), "<!doctype html>").unwrap();
    let sdir = d.join("serve");
    std::fs::create_dir_all(&sdir).unwrap();
    let cfg = config_file(&sdir, store.to_str().unwrap(), &PathBuf::from(&ui), "");
    let srv = start_with_env(&cfg, &[]);
    let path = format!(
        "/clusters/team-a/rayjob/actors/{}/logical/actors",
        head.session
    );
    let (status, _, body) = crate::history_serve::get(srv.addr, &path, &basic("alice"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let history: Value = serde_json::from_slice(&body).unwrap();
    let history_states = states(&history);
    assert!(!live_states.is_empty());
    for (id, (name, state)) in &live_states {
        assert_eq!(
            history_states.get(id).map(|(_, s)| s.as_str()),
            Some(state.as_str()),
            "actor {id} ({name}): live {state}, history {:?}",
            history_states.get(id)
        );
    }
    // The detail route agrees with the list.
    let (sup, _) = supervisor(&history).expect("the supervisor in history");
    let (status, _, body) =
        crate::history_serve::get(srv.addr, &format!("{path}/{sup}"), &basic("alice"));
    assert_eq!(status, 200);
    let detail: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(detail["data"]["detail"]["state"], "DEAD");
}
