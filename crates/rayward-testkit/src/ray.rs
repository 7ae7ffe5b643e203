//! A real Ray 2.60 (from PyPI, venv in `RAYWARD_RAY_VENV`) for end-to-end tests.
//!
//! Tests run inside `shared/tools/netns-run`, where 127.0.0.1 is the only address, so every
//! Ray port is on loopback. A [`Ray`] owns a short temp dir (HOME and `--temp-dir` of each
//! node live in it) and a marker on every process it starts; dropping it kills exactly those
//! processes (see [`crate::process`] for why not `ray stop`).

use crate::process::{self, Outcome, TAG_VAR};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The three files of a node's TLS identity, as Ray reads them from its environment.
#[derive(Clone, Debug)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl Tls {
    /// The layout `rayward certs node --out DIR` writes: `tls.crt`, `tls.key`, `ca.crt`.
    pub fn from_dir(dir: &Path) -> Tls {
        Tls {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            ca: dir.join("ca.crt"),
        }
    }
}

/// The dashboard and Jobs API of a head started with [`Ports::default`]: Ray's default
/// port, on loopback.
pub const DASHBOARD: &str = "127.0.0.1:8265";

/// Every port a Ray 2.60 head binds, as `ray start` flags take them.
///
/// Why: a head binds GCS 6379, dashboard 8265, Ray Client 10001 and dashboard agent 52365
/// by default, so a second head in the same network namespace fails to start. With a
/// disjoint `Ports` per head two heads run side by side (the multi-cluster proofs need
/// two real clusters). `None` leaves the port to Ray (it binds a free one), which is what
/// `ray start` does without the flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// `--port`: GCS.
    pub gcs: u16,
    /// `--dashboard-port`: dashboard and Jobs API (HTTP).
    pub dashboard: u16,
    /// `--ray-client-server-port`: Ray Client (gRPC).
    pub client: u16,
    /// `--dashboard-agent-listen-port`: the agent's HTTP port (accepts jobs itself).
    pub agent_listen: u16,
    /// `--dashboard-agent-grpc-port`.
    pub agent_grpc: Option<u16>,
    /// `--node-manager-port`: the raylet.
    pub node_manager: Option<u16>,
    /// `--object-manager-port`.
    pub object_manager: Option<u16>,
    /// `--metrics-export-port`.
    pub metrics_export: Option<u16>,
    /// `--runtime-env-agent-port`.
    pub runtime_env_agent: Option<u16>,
    /// `--min-worker-port` and `--max-worker-port` (inclusive).
    pub workers: Option<(u16, u16)>,
}

impl Default for Ports {
    /// Ray's own defaults: the fixed set every caller had before ports were configurable,
    /// the other ports left to Ray.
    fn default() -> Self {
        Ports {
            gcs: 6379,
            dashboard: 8265,
            client: 10001,
            agent_listen: 52365,
            agent_grpc: None,
            node_manager: None,
            object_manager: None,
            metrics_export: None,
            runtime_env_agent: None,
            workers: None,
        }
    }
}

impl Ports {
    /// A second set, disjoint from [`Ports::default`] and with every port fixed below the
    /// kernel's ephemeral range (32768–60999), so no port Ray leaves to the kernel for the
    /// default head can take one of these.
    pub fn second() -> Self {
        Ports {
            gcs: 6479,
            dashboard: 8365,
            client: 10101,
            agent_listen: 20101,
            agent_grpc: Some(20102),
            node_manager: Some(20103),
            object_manager: Some(20104),
            metrics_export: Some(20105),
            runtime_env_agent: Some(20106),
            workers: Some((20200, 20299)),
        }
    }

    /// The dashboard (Jobs API) address on loopback, `127.0.0.1:<dashboard>`.
    pub fn dashboard_addr(&self) -> String {
        format!("127.0.0.1:{}", self.dashboard)
    }

    /// The GCS address on loopback, as `--address` of `ray start` and `ray status` takes it.
    pub fn gcs_addr(&self) -> String {
        format!("127.0.0.1:{}", self.gcs)
    }

    /// The fixed ports of this set (worker range as its two ends and everything between).
    fn fixed(&self) -> Vec<u16> {
        let mut v = vec![self.gcs, self.dashboard, self.client, self.agent_listen];
        v.extend(
            [
                self.agent_grpc,
                self.node_manager,
                self.object_manager,
                self.metrics_export,
                self.runtime_env_agent,
            ]
            .into_iter()
            .flatten(),
        );
        if let Some((lo, hi)) = self.workers {
            v.extend(lo..=hi);
        }
        v
    }

