//! Resource budgets for hostile input (issue 10 §3): any input of at most 1 MB is answered
//! by `rayward audit` and `rayward harden` under 100 MB of memory, with a clear error where
//! it must be refused, and without a blow-up in time. Memory is the child's peak RSS from
//! wait4(2), so the numbers are the real process's. Time is only a guard against the
//! quadratic and exponential cases (debug build, shared machine); the 1 s budget itself is
//! measured on the release binary by `bench/audit/hostile.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MB: usize = 1024 * 1024;

/// Runs `rayward ARGS FILE`; returns (exit code, peak RSS in bytes, wall time, output).
// The child is reaped by wait4(2) below, which also gives its rusage; `Child::wait` would
// not.
#[allow(clippy::zombie_processes)]
fn measure(args: &[&str], file: &Path) -> (i32, u64, Duration, String) {
    let err = file.with_extension("stderr");
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(args)
        .arg(file)
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(file.with_extension("stdout")).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is a valid value; wait4 fills it for our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let took = start.elapsed();
    assert!(libc::WIFEXITED(status), "rayward died: status {status}");
    (
        libc::WEXITSTATUS(status),
        ru.ru_maxrss as u64 * 1024,
        took,
        // The report (stdout) lists input errors too; keep both for the checks.
        std::fs::read_to_string(err).unwrap_or_default()
            + &std::fs::read_to_string(file.with_extension("stdout")).unwrap_or_default(),
    )
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rayward-budgets-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// 100 anchors nested one inside the other, each level a flow map of `width` keys, and
/// no alias at all (with `alias`, one alias to the outermost at the end).
fn nested_anchors(levels: usize, width: usize, alias: bool) -> String {
    let mut s =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec:\n  top: ");
    for l in 0..levels {
        s.push_str(&format!("&a{l} {{"));
        for k in 0..width {
            s.push_str(&format!("k{k}: {k}, "));
        }
        s.push_str("next: ");
    }
    s.push('x');
    s.push_str(&"}".repeat(levels));
    s.push('\n');
    if alias {
        s.push_str("  copy: *a0\n");
    }
    s
}

/// `n` merge keys in one mapping, each merging a one-key map, inline or by alias.
fn merge_keys(n: usize, alias: bool) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nbase: &b {x: 1}\nspec:\n",
    );
    for i in 0..n {
        if alias {
            s.push_str("  <<: *b\n");
        } else {
            s.push_str(&format!("  <<: {{k{i}: 1}}\n"));
        }
    }
    s
}

/// A RayJob whose `runtimeEnvYAML` holds `inner` (indented as a literal block).
fn in_runtime_env(inner: &str) -> String {
    let mut s = String::from(
        "apiVersion: ray.io/v1\nkind: RayJob\nmetadata: {name: j, namespace: t}\nspec:\n  entrypoint: python x.py\n  runtimeEnvYAML: |\n",
    );
    for line in inner.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn check(name: &str, text: &str, expect_error: bool) {
    assert!(text.len() <= MB, "{name}: {} bytes", text.len());
    let f = dir().join(format!("{name}.yaml"));
    std::fs::write(&f, text).unwrap();
    for args in [&["audit"][..], &["harden", "--diff"][..]] {
        let (code, rss, took, err) = measure(args, &f);
        eprintln!(
            "{name} ({} KB) {args:?}: exit {code}, {} MB peak, {:.2} s",
            text.len() / 1024,
            rss / MB as u64,
            took.as_secs_f64()
        );
        assert!(
            code == 0 || code == 1 || code == 2,
            "{name} {args:?}: exit {code}: {err}"
        );
        if expect_error {
            assert_eq!(code, 2, "{name} {args:?} must be refused: {err}");
            assert!(
                err.contains(&format!("{name}.yaml:")),
                "{name}: error names no file:line: {err}"
            );
        }
        assert!(
            rss < 100 * MB as u64,
            "{name} {args:?}: {} MB peak",
            rss / MB as u64
        );
        assert!(took < Duration::from_secs(20), "{name} {args:?}: {took:?}");
    }
}

#[test]
fn nested_anchors_without_aliases_cost_nothing_extra() {
    check("anchors", &nested_anchors(100, 900, false), false);
}

#[test]
fn nested_anchors_with_an_alias_stop_at_the_budget() {
    check("anchors-alias", &nested_anchors(100, 900, true), true);
}

#[test]
fn forty_thousand_merge_keys_are_linear() {
    check("merges", &merge_keys(40_000, false), false);
    // By alias, each merge is a copy charged to the alias budget (100,000 nodes).
    check("merges-alias", &merge_keys(40_000, true), true);
}

#[test]
fn anchors_inside_runtime_env_yaml() {
    check(
        "runtime-env",
        &in_runtime_env(&nested_anchors(60, 1000, false)),
        false,
    );
}

#[test]
fn alias_bomb_inside_runtime_env_yaml() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    check("runtime-env-bomb", &in_runtime_env(&bomb), false);
}
