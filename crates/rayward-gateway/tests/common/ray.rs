//! Real Ray for the `ray_e2e_*` tests: a token-auth head started with Ray's CLI (stopped
//! on drop), commands with deadlines, and direct reads of Ray's job list.

use super::{get, raw};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RAY_DASHBOARD: &str = "127.0.0.1:8265";

pub fn venv() -> PathBuf {
    let v = std::env::var("RAYWARD_RAY_VENV").unwrap_or_else(|_| {
        panic!(
            "RAYWARD_RAY_VENV is not set: point it at a venv with Ray 2.60 (bash scripts/ray-venv.sh) \
             and run inside shared/tools/netns-run (scripts/test.sh does both)"
        )
    });
    let v = PathBuf::from(v);
    assert!(
        v.join("bin/ray").is_file(),
        "RAYWARD_RAY_VENV={} has no bin/ray",
        v.display()
    );
    v
}

pub fn path_with(venv: &Path) -> String {
    format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `ray start --head --block` in its own process group; dropped → SIGTERM to the group
/// (Ray's --block mode then stops every process it started), SIGKILL after a grace time.
pub struct RayHead {
    child: Child,
}

impl RayHead {
    pub fn start(venv: &Path, home: &Path, token: &str) -> RayHead {
        use std::os::unix::process::CommandExt;
        let temp = home.join("ray-tmp");
        std::fs::create_dir_all(&temp).unwrap();
        let log = std::fs::File::create(home.join("ray-head.log")).unwrap();
        let child = Command::new(venv.join("bin/ray"))
            .args([
                "start",
                "--head",
                "--block",
                "--node-ip-address",
                "127.0.0.1",
                "--dashboard-host",
                "127.0.0.1",
                "--num-cpus",
                "1",
                "--disable-usage-stats",
                "--include-dashboard",
                "true",
            ])
            .arg("--temp-dir")
            .arg(&temp)
            .env("HOME", home)
            .env("PATH", path_with(venv))
            .env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", token)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("ray start");
        RayHead { child }
    }

    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        let pg = self.pgid();
        // SAFETY-free: plain kill(2) on our own process group via the `kill` utility.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pg}")])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pg}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Runs a command with a deadline; returns (exit code, stdout, stderr).
pub fn run(mut cmd: Command, limit: Duration) -> (i32, String, String) {
    let out_path = tempfile::NamedTempFile::new().unwrap();
    let err_path = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_path.reopen().unwrap())
        .stderr(err_path.reopen().unwrap())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -2;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        code,
        std::fs::read_to_string(out_path.path()).unwrap_or_default(),
        std::fs::read_to_string(err_path.path()).unwrap_or_default(),
    )
}

/// `ray job …` against the gateway, as a client with no Ray token of its own.
pub fn ray_job(
    venv: &Path,
    home: &Path,
    gw: SocketAddr,
    auth: Option<&str>,
    args: &[&str],
) -> (i32, String, String) {
    // Options go right after the subcommand: anything after `--` is the entrypoint.
    let (sub, rest) = args.split_first().expect("a subcommand");
    let mut c = Command::new(venv.join("bin/ray"));
    c.arg("job")
        .arg(sub)
        .arg("--address")
        .arg(format!("http://{gw}"))
        .env("HOME", home)
        .env("PATH", path_with(venv))
        .env_remove("RAY_AUTH_MODE")
        .env_remove("RAY_AUTH_TOKEN")
        .env_remove("RAY_ADDRESS");
    if let Some(a) = auth {
        c.arg("--headers")
            .arg(serde_json::json!({ "Authorization": a }).to_string());
    }
    c.args(rest);
    run(c, Duration::from_secs(240))
}

/// Ray's job list, read directly from Ray with the cluster token: (submission id, status).
pub async fn ray_jobs(token: &str) -> Vec<(String, String)> {
    let addr: SocketAddr = RAY_DASHBOARD.parse().unwrap();
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

pub async fn wait_for_ray(token: &str, home: &Path) {
    let addr: SocketAddr = RAY_DASHBOARD.parse().unwrap();
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
            let log = std::fs::read_to_string(home.join("ray-head.log")).unwrap_or_default();
            panic!("Ray dashboard not ready after 180 s; ray start said:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A fresh random cluster token (48 hex digits).
pub fn random_token() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}
