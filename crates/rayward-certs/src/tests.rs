//! Generation, SANs, EKU, chain verification, file modes, overwrite rules, error messages.

use super::*;
use crate::issue::{issue_with, node_params};
use rcgen::ExtendedKeyUsagePurpose;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use x509_parser::extensions::GeneralName;

fn tmp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "rayward-certs-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn node_opts(ips: &[&str]) -> NodeOptions {
    NodeOptions {
        ips: ips.iter().map(|s| ip(s)).collect(),
        ..Default::default()
    }
}

/// A CA in `<root>/ca` and a node folder `<root>/node` issued with `opts`.
fn setup(name: &str, opts: &NodeOptions) -> (PathBuf, PathBuf) {
    let root = tmp(name);
    let ca = root.join("ca");
    let node = root.join("node");
    create_ca(&ca, &CaOptions::default()).unwrap();
    issue_node(&ca, &node, opts).unwrap();
    (ca, node)
}

fn der(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
}

fn sans(path: &Path) -> Vec<String> {
    let d = der(path);
    let (_, c) = x509_parser::parse_x509_certificate(&d).unwrap();
    let ext = c.subject_alternative_name().unwrap().unwrap();
    ext.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                format!("IP:{}", IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
            }
            other => format!("{other}"),
        })
        .collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn ca_is_a_ca_with_the_asked_lifetime() {
    let d = tmp("ca");
    let written = create_ca(
        &d,
        &CaOptions {
            days: 30,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(written, vec![d.join(CA_CERT), d.join(CA_KEY)]);
    let der = der(&d.join(CA_CERT));
    let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(c.is_ca());
    assert_eq!(c.subject().to_string(), "CN=rayward Ray CA");
    let days =
        (c.validity().not_after.to_datetime() - c.validity().not_before.to_datetime()).whole_days();
    assert_eq!(days, 30);
    let key = std::fs::read_to_string(d.join(CA_KEY)).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
}

#[cfg(unix)]
#[test]
fn private_keys_are_0600() {
    let (ca, node) = setup("mode", &node_opts(&["10.0.0.5"]));
    assert_eq!(mode(&ca.join(CA_KEY)), 0o600);
    assert_eq!(mode(&node.join(NODE_KEY)), 0o600);
    assert_eq!(mode(&node.join(NODE_CERT)), 0o644);
    // Also after --force replaced a file that was world-readable.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(node.join(NODE_KEY), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut o = node_opts(&["10.0.0.5"]);
    o.force = true;
    issue_node(&ca, &node, &o).unwrap();
    assert_eq!(mode(&node.join(NODE_KEY)), 0o600);
}

#[test]
fn nothing_is_overwritten_without_force() {
    let d = tmp("noforce");
    create_ca(&d, &CaOptions::default()).unwrap();
    let before = std::fs::read(d.join(CA_KEY)).unwrap();
    let e = create_ca(&d, &CaOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");
    assert!(
        msg.contains(&d.join(CA_CERT).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("--force"), "{msg}");
    assert_eq!(std::fs::read(d.join(CA_KEY)).unwrap(), before);
    create_ca(
        &d,
        &CaOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(std::fs::read(d.join(CA_KEY)).unwrap(), before);
}

#[test]
fn a_refusal_leaves_nothing_half_written() {
    let (ca, node) = setup("half", &node_opts(&["10.0.0.5"]));
    let other = node.parent().unwrap().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join(CA_CERT), "mine").unwrap();
    let e = issue_node(&ca, &other, &node_opts(&["10.0.0.5"])).unwrap_err();
    assert!(e.to_string().contains(CA_CERT), "{e}");
    assert!(!other.join(NODE_CERT).exists());
    assert!(!other.join(NODE_KEY).exists());
}

#[test]
fn node_sans_hold_ip_loopback_localhost_and_names() {
    let mut o = node_opts(&["10.1.2.3"]);
    o.dns = vec!["head.ray.svc".into(), "localhost".into()];
    let (_, node) = setup("sans", &o);
    assert_eq!(
        sans(&node.join(NODE_CERT)),
        [
            "IP:10.1.2.3",
            "IP:127.0.0.1",
            "DNS:localhost",
            "DNS:head.ray.svc"
        ]
    );
}

#[test]
fn pod_ip_is_used_when_no_ip_is_given() {
    let o = NodeOptions {
        pod_ip: Some("10.9.8.7".into()),
        ..Default::default()
    };
    let (_, node) = setup("podip", &o);
    assert_eq!(
        sans(&node.join(NODE_CERT)),
        ["IP:10.9.8.7", "IP:127.0.0.1", "DNS:localhost"]
    );
    // --ip wins over POD_IP.
    let o = NodeOptions {
        ips: vec![ip("10.0.0.1")],
        pod_ip: Some("10.9.8.7".into()),
        ..Default::default()
    };
    let (_, node) = setup("podip2", &o);
    assert_eq!(sans(&node.join(NODE_CERT))[0], "IP:10.0.0.1");
}

#[test]
fn no_ip_at_all_or_a_bad_pod_ip_is_a_usage_error() {
    let root = tmp("noip");
    create_ca(&root.join("ca"), &CaOptions::default()).unwrap();
    let e = issue_node(&root.join("ca"), &root.join("n"), &NodeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("POD_IP"), "{e}");
    let o = NodeOptions {
        pod_ip: Some("not-an-ip".into()),
        ..Default::default()
    };
    let e = issue_node(&root.join("ca"), &root.join("n"), &o).unwrap_err();
    assert!(e.to_string().contains("not-an-ip"), "{e}");
    assert!(!root.join("n").join(NODE_KEY).exists());
}

#[test]
fn node_eku_is_server_and_client() {
    let (_, node) = setup("eku", &node_opts(&["10.0.0.5"]));
    let d = der(&node.join(NODE_CERT));
    let (_, c) = x509_parser::parse_x509_certificate(&d).unwrap();
    let eku = c.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert!(!c.is_ca());
}

#[test]
fn a_fresh_node_folder_checks_ok() {
    let (ca, node) = setup("ok", &node_opts(&["10.0.0.5"]));
    let r = check(&node, &CheckOptions::default()).unwrap();
    assert!(r.ok(), "{r}");
    assert!(r.chain_verifies);
    assert_eq!(r.eku.as_deref().unwrap(), ["serverAuth", "clientAuth"]);
    assert!(r.days_left >= 364, "{r}");
    // The CA given as a folder or a file works too; the copy equals the original.
    for ca in [ca.clone(), ca.join(CA_CERT)] {
        let r = check(
            &node,
            &CheckOptions {
                ca: Some(ca),
                ip: Some(ip("10.0.0.5")),
            },
        )
        .unwrap();
        assert!(r.ok(), "{r}");
    }
    assert_eq!(
        std::fs::read(ca.join(CA_CERT)).unwrap(),
        std::fs::read(node.join(CA_CERT)).unwrap()
    );
}

#[test]
fn rsa_and_p384_keys_work() {
    for key in [KeyAlg::Rsa2048, KeyAlg::EcdsaP384] {
        let root = tmp("alg");
        create_ca(
            &root.join("ca"),
            &CaOptions {
                key,
                ..Default::default()
            },
        )
        .unwrap();
        let o = NodeOptions {
            key,
            ..node_opts(&["10.0.0.5"])
        };
        issue_node(&root.join("ca"), &root.join("n"), &o).unwrap();
        let r = check(&root.join("n"), &CheckOptions::default()).unwrap();
        assert!(r.ok(), "{key:?}: {r}");
    }
}

#[test]
fn a_certificate_from_another_ca_fails() {
    let (_, node) = setup("other", &node_opts(&["10.0.0.5"]));
    let other = tmp("other-ca");
    create_ca(&other, &CaOptions::default()).unwrap();
    let r = check(
        &node,
        &CheckOptions {
            ca: Some(other.clone()),
            ip: None,
        },
    )
    .unwrap();
    assert!(!r.ok());
    assert!(!r.chain_verifies);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("not signed by this CA")),
        "{r}"
    );
}

#[test]
fn server_auth_only_eku_fails() {
    let root = tmp("serveronly");
    let ca = root.join("ca");
    create_ca(&ca, &CaOptions::default()).unwrap();
    let mut p = node_params(&node_opts(&["10.0.0.5"])).unwrap();
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issue_with(&ca, &root.join("n"), &p, KeyAlg::EcdsaP256, false).unwrap();
    let r = check(&root.join("n"), &CheckOptions::default()).unwrap();
    assert!(!r.ok());
    assert_eq!(r.problems.len(), 1, "{r}");
    assert!(r.problems[0].contains("lacks clientAuth"), "{r}");
}

#[test]
fn absent_eku_passes() {
    let root = tmp("noeku");
    let ca = root.join("ca");
    create_ca(&ca, &CaOptions::default()).unwrap();
    let mut p = node_params(&node_opts(&["10.0.0.5"])).unwrap();
    p.extended_key_usages.clear();
    issue_with(&ca, &root.join("n"), &p, KeyAlg::EcdsaP256, false).unwrap();
    let r = check(&root.join("n"), &CheckOptions::default()).unwrap();
    assert!(r.ok(), "{r}");
    assert!(r.eku.is_none());
}

#[test]
fn expired_fails() {
    let root = tmp("expired");
    let ca = root.join("ca");
    create_ca(&ca, &CaOptions::default()).unwrap();
    let mut p = node_params(&node_opts(&["10.0.0.5"])).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    issue_with(&ca, &root.join("n"), &p, KeyAlg::EcdsaP256, false).unwrap();
    let r = check(&root.join("n"), &CheckOptions::default()).unwrap();
    assert!(!r.ok());
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("expired on 2021-01-01T00:00:00Z")),
        "{r}"
    );
}

