//! Running the `rayward` binary from a test: the binary's path comes from the test
//! (`env!("CARGO_BIN_EXE_rayward")` exists only in the rayward crate's own tests), the rest
//! is here, written once.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A command for the binary at `bin`, colour off.
pub fn command(bin: &str) -> Command {
    let mut c = Command::new(bin);
    c.env("NO_COLOR", "1");
    c
}

/// Runs `cmd` to the end: (exit code, stdout, stderr). A command killed by a signal is a
/// test failure (a panic in rayward exits 101; a signal means something worse).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().expect("the command runs");
    (
        o.status.code().expect("exited, not killed by a signal"),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// [`run`] with `input` on standard input.
pub fn run_stdin(cmd: &mut Command, input: &[u8]) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    let mut stdin = child.stdin.take().expect("piped");
    // A command that stops reading early (an error on the first bytes) closes the pipe:
    // that is its answer, not the test's failure.
    let _ = stdin.write_all(input);
    drop(stdin);
    let o = child.wait_with_output().expect("the command ends");
    (
        o.status.code().expect("exited, not killed by a signal"),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// An empty folder for one test, `rayward-<pid>-<name>` under the temp dir; emptied if a
/// previous run left it. Test binaries are separate processes, so the pid keeps parallel
/// binaries apart and `name` keeps the tests of one binary apart.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rayward-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create the test folder");
    d
}

/// The repository's root (where `examples/` and `Cargo.toml` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// [`run`] with a deadline: a command still running after `limit` is killed and the test
/// fails, naming it (a hang must fail, not block the suite).
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> (i32, String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    // The pipes are drained by wait_with_output on its own thread, so a command that
    // writes a lot cannot block on a full pipe while the deadline runs.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(o) => {
            let o = o.expect("the command ends");
            (
                o.status.code().expect("exited, not killed by a signal"),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        }
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped
            // (its waiter thread is still blocked in wait).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            panic!("{cmd:?} did not finish in {limit:?}");
        }
    }
}
