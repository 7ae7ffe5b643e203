//! `kubectl rayward`: the binary as a kubectl plugin (installed as `kubectl-rayward`), run
//! through the real kubectl, and its krew manifest checked by krew's own rules.

use rayward_testkit::cli;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn kubectl() -> String {
    let bin = std::env::var("RAYWARD_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    assert!(
        Command::new(&bin)
            .arg("version")
            .arg("--client")
            .output()
            .is_ok(),
        "kubectl not found (`{bin}`): install it or set RAYWARD_KUBECTL"
    );
    bin
}

/// A PATH whose first folder holds `kubectl-rayward`, a link to the built binary (what a
/// user's install or krew makes).
fn plugin_path(dir: &Path) -> std::ffi::OsString {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("kubectl-rayward");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rayward"), &link).unwrap();
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

#[test]
fn kubectl_runs_rayward_as_a_plugin() {
    let dir = cli::tmp("kubectl-plugin");
    let path = plugin_path(&dir);
    let root = cli::repo_root();
    let list = Command::new(kubectl())
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("kubectl-rayward"), "{listed}");

    // The same audit as the binary gives, through kubectl.
    let args = [
        "audit",
        "--no-config",
        "--format",
        "json",
        "examples/insecure",
    ];
    let through = Command::new(kubectl())
        .arg("rayward")
        .args(args)
        .current_dir(&root)
        .env("PATH", &path)
        .output()
        .unwrap();
    let direct = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(args)
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(
        through.status.code(),
        Some(1),
        "findings exit 1 through kubectl too"
    );
    let a: Value = serde_json::from_slice(&through.stdout).unwrap();
    let b: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(a["findings"], b["findings"]);
    assert!(!a["findings"].as_array().unwrap().is_empty());

    // Usage and errors name the command as typed.
    let help = Command::new(kubectl())
        .args(["rayward", "--help"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: kubectl rayward <COMMAND>"), "{help}");
    let bad = Command::new(kubectl())
        .args(["rayward", "audit", "--no-such-flag"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("Usage: kubectl rayward audit"), "{err}");
    // Under its own name it stays `rayward`.
    let own = cli::command(env!("CARGO_BIN_EXE_rayward"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&own.stdout).contains("Usage: rayward <COMMAND>"));
}

/// plugins/rayward.yaml under krew's rules (sigs.k8s.io/krew internal/index/validation:
/// ValidatePlugin, validatePlatform, validateFiles, validateSelector), restated here
/// because krew itself is not installable on these machines (GitHub releases only).
#[test]
fn krew_manifest_is_valid_by_krews_rules() {
    let root = cli::repo_root();
    let file = root.join("plugins/rayward.yaml");
    let m = rayward_testkit::yaml::load_manifests(&file).unwrap();
    assert_eq!(m.len(), 1);
    let p = &m[0].value;
    assert_eq!(
        p["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(p["kind"], "Plugin");
    let name = p["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        Some(name),
        file.file_stem().and_then(|s| s.to_str()),
        "named as its file"
    );
    assert!(name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    let windows = ["CON", "PRN", "AUX", "NUL"];
    assert!(!windows.iter().any(|w| w.eq_ignore_ascii_case(name)));
    let spec = &p["spec"];
    let short = spec["shortDescription"].as_str().unwrap();
    assert!(!short.is_empty() && !short.contains(['\r', '\n']));
    // krew's semver.Parse wants a leading `v`; the version is the crate's.
    assert_eq!(
        spec["version"].as_str().unwrap(),
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    let platforms = spec["platforms"].as_array().unwrap();
    assert!(!platforms.is_empty());
    for pl in platforms {
        let uri = pl["uri"].as_str().unwrap();
        assert!(uri.starts_with("https://"), "{uri}");
        let sha = pl["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{sha}"
        );
        let bin = pl["bin"].as_str().unwrap();
        assert!(!bin.is_empty());
        let files = pl["files"].as_array().unwrap();
        assert!(!files.is_empty());
        for f in files {
            assert!(!f["from"].as_str().unwrap().is_empty());
            assert!(!f["to"].as_str().unwrap().is_empty());
        }
        assert!(
            files.iter().any(|f| f["from"] == bin),
            "the bin is among the files installed"
        );
        let sel = pl["selector"].as_object().expect("a selector");
        let labels = sel["matchLabels"].as_object().unwrap();
        assert!(!labels.is_empty());
        assert!(
            labels.keys().all(|k| k == "os" || k == "arch"),
            "{labels:?}"
        );
    }
}
