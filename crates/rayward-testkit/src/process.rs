//! Running tools with a deadline, and finding every process a test started by a marker in
//! its environment.
//!
//! Why a marker: `ray start` daemonizes (GCS, raylet, dashboard, agents, workers are not our
//! children), and `ray stop` kills every Ray process *on the machine* — other tests' clusters
//! included. Every process started here carries `RAYWARD_TESTKIT_TAG=<unique>` and inherits it
//! to its descendants, so `/proc/*/environ` tells exactly which processes are ours.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// Name of the environment variable that marks a test's processes.
pub const TAG_VAR: &str = "RAYWARD_TESTKIT_TAG";

/// A unique marker value for one guard.
pub fn new_tag(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{what}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

/// What a command did within its deadline.
#[derive(Debug)]
pub struct Outcome {
    /// `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "exit {s} after {:.1?}", self.elapsed)?,
            None => write!(f, "killed at the deadline after {:.1?}", self.elapsed)?,
        }
        write!(
            f,
            "\n--- stdout\n{}\n--- stderr\n{}",
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

fn tail(s: &str) -> &str {
    let max = 6000;
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Runs `cmd` in its own process group with output to files in `logs` (never pipes: the
/// daemons `ray start` leaves behind inherit its descriptors and would hold a pipe open).
/// At the deadline the whole group is killed. `name` names the log files.
pub fn run_with_deadline(
    cmd: &mut Command,
    logs: &Path,
    name: &str,
    deadline: Duration,
) -> Outcome {
    let out_path = logs.join(format!("{name}.out"));
    let err_path = logs.join(format!("{name}.err"));
    let out = File::create(&out_path).expect("create stdout log");
    let err = File::create(&err_path).expect("create stderr log");
    let start = Instant::now();
    let mut child = cmd
        .stdout(out)
        .stderr(err)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(s) => break Some(s),
            None if start.elapsed() >= deadline => {
                // SAFETY: kill(2) on the child's own process group; no memory is touched.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let elapsed = start.elapsed();
    Outcome {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        elapsed,
    }
}

/// Processes (pid, command line) whose environment holds `TAG_VAR=tag`, this process
/// excluded. Zombies have an empty environment and do not count.
pub fn tagged(tag: &str) -> Vec<(i32, String)> {
    let needle = format!("{TAG_VAR}={tag}");
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            let cmdline = std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            found.push((pid, cmdline));
        }
    }
    found
}

/// The process group of `pid` (`/proc/<pid>/stat`, the field after state and ppid).
fn pgid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Live (non-zombie) processes in one of `groups`, this process excluded.
fn in_groups(groups: &std::collections::BTreeSet<i32>) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || !pgid_of(pid).is_some_and(|g| groups.contains(&g)) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline.is_empty() {
            continue; // a zombie (or a kernel thread): nothing to kill
        }
        found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
    }
    found
}

/// SIGKILLs every process tagged `tag`, and every process in the same process group as
/// one (`ray start` runs in a group of its own, see [`run_with_deadline`]), until none is
/// left (at most ~10 s); returns those still alive after that (normally none).
///
/// The groups matter: Ray's agents and dashboard modules rename themselves with
/// setproctitle (`ray::DashboardAgent`), which overwrites the memory `/proc/<pid>/environ`
/// shows, so their marker vanishes. Seen: a test's dashboard agent outlived it and kept
/// port 52365, and the next test's head had "No available agent to submit job".
pub fn kill_tagged(tag: &str) -> Vec<(i32, String)> {
    let start = Instant::now();
    let own_group = pgid_of(std::process::id() as i32);
    let mut groups = std::collections::BTreeSet::new();
    loop {
        let mut left = tagged(tag);
        for (pid, _) in &left {
            if let Some(g) = pgid_of(*pid).filter(|g| Some(*g) != own_group && *g > 1) {
                groups.insert(g);
            }
        }
        for p in in_groups(&groups) {
            if !left.iter().any(|(pid, _)| *pid == p.0) {
                left.push(p);
            }
        }
        if left.is_empty() || start.elapsed() > Duration::from_secs(10) {
            return left;
        }
        for (pid, _) in &left {
            // SAFETY: kill(2) of a pid we just read from /proc; no memory is touched.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
