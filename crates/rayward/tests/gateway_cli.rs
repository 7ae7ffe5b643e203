//! `rayward gateway` and `rayward gateway passwd` from the command line: exit codes and
//! messages for good and bad input.

use rayward_testkit::cli::run_stdin;
use std::process::Command;

fn run(args: &[&str], stdin: &str) -> (i32, String, String) {
    run_stdin(
        Command::new(env!("CARGO_BIN_EXE_rayward")).args(args),
        stdin.as_bytes(),
    )
}

#[test]
fn passwd_adds_and_changes_users_with_bcrypt() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("htpasswd");
    let fs = f.to_str().unwrap();
    let (code, _, err) = run(
        &["gateway", "passwd", fs, "alice", "--cost", "4"],
        "Secret-Pass1\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("added user alice"), "{err}");
    let (code, _, err) = run(
        &["gateway", "passwd", fs, "alice", "--cost", "4"],
        "Other-Pass22\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("updated user alice"), "{err}");
    let text = std::fs::read_to_string(&f).unwrap();
    assert_eq!(text.lines().count(), 1);
    let hash = text.trim().strip_prefix("alice:").unwrap();
    assert!(hash.starts_with("$2y$04$"), "{hash}");
    assert!(bcrypt::verify("Other-Pass22", hash).unwrap());
}

#[test]
fn passwd_refuses_weak_passwords_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("htpasswd");
    let fs = f.to_str().unwrap();
    for (user, pw, want) in [
        ("bob", "short1A", "8 to 30 characters"),
        ("bob", "alllowercase1", "at least three"),
        (
            "bob",
            "Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!",
            "8 to 30 characters",
        ),
        ("b:ob", "Secret-Pass1", "user name"),
    ] {
        let (code, _, err) = run(
            &["gateway", "passwd", fs, user, "--cost", "4"],
            &format!("{pw}\n"),
        );
        assert_eq!(code, 2, "{user} {pw}: {err}");
        assert!(err.contains(want), "{err}");
    }
    assert!(!f.exists(), "nothing written");
}

#[test]
fn gateway_config_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("gw.toml");
    std::fs::write(
        &c,
        "listen = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:8265\"\nlisten_port = 3\n",
    )
    .unwrap();
    let (code, _, err) = run(&["gateway", "--config", c.to_str().unwrap()], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{}:3:1", c.display())), "{err}");

    let (code, _, err) = run(&["gateway"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--config"), "{err}");

    let (code, _, err) = run(&["gateway", "--config", "/nonexistent/gw.toml"], "");
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/gw.toml"), "{err}");
}

#[test]
fn an_unreadable_file_names_its_path_and_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let (code, _, err) = run(&["gateway", "--config", missing.to_str().unwrap()], "");
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches("missing.toml").count(), 1, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    // passwd into a folder that does not exist
    let f = dir.path().join("no-such-dir/htpasswd");
    let (code, _, err) = run(
        &[
            "gateway",
            "passwd",
            f.to_str().unwrap(),
            "alice",
            "--cost",
            "4",
        ],
        "Secret-Pass1\n",
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
