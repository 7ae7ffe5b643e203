//! Two real Ray 2.60 heads side by side in one network namespace, on disjoint port sets
//! ([`Ports::default`] and [`Ports::second`]), each with its own token, temp dir and
//! marker. Proves what the multi-cluster gateway proofs rely on: both start, each Jobs API
//! accepts only its own token, a job submitted to one head is in that head's list only,
//! and stopping one head leaves the other serving. Run by scripts/test.sh (ray_e2e stage,
//! inside netns-run).

use rayward_testkit::ray::{random_token, Ports, Ray};
use std::time::{Duration, Instant};

const START: Duration = Duration::from_secs(180);
const JOB: Duration = Duration::from_secs(240);

/// `ray job <args>` against `ray`'s own dashboard with `token`: (exit code, stdout+stderr).
fn job(ray: &Ray, token: &str, args: &[&str]) -> (i32, String) {
    let o = ray.job(
        "client",
        &format!("http://{}", ray.dashboard()),
        Some(&format!("Bearer {token}")),
        args,
        JOB,
    );
    let code = o.status.map_or(-2, |s| s.code().unwrap_or(-1));
    (code, format!("{}\n{}", o.stdout, o.stderr))
}

/// The submission ids `ray job list` names (`submission_id='…'`), sorted.
fn submission_ids(list: &str) -> Vec<String> {
    let mut ids: Vec<String> = list
        .split("submission_id='")
        .skip(1)
        .filter_map(|s| s.split('\'').next())
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

/// Starts a token-auth head and waits until its Jobs API lists jobs with the token.
fn head(ports: Ports, token: &str) -> Ray {
    let ray = Ray::with_ports(ports);
    let o = ray.start_head_with_token(token, START);
    assert!(o.success(), "ray start --head on {ports:?}: {o}");
    let start = Instant::now();
    loop {
        let (code, out) = job(&ray, token, &["list"]);
        if code == 0 {
            break;
        }
        assert!(
            start.elapsed() < START,
            "{} not serving jobs: {out}",
            ray.dashboard()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    ray
}

#[test]
fn port_sets_are_disjoint_and_flags_name_every_port() {
    assert!(!Ports::default().overlaps(&Ports::second()));
    assert!(Ports::default().overlaps(&Ports::default()));
    let args = Ports::second().head_args().join(" ");
    for flag in [
        "--port 6479",
        "--dashboard-port 8365",
        "--ray-client-server-port 10101",
        "--dashboard-agent-listen-port 20101",
        "--dashboard-agent-grpc-port 20102",
        "--node-manager-port 20103",
        "--object-manager-port 20104",
        "--metrics-export-port 20105",
        "--runtime-env-agent-port 20106",
        "--min-worker-port 20200 --max-worker-port 20299",
    ] {
        assert!(args.contains(flag), "{flag} missing in {args}");
    }
    // The default set is Ray's own defaults: no flag at all, as before.
    assert!(Ports::default().head_args().is_empty());
}

#[test]
#[ignore = "needs Ray 2.60 in netns-run; run by scripts/test.sh"]
fn ray_e2e_two_heads_side_by_side_each_with_its_own_jobs() {
    let (ta, tb) = (random_token(), random_token());
    let a = head(Ports::default(), &ta);
    let b = head(Ports::second(), &tb);
    assert_ne!(a.dashboard(), b.dashboard());

    // Each head takes only its own token: B's token on A is refused, and the reverse.
    let (code, out) = job(&a, &tb, &["list"]);
    assert_ne!(code, 0, "A accepted B's token: {out}");
    let (code, out) = job(&b, &ta, &["list"]);
    assert_ne!(code, 0, "B accepted A's token: {out}");

    let (code, out) = job(
        &a,
        &ta,
        &[
            "submit",
            "--submission-id",
            "job-on-a",
            "--",
            "echo",
            "on-a",
        ],
    );
    assert_eq!(code, 0, "submit to A: {out}");
    assert!(out.contains("on-a"), "{out}");
    let (code, out) = job(
        &b,
        &tb,
        &[
            "submit",
            "--submission-id",
            "job-on-b",
            "--",
            "echo",
            "on-b",
        ],
    );
    assert_eq!(code, 0, "submit to B: {out}");
    assert!(out.contains("on-b"), "{out}");

    let (code, list_a) = job(&a, &ta, &["list"]);
    assert_eq!(code, 0, "{list_a}");
    let (code, list_b) = job(&b, &tb, &["list"]);
    assert_eq!(code, 0, "{list_b}");
    assert_eq!(submission_ids(&list_a), ["job-on-a"], "{list_a}");
    assert_eq!(submission_ids(&list_b), ["job-on-b"], "{list_b}");

    // Stopping A (by its marker) leaves B's processes and Jobs API alive.
    let b_procs = b.processes().len();
    assert!(b_procs > 0);
    assert_eq!(a.stop_all(), vec![]);
    assert!(a.processes().is_empty());
    assert_eq!(b.processes().len(), b_procs, "stopping A touched B");
    let (code, list_b) = job(&b, &tb, &["list"]);
    assert_eq!(code, 0, "B after A stopped: {list_b}");
    assert_eq!(submission_ids(&list_b), ["job-on-b"], "{list_b}");
}
