//! Real Ray for the `ray_e2e_*` tests, from `rayward-testkit` (a token-auth head whose
//! processes are all stopped on drop, `ray job` clients with deadlines), plus direct reads
//! of Ray's job list over HTTP.

use super::{get, raw};
#[allow(unused_imports)] // each test binary uses a part
pub use rayward_testkit::ray::{random_token, Ports, Ray, DASHBOARD as RAY_DASHBOARD};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A Ray 2.60 head with token authentication, started by the test kit (panics with Ray's
/// output when it does not start).
pub fn start_ray(token: &str) -> Ray {
    start_ray_on(Ports::default(), token)
}

/// [`start_ray`] on the port set `ports` (two heads side by side take disjoint sets).
pub fn start_ray_on(ports: Ports, token: &str) -> Ray {
    let ray = Ray::with_ports(ports);
    let o = ray.start_head_with_token(token, Duration::from_secs(180));
    assert!(o.success(), "ray start --head on {ports:?}: {o}");
    ray
}

/// `ray job …` against the gateway, as a client with no Ray token of its own:
/// (exit code, stdout, stderr); -2 when it ran past its deadline.
pub fn ray_job(
    ray: &Ray,
    gw: SocketAddr,
    auth: Option<&str>,
    args: &[&str],
) -> (i32, String, String) {
    let o = ray.job(
        "client",
        &format!("http://{gw}"),
        auth,
        args,
        Duration::from_secs(240),
    );
    let code = o.status.map_or(-2, |s| s.code().unwrap_or(-1));
    (code, o.stdout, o.stderr)
}

/// Ray's job list, read directly from Ray with the cluster token: (submission id, status).
pub async fn ray_jobs(token: &str) -> Vec<(String, String)> {
    ray_jobs_at(RAY_DASHBOARD.parse().unwrap(), token).await
}

/// [`ray_jobs`] of the head whose dashboard is at `addr`.
pub async fn ray_jobs_at(addr: SocketAddr, token: &str) -> Vec<(String, String)> {
    let r = raw(
        addr,
        &get("/api/jobs/", Some(&format!("Bearer {token}")), ""),
    )
    .await;
    assert_eq!(r.status, 200, "direct job list: {r:?}");
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("job list JSON");
    let mut jobs: Vec<(String, String)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|j| {
            (
                j["submission_id"].as_str().unwrap_or("").to_string(),
                j["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    jobs.sort();
    jobs
}

/// Waits until the dashboard answers the job list with the token (180 s at most).
pub async fn wait_for_ray(token: &str, ray: &Ray) {
    let addr: SocketAddr = ray.dashboard().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let r = raw(
                addr,
                &get("/api/jobs/", Some(&format!("Bearer {token}")), ""),
            )
            .await;
            if r.status == 200 {
                return;
            }
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(ray.dir().join("logs/start-head.err")).unwrap_or_default();
            panic!("Ray dashboard not ready after 180 s; ray start said:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
