//! Inputs that are not regular files (issue 10 §3): /dev/zero and /dev/urandom used to be
//! read without bound (their metadata says size 0), and a FIFO blocked the run forever so
//! the other inputs were never audited. Now each is refused at once with its name and
//! exit 2, and the other inputs are still audited (or, for harden, nothing is written).

use rayward_testkit::cli::{self, run_within};
use std::process::{Command, Stdio};
use std::time::Duration;

fn example() -> String {
    format!(
        "{}/../../examples/insecure/rayjob.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn fifo(tag: &str) -> String {
    let p = std::env::temp_dir().join(format!("rayward-fifo-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let ok = Command::new("mkfifo").arg(&p).status().unwrap();
    assert!(ok.success());
    p.display().to_string()
}

fn run(args: &[&str]) -> (i32, String, String) {
    run_within(
        cli::command(env!("CARGO_BIN_EXE_rayward"))
            .args(args)
            .stdin(Stdio::null()),
        Duration::from_secs(20),
    )
}

#[test]
fn devices_and_fifos_are_refused_and_the_rest_is_audited() {
    let fifo = fifo("audit");
    let ex = example();
    let (code, out, err) = run(&["audit", "/dev/zero", &fifo, "/dev/urandom", &ex]);
    assert_eq!(code, 2, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("/dev/zero: cannot read: a character device"),
        "{all}"
    );
    assert!(
        all.contains("/dev/urandom: cannot read: a character device"),
        "{all}"
    );
    assert!(
        all.contains(&format!("{fifo}: cannot read: a FIFO")),
        "{all}"
    );
    // The regular file was audited all the same.
    assert!(all.contains("RW801"), "{all}");
    std::fs::remove_file(&fifo).ok();
}

#[test]
fn harden_refuses_them_too() {
    let fifo = fifo("harden");
    for input in ["/dev/zero", fifo.as_str()] {
        let (code, out, err) = run(&["harden", input, &example()]);
        assert_eq!(code, 2, "{input}: {out}{err}");
        assert!(
            format!("{out}{err}").contains(&format!("{input}: cannot read")),
            "{err}"
        );
    }
    std::fs::remove_file(&fifo).ok();
}
