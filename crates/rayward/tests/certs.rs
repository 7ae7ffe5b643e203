//! `rayward certs` end to end: ca → node → check, and the failures Ray would hit.

use rayward_testkit::cli::{run, tmp};
use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.env("NO_COLOR", "1").env_remove("POD_IP");
    c
}

fn certs(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = bin();
    c.arg("certs");
    for a in args {
        c.arg(a);
    }
    c
}

fn ca(dir: &Path) {
    let (code, _, err) = run(&mut certs(&[&"ca", &"--out", &dir]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn ca_node_check_ok_and_another_ca_fails() {
    let d = tmp("e2e");
    ca(&d.join("ca"));
    let (code, _, err) = run(&mut certs(&[
        &"node",
        &"--ca",
        &d.join("ca"),
        &"--out",
        &d.join("node"),
        &"--ip",
        &"10.0.0.5",
        &"--dns",
        &"ray-head.svc",
    ]));
    assert_eq!(code, 0, "{err}");
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(d.join("node").join(f).is_file(), "{f}");
    }

    let (code, out, err) = run(&mut certs(&[&"check", &d.join("node")]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("IP:10.0.0.5, IP:127.0.0.1, DNS:localhost, DNS:ray-head.svc"),
        "{out}"
    );
    assert!(out.contains("serverAuth, clientAuth"), "{out}");
    assert!(out.contains("chain      verifies"), "{out}");

    let (code, out, _) = run(&mut certs(&[
        &"check",
        &d.join("node"),
        &"--ip",
        &"10.0.0.5",
    ]));
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = run(&mut certs(&[
        &"check",
        &d.join("node"),
        &"--ip",
        &"10.0.0.9",
    ]));
    assert_eq!(code, 1, "{out}");

    ca(&d.join("other"));
    let (code, out, _) = run(&mut certs(&[
        &"check",
        &d.join("node"),
        &"--ca",
        &d.join("other"),
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not signed by this CA"), "{out}");
}

#[test]
fn pod_ip_from_the_environment() {
    let d = tmp("podip");
    ca(&d.join("ca"));
    let (code, _, err) = run(
        certs(&[&"node", &"--ca", &d.join("ca"), &"--out", &d.join("n")]).env("POD_IP", "10.7.7.7"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&mut certs(&[&"check", &d.join("n"), &"--ip", &"10.7.7.7"]));
    assert_eq!(code, 0, "{out}");

    // Neither --ip nor POD_IP: usage error, exit 2.
    let (code, _, err) = run(&mut certs(&[
        &"node",
        &"--ca",
        &d.join("ca"),
        &"--out",
        &d.join("m"),
    ]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("rayward: error: ") && err.contains("POD_IP"),
        "{err}"
    );
}

#[test]
fn existing_files_and_missing_files_are_errors_naming_the_file() {
    let d = tmp("exists");
    ca(&d);
    let (code, _, err) = run(&mut certs(&[&"ca", &"--out", &d]));
    assert_eq!(code, 2);
    assert!(
        err.contains(&d.join("ca.crt").display().to_string()) && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = run(&mut certs(&[
        &"ca",
        &"--out",
        &d,
        &"--force",
        &"--key",
        &"rsa-2048",
    ]));
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = run(&mut certs(&[&"check", &d.join("nothing")]));
    assert_eq!(code, 2);
    assert!(
        err.contains(&d.join("nothing").join("tls.crt").display().to_string()),
        "{err}"
    );
}

#[test]
fn secret_manifest_on_stdout() {
    let d = tmp("secret");
    let (code, out, err) = run(&mut certs(&[
        &"ca",
        &"--out",
        &d,
        &"--secret",
        &"ray-ca",
        &"--namespace",
        &"team-a",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("apiVersion: v1\nkind: Secret\n"), "{out}");
    assert!(
        out.contains("  namespace: team-a\ntype: Opaque\nstringData:\n  ca.crt: |\n"),
        "{out}"
    );
    assert!(
        out.contains("  ca.key: |\n    -----BEGIN PRIVATE KEY-----"),
        "{out}"
    );
}

#[test]
fn an_io_error_names_the_file_once_with_its_reason_once() {
    let d = tmp("io-error");
    let file = d.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.join("ca");
    let (code, _, err) = run(&mut certs(&[&"ca", &"--out", &out]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches(&*out.to_string_lossy()).count(), 1, "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
}