    /// Whether two sets share a port (two heads with overlapping sets cannot both start).
    pub fn overlaps(&self, other: &Ports) -> bool {
        let mine = self.fixed();
        other.fixed().iter().any(|p| mine.contains(p))
    }

    /// The `ray start --head` flags of this set. A port equal to Ray's own default gets no
    /// flag, so a head on [`Ports::default`] is started with exactly the command line it
    /// had before ports were configurable. (A probe test that found no Ray Client on 10001
    /// had probed before that server bound its port: see [`Ray::wait_listening`].)
    pub fn head_args(&self) -> Vec<String> {
        let ray = Ports::default();
        let mut a = Vec::new();
        for (flag, port, default) in [
            ("--port", self.gcs, ray.gcs),
            ("--dashboard-port", self.dashboard, ray.dashboard),
            ("--ray-client-server-port", self.client, ray.client),
            (
                "--dashboard-agent-listen-port",
                self.agent_listen,
                ray.agent_listen,
            ),
        ] {
            if port != default {
                a.push(flag.to_string());
                a.push(port.to_string());
            }
        }
        for (flag, port) in [
            ("--dashboard-agent-grpc-port", self.agent_grpc),
            ("--node-manager-port", self.node_manager),
            ("--object-manager-port", self.object_manager),
            ("--metrics-export-port", self.metrics_export),
            ("--runtime-env-agent-port", self.runtime_env_agent),
        ] {
            if let Some(p) = port {
                a.push(flag.into());
                a.push(p.to_string());
            }
        }
        if let Some((lo, hi)) = self.workers {
            a.extend([
                "--min-worker-port".into(),
                lo.to_string(),
                "--max-worker-port".into(),
                hi.to_string(),
            ]);
        }
        a
    }
}