#[test]
fn no_ip_san_and_wrong_ip_fail() {
    let root = tmp("noipsan");
    let ca = root.join("ca");
    create_ca(&ca, &CaOptions::default()).unwrap();
    let mut p = node_params(&node_opts(&["10.0.0.5"])).unwrap();
    p.subject_alt_names
        .retain(|s| !matches!(s, rcgen::SanType::IpAddress(_)));
    issue_with(&ca, &root.join("n"), &p, KeyAlg::EcdsaP256, false).unwrap();
    let r = check(&root.join("n"), &CheckOptions::default()).unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("no IP address")),
        "{r}"
    );

    let (_, node) = setup("wrongip", &node_opts(&["10.0.0.5"]));
    let r = check(
        &node,
        &CheckOptions {
            ca: None,
            ip: Some(ip("10.0.0.6")),
        },
    )
    .unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("not valid for IP 10.0.0.6")),
        "{r}"
    );
}

#[test]
fn a_key_of_another_node_fails() {
    let (ca, node) = setup("keymix", &node_opts(&["10.0.0.5"]));
    let other = node.parent().unwrap().join("other");
    issue_node(&ca, &other, &node_opts(&["10.0.0.6"])).unwrap();
    std::fs::copy(other.join(NODE_KEY), node.join(NODE_KEY)).unwrap();
    let r = check(&node, &CheckOptions::default()).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains(NODE_KEY) && p.contains("does not belong")),
        "{r}"
    );
}

