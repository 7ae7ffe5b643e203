//! Harden must not trust names it does not own (issue 10 §4): a user's hostPath volume
//! named like harden's TLS emptyDir, a `rayward-ca` volume of another Secret, an init
//! container named `rayward-certs` of any image, and a container that already mounts
//! something at `/etc/ray/tls`. Over the fixtures in `tests/fixtures/names/` (which the
//! corpus properties also run over), every hardened pod must have: the node certificate
//! on a memory-backed emptyDir, the CA from the configured Secret, an issuer with harden's
//! image mounting exactly those two, Ray containers whose TLS env points where that
//! emptyDir is mounted, and no duplicate volume name or mountPath.

use rayward_harden::{harden_bundle, Options};
use rayward_manifest::{expand_paths, load_file, Limits, Node, Workload};
use std::path::Path;

fn s<'a>(n: &'a Node, k: &str) -> Option<&'a str> {
    n.get(k).and_then(Node::as_str)
}

fn dupes<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    items
        .filter(|x| !seen.insert(x.trim_end_matches('/')))
        .collect()
}

#[test]
fn hardened_pods_use_only_their_own_tls_objects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/names");
    let (files, errors) = expand_paths(&[dir]);
    assert!(errors.is_empty() && files.len() >= 5, "{errors:?}");
    let opts = Options::default();
    let image = opts.fix.cert_image.clone();
    let secret = opts.fix.ca_secret.clone();
    for f in files {
        let l = load_file(&f, &Limits::default());
        assert!(l.error.is_none(), "{:?}", l.error);
        let out = harden_bundle(&l.objects, &opts);
        for obj in out.objects().filter(|o| o.kind.is_ray()) {
            let w = Workload::of(obj);
            for t in &w.templates {
                let at = format!("{} {}", f.display(), t.path);
                let spec = t.spec();
                let vols = spec.get("volumes").map(Node::as_seq).unwrap_or(&[]);
                let d = dupes(vols.iter().filter_map(|v| s(v, "name")));
                assert!(d.is_empty(), "{at}: duplicate volume names {d:?}");
                let vol = |name: &str| vols.iter().find(|v| s(v, "name") == Some(name));
                let inits = spec.get("initContainers").map(Node::as_seq).unwrap_or(&[]);
                let issuers: Vec<&Node> = inits
                    .iter()
                    .filter(|c| s(c, "image") == Some(image.as_str()))
                    .collect();
                assert_eq!(issuers.len(), 1, "{at}: one issuer with harden's image");
                let mounts = issuers[0]
                    .get("volumeMounts")
                    .map(Node::as_seq)
                    .unwrap_or(&[]);
                let at_path = |p: &str| {
                    mounts
                        .iter()
                        .find(|m| s(m, "mountPath") == Some(p))
                        .and_then(|m| s(m, "name"))
                        .and_then(vol)
                        .unwrap_or_else(|| panic!("{at}: the issuer mounts nothing at {p}"))
                };
                let ca = at_path("/etc/ray/ca");
                assert_eq!(
                    ca.path(&["secret", "secretName"]).and_then(Node::as_str),
                    Some(secret.as_str()),
                    "{at}: the CA volume is not the configured Secret"
                );
                assert!(ca.path(&["secret", "items"]).is_none(), "{at}: {ca:?}");
                let tls = at_path("/etc/ray/tls");
                assert_eq!(
                    tls.path(&["emptyDir", "medium"]).and_then(Node::as_str),
                    Some("Memory"),
                    "{at}: the certificate volume is not harden's emptyDir: {tls:?}"
                );
                let tls_name = s(tls, "name").unwrap();
                for c in t.containers() {
                    let cm = c.node.get("volumeMounts").map(Node::as_seq).unwrap_or(&[]);
                    let d = dupes(cm.iter().filter_map(|m| s(m, "mountPath")));
                    assert!(
                        d.is_empty(),
                        "{at}: container `{}` mounts twice at {d:?}",
                        c.name()
                    );
                    if !c.is_ray() {
                        continue;
                    }
                    let dir = cm
                        .iter()
                        .find(|m| s(m, "name") == Some(tls_name))
                        .and_then(|m| s(m, "mountPath"))
                        .unwrap_or_else(|| panic!("{at}: Ray container without the certificate"));
                    let env = c.node.get("env").map(Node::as_seq).unwrap_or(&[]);
                    let cert = env
                        .iter()
                        .find(|e| s(e, "name") == Some("RAY_TLS_SERVER_CERT"))
                        .and_then(|e| s(e, "value"));
                    assert_eq!(cert, Some(format!("{dir}/tls.crt").as_str()), "{at}");
                }
            }
        }
    }
}