/// A fresh random cluster token (48 hex digits), as `RAY_AUTH_TOKEN` takes it.
pub fn random_token() -> String {
    use std::io::Read;
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("read /dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One test's Ray processes. Drop stops all of them.
///
/// A head binds the ports of its [`Ports`], so two heads with overlapping sets cannot run
/// at once in one network namespace: a `Ray` holds its port set in a process-wide table
/// until it is dropped, and a `Ray` whose set overlaps one held waits its turn. Tests that
/// hold two heads take [`Ports::default`] first, then [`Ports::second`] (one order, so two
/// such tests cannot deadlock).
///
/// Stopping is by marker, never `ray stop` (which stops every head on the machine): each
/// `Ray` has its own marker and its own temp dir (HOME, `--temp-dir`, session dirs), so
/// dropping one head leaves the other running.
pub struct Ray {
    venv: PathBuf,
    tag: String,
    ports: Ports,
    dir: tempfile::TempDir,
}

/// The port sets of the `Ray`s alive in this process, and a wake-up for those waiting.
static HELD: std::sync::Mutex<Vec<Ports>> = std::sync::Mutex::new(Vec::new());
static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

impl Ray {
    /// A guard for a head on [`Ports::default`] (Ray's default ports).
    pub fn new() -> Ray {
        Ray::with_ports(Ports::default())
    }

    /// Reads `RAYWARD_RAY_VENV` (panics naming it when unset), checks it holds `bin/ray`,
    /// and waits until no live `Ray` of this process holds a port of `ports`.
    pub fn with_ports(ports: Ports) -> Ray {
        let venv = crate::env_path("RAYWARD_RAY_VENV");
        assert!(
            venv.join("bin/ray").is_file(),
            "RAYWARD_RAY_VENV={} has no bin/ray (scripts/ray-venv.sh creates it)",
            venv.display()
        );
        // A test that panicked with Ray up poisons the lock; its processes are stopped by
        // then (drop runs while unwinding), so the next test may go on.
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        while held.iter().any(|h| h.overlaps(&ports)) {
            held = RELEASED.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        held.push(ports);
        drop(held);
        Ray {
            venv,
            tag: process::new_tag("ray"),
            ports,
            dir: crate::short_temp_dir(),
        }
    }

    /// The ports of this guard's head.
    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The head's dashboard (Jobs API) on loopback, `127.0.0.1:<port>`.
    pub fn dashboard(&self) -> String {
        self.ports.dashboard_addr()
    }

    /// The guard's temp dir (short path); logs of every command run go to `logs/` in it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The marker every process of this guard carries.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// A `ray` command for the node called `node`: `HOME` is `<dir>/<node>/home` (no token
    /// file or config leaks in from the real home), usage stats off, inherited `RAY_*`
    /// variables removed, TLS variables set when `tls` is given, and the marker.
    pub fn command(&self, node: &str, tls: Option<&Tls>) -> Command {
        let home = self.dir().join(node).join("home");
        std::fs::create_dir_all(&home).expect("create node HOME");
        let mut c = Command::new(self.venv.join("bin/ray"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("RAY_") {
                c.env_remove(k);
            }
        }
        // The venv's own tools first, as an activated venv has them.
        let path = format!(
            "{}:{}",
            self.venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("HOME", &home)
            .env("PATH", path)
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .env(TAG_VAR, &self.tag);
        if let Some(t) = tls {
            c.env("RAY_USE_TLS", "1")
                .env("RAY_TLS_SERVER_CERT", &t.cert)
                .env("RAY_TLS_SERVER_KEY", &t.key)
                .env("RAY_TLS_CA_CERT", &t.ca);
        }
        c
    }

    /// `--temp-dir` for node `node` (short, inside the guard's dir).
    pub fn temp_dir(&self, node: &str) -> PathBuf {
        self.dir().join(node).join("t")
    }

    /// Runs `cmd` with a deadline; output is logged under `<dir>/logs/<name>.{out,err}`.
    pub fn run(&self, cmd: &mut Command, name: &str, deadline: Duration) -> Outcome {
        let logs = self.dir().join("logs");
        std::fs::create_dir_all(&logs).expect("create logs dir");
        process::run_with_deadline(cmd, &logs, name, deadline)
    }

    /// `ray start --head` on 127.0.0.1 with one CPU and this guard's [`Ports`].
    pub fn start_head(&self, tls: Option<&Tls>, deadline: Duration) -> Outcome {
        let mut c = self.command("head", tls);
        c.args(["start", "--head", "--node-ip-address", "127.0.0.1"])
            .args(["--dashboard-host", "127.0.0.1", "--num-cpus", "1"])
            .args(self.ports.head_args())
            .arg("--disable-usage-stats")
            .arg("--temp-dir")
            .arg(self.temp_dir("head"));
        self.run(&mut c, "start-head", deadline)
    }

    /// Waits until something accepts TCP connections on `127.0.0.1:port`, polling every
    /// 200 ms. Why: `ray start --head` returns once GCS, raylet and dashboard are up, but the
    /// Ray Client server (10001) is a separate Python process that binds its port when its
    /// imports are done, seconds later on a loaded machine (a CI run probed it too early).
    /// On timeout the error carries the tail of the head's `ray_client_server*` logs.
    pub fn wait_listening(&self, port: u16, deadline: Duration) -> Result<Duration, String> {
        let start = std::time::Instant::now();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let logs = self.temp_dir("head").join("session_latest").join("logs");
        let mut tails = String::new();
        if let Ok(rd) = std::fs::read_dir(&logs) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("ray_client_server") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: String = text
                        .chars()
                        .rev()
                        .take(2000)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    tails.push_str(&format!("--- {name}:\n{tail}\n"));
                }
            }
        }
        Err(format!(
            "nothing listens on {addr} after {deadline:?}; {}:\n{tails}",
            logs.display()
        ))
    }

    /// `ray start --head` as [`Ray::start_head`], with Ray's token authentication on
    /// (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN`) and the dashboard on [`Ray::dashboard`]:
    /// the cluster the gateway fronts.
    pub fn start_head_with_token(&self, token: &str, deadline: Duration) -> Outcome {
        let mut c = self.command("head", None);
        c.env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", token)
            .args(["start", "--head", "--node-ip-address", "127.0.0.1"])
            .args(["--dashboard-host", "127.0.0.1", "--num-cpus", "1"])
            .args(self.ports.head_args())
            .args(["--include-dashboard", "true", "--disable-usage-stats"])
            .arg("--temp-dir")
            .arg(self.temp_dir("head"));
        self.run(&mut c, "start-head", deadline)
    }

    /// `ray job <args[0]> --address <address> [--headers {"Authorization": auth}]
    /// <args[1..]>` as a client with home `client` and no Ray token of its own (the
    /// command strips `RAY_*`), logged as `job-<client>-<n>`.
    pub fn job(
        &self,
        client: &str,
        address: &str,
        auth: Option<&str>,
        args: &[&str],
        deadline: Duration,
    ) -> Outcome {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        // Options go right after the subcommand: anything after `--` is the entrypoint.
        let (sub, rest) = args.split_first().expect("a `ray job` subcommand");
        let mut c = self.command(client, None);
        c.arg("job").arg(sub).arg("--address").arg(address);
        if let Some(a) = auth {
            c.arg("--headers")
                .arg(serde_json::json!({ "Authorization": a }).to_string());
        }
        c.args(rest);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.run(&mut c, &format!("job-{client}-{n}"), deadline)
    }

    /// `ray start --address 127.0.0.1:<gcs>` as node `node`; `agent_port` must differ per
    /// node (the head's dashboard agent has [`Ports::agent_listen`]).
    pub fn start_node(
        &self,
        node: &str,
        tls: Option<&Tls>,
        agent_port: u16,
        deadline: Duration,
    ) -> Outcome {
        let mut c = self.command(node, tls);
        c.args(["start", "--address"])
            .arg(self.ports.gcs_addr())
            .args(["--node-ip-address", "127.0.0.1"])
            .args(["--num-cpus", "1", "--disable-usage-stats"])
            .arg("--dashboard-agent-listen-port")
            .arg(agent_port.to_string())
            .arg("--temp-dir")
            .arg(self.temp_dir(node));
        self.run(&mut c, &format!("start-{node}"), deadline)
    }

    /// `ray status --address 127.0.0.1:<gcs>` as a client with home `client`.
    pub fn status(&self, client: &str, tls: Option<&Tls>, deadline: Duration) -> Outcome {
        let mut c = self.command(client, tls);
        c.args(["status", "--address"]).arg(self.ports.gcs_addr());
        self.run(&mut c, &format!("status-{client}"), deadline)
    }

    /// Processes of this guard still running (pid, command line).
    pub fn processes(&self) -> Vec<(i32, String)> {
        process::tagged(&self.tag)
    }

    /// Kills every process of this guard; returns those that survived (normally none).
    pub fn stop_all(&self) -> Vec<(i32, String)> {
        process::kill_tagged(&self.tag)
    }
}

impl Default for Ray {
    fn default() -> Self {
        Ray::new()
    }
}

impl Drop for Ray {
    fn drop(&mut self) {
        let left = self.stop_all();
        if !left.is_empty() {
            eprintln!("rayward-testkit: Ray processes survived SIGKILL: {left:?}");
        }
        // Only now may another head bind these ports.
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = held.iter().position(|h| *h == self.ports) {
            held.remove(i);
        }
        drop(held);
        RELEASED.notify_all();
    }
}

/// The number of active nodes in `ray status` output: the sum of the counts on the lines
/// between `Active:` and `Pending:` (` 1 node_<id>`). `None` when there is no such section
/// (the command did not reach the cluster).
pub fn active_nodes(status_stdout: &str) -> Option<usize> {
    let mut lines = status_stdout.lines().skip_while(|l| l.trim() != "Active:");
    lines.next()?;
    let mut n = 0;
    for l in lines {
        let l = l.trim();
        if l.ends_with(':') {
            break;
        }
        let mut words = l.split_whitespace();
        if let (Some(count), Some(id)) = (words.next(), words.next()) {
            if id.starts_with("node_") {
                n += count.parse::<usize>().ok()?;
            }
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Measured output of `ray status` on Ray 2.60.0 with a head and one more node.
    const TWO: &str = "======== Autoscaler status: 2026-11-27 02:21:23.524454 ========
Node status
---------------------------------------------------------------
Active:
 1 node_867cd7c813e66648d145ed62667df722133a6cd54fd678b5eed982c9
 1 node_910a1633df794312f62d61ed821c90addfdb5342b434902c8ac3fecb
Pending:
 (no pending nodes)
Recent failures:
 (no failures)

Resources
---------------------------------------------------------------
Total Usage:
 0.0/2.0 CPU
";

    #[test]
    fn counts_active_nodes() {
        assert_eq!(active_nodes(TWO), Some(2));
        let one = TWO.replace(
            " 1 node_910a1633df794312f62d61ed821c90addfdb5342b434902c8ac3fecb\n",
            "",
        );
        assert_eq!(active_nodes(&one), Some(1));
        let none = "Active:\n (no active nodes)\nPending:\n";
        assert_eq!(active_nodes(none), Some(0));
    }

    #[test]
    fn no_section_is_none() {
        assert_eq!(active_nodes(""), None);
        assert_eq!(
            active_nodes("ray.exceptions.RpcError: Timed out while waiting for GCS"),
            None
        );
    }
}