#[test]
fn errors_name_the_file() {
    let root = tmp("errors");
    let ca = root.join("ca");
    // Missing CA.
    let e = issue_node(&ca, &root.join("n"), &node_opts(&["10.0.0.5"])).unwrap_err();
    assert!(
        e.to_string()
            .contains(&ca.join(CA_CERT).display().to_string()),
        "{e}"
    );
    // Garbage certificate.
    create_ca(&ca, &CaOptions::default()).unwrap();
    std::fs::write(ca.join(CA_CERT), "hello").unwrap();
    let e = issue_node(&ca, &root.join("n"), &node_opts(&["10.0.0.5"])).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&ca.join(CA_CERT).display().to_string()) && msg.contains("PEM"),
        "{msg}"
    );
    // A key that is not the CA's.
    let other = root.join("other");
    create_ca(&other, &CaOptions::default()).unwrap();
    create_ca(
        &ca,
        &CaOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::copy(other.join(CA_KEY), ca.join(CA_KEY)).unwrap();
    let e = issue_node(&ca, &root.join("n"), &node_opts(&["10.0.0.5"])).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&ca.join(CA_KEY).display().to_string()) && msg.contains("does not belong"),
        "{msg}"
    );
    // check on an empty folder names tls.crt.
    let e = check(&root, &CheckOptions::default()).unwrap_err();
    assert!(e.to_string().contains(NODE_CERT), "{e}");
    // The node folder must not be the CA folder.
    let e = issue_node(&other, &other, &node_opts(&["10.0.0.5"])).unwrap_err();
    assert!(e.to_string().contains(CA_KEY), "{e}");
}

#[test]
fn secret_manifest() {
    let d = tmp("secret");
    create_ca(&d, &CaOptions::default()).unwrap();
    let y = ca_secret_yaml(&d, "ray-ca", Some("team-a")).unwrap();
    assert!(y.starts_with("apiVersion: v1\nkind: Secret\nmetadata:\n  name: ray-ca\n  namespace: team-a\ntype: Opaque\nstringData:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n"), "{y}");
    assert!(
        y.contains("\n  ca.key: |\n    -----BEGIN PRIVATE KEY-----\n"),
        "{y}"
    );
    let crt = std::fs::read_to_string(d.join(CA_CERT)).unwrap();
    for line in crt.lines() {
        assert!(y.contains(&format!("    {line}\n")));
    }
    let y = ca_secret_yaml(&d, "1e3", None).unwrap();
    assert!(
        y.contains("  name: \"1e3\"\n") && !y.contains("namespace"),
        "{y}"
    );
}

#[test]
fn a_ca_with_another_name_is_an_unknown_issuer() {
    let (_, node) = setup("othername", &node_opts(&["10.0.0.5"]));
    let other = tmp("othername-ca");
    create_ca(
        &other,
        &CaOptions {
            common_name: "someone else".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let r = check(
        &node,
        &CheckOptions {
            ca: Some(other.join(CA_CERT)),
            ip: None,
        },
    )
    .unwrap();
    assert!(!r.chain_verifies);
    assert!(
        r.problems.iter().any(|p| p.contains("unknown issuer")),
        "{r}"
    );
}
