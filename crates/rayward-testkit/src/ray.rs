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

/// The dashboard and Jobs API of a head started here: Ray's default port, on loopback.
pub const DASHBOARD: &str = "127.0.0.1:8265";

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
/// A Ray head takes fixed ports (GCS 6379, dashboard 8265, …), so two heads cannot run at
/// once in one network namespace: a `Ray` holds a process-wide lock until it is dropped,
/// and the tests of one binary that start Ray take turns.
pub struct Ray {
    venv: PathBuf,
    tag: String,
    dir: tempfile::TempDir,
    // Declared last: dropped after `Drop::drop` has stopped this guard's processes.
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// The turn of the one `Ray` alive in this process.
static ONE_HEAD_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Ray {
    /// Reads `RAYWARD_RAY_VENV` (panics naming it when unset) and checks it holds `bin/ray`.
    pub fn new() -> Ray {
        let venv = crate::env_path("RAYWARD_RAY_VENV");
        assert!(
            venv.join("bin/ray").is_file(),
            "RAYWARD_RAY_VENV={} has no bin/ray (scripts/ray-venv.sh creates it)",
            venv.display()
        );
        // A test that panicked with Ray up poisons the lock; its processes are stopped by
        // then (drop runs while unwinding), so the next test may go on.
        let turn = ONE_HEAD_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ray {
            venv,
            tag: process::new_tag("ray"),
            dir: crate::short_temp_dir(),
            _turn: turn,
        }
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

    /// `ray start --head` on 127.0.0.1 with one CPU and default ports (GCS 6379).
    pub fn start_head(&self, tls: Option<&Tls>, deadline: Duration) -> Outcome {
        let mut c = self.command("head", tls);
        c.args(["start", "--head", "--node-ip-address", "127.0.0.1"])
            .args(["--dashboard-host", "127.0.0.1", "--num-cpus", "1"])
            .arg("--disable-usage-stats")
            .arg("--temp-dir")
            .arg(self.temp_dir("head"));
        self.run(&mut c, "start-head", deadline)
    }

    /// `ray start --head` as [`Ray::start_head`], with Ray's token authentication on
    /// (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN`) and the dashboard on [`DASHBOARD`]: the
    /// cluster the gateway fronts.
    pub fn start_head_with_token(&self, token: &str, deadline: Duration) -> Outcome {
        let mut c = self.command("head", None);
        c.env("RAY_AUTH_MODE", "token")
            .env("RAY_AUTH_TOKEN", token)
            .args(["start", "--head", "--node-ip-address", "127.0.0.1"])
            .args(["--dashboard-host", "127.0.0.1", "--num-cpus", "1"])
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

    /// `ray start --address 127.0.0.1:6379` as node `node`; `agent_port` must differ per
    /// node (the head's dashboard agent has 52365).
    pub fn start_node(
        &self,
        node: &str,
        tls: Option<&Tls>,
        agent_port: u16,
        deadline: Duration,
    ) -> Outcome {
        let mut c = self.command(node, tls);
        c.args([
            "start",
            "--address",
            "127.0.0.1:6379",
            "--node-ip-address",
            "127.0.0.1",
        ])
        .args(["--num-cpus", "1", "--disable-usage-stats"])
        .arg("--dashboard-agent-listen-port")
        .arg(agent_port.to_string())
        .arg("--temp-dir")
        .arg(self.temp_dir(node));
        self.run(&mut c, &format!("start-{node}"), deadline)
    }

    /// `ray status --address 127.0.0.1:6379` as a client with home `client`.
    pub fn status(&self, client: &str, tls: Option<&Tls>, deadline: Duration) -> Outcome {
        let mut c = self.command(client, tls);
        c.args(["status", "--address", "127.0.0.1:6379"]);
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
