//! `harden -o DIR` writes only inside DIR and never over a user's file (issue 10 §4): an
//! input named `companions.yaml` keeps its name (the companions move aside), and
//! `--stdin-name ../x.yaml`, an absolute name or a symbolic link in DIR are refused with
//! exit 2 before anything is written.

use rayward_testkit::cli::tmp;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/insecure/raycluster.yaml")
}

fn harden(args: &[&str], cwd: &Path, stdin: Option<&[u8]>) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .arg("harden")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(b) = stdin {
        input.write_all(b).unwrap();
    }
    drop(input);
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn an_input_named_companions_yaml_is_kept() {
    let d = tmp("companions");
    std::fs::create_dir_all(d.join("in")).unwrap();
    std::fs::copy(example(), d.join("in/companions.yaml")).unwrap();
    let (code, err) = harden(&["in", "-o", "out", "--namespace", "t"], &d, None);
    assert!(code == 0 || code == 1, "{err}");
    let user = std::fs::read_to_string(d.join("out/companions.yaml")).unwrap();
    assert!(
        user.contains("kind: RayCluster"),
        "the user's file was overwritten:\n{user}"
    );
    let companions = std::fs::read_to_string(d.join("out/companions-1.yaml")).unwrap();
    assert!(companions.contains("kind: NetworkPolicy"), "{companions}");
    assert!(err.contains("companions-1.yaml"), "{err}");
}

#[test]
fn outputs_that_would_leave_the_folder_are_refused() {
    let d = tmp("escape");
    let input = std::fs::read(example()).unwrap();
    for name in [
        "../x.yaml",
        "/tmp/rayward-escape.yaml",
        "a/../../x.yaml",
        "",
    ] {
        let (code, err) = harden(&["-", "--stdin-name", name, "-o", "out"], &d, Some(&input));
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.contains("would leave") || err.contains("error"),
            "{name}: {err}"
        );
        assert!(!d.join("x.yaml").exists() && !d.parent().unwrap().join("x.yaml").exists());
        assert!(!d.join("out").exists(), "{name}: something was written");
    }
    // A symbolic link inside the output folder is not written through.
    std::fs::create_dir_all(d.join("out2")).unwrap();
    let outside = d.join("outside.yaml");
    std::os::unix::fs::symlink(&outside, d.join("out2/stdin.yaml")).unwrap();
    let (code, err) = harden(&["-", "-o", "out2"], &d, Some(&input));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!outside.exists());
}
