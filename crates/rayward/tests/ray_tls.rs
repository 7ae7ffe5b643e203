//! Proof against a real Ray 2.60 (issue 3): certificates from `rayward certs` give two Ray
//! nodes mutual TLS; a node with a certificate from another CA does not join; a client
//! without certificates cannot connect. Runs inside `shared/tools/netns-run` (only
//! 127.0.0.1 exists), started by `scripts/test.sh`; every Ray process is killed on the way
//! out (by its marker, see rayward-testkit), also when an assertion fails.

use rayward_testkit::ray::{active_nodes, Ray, Tls};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Starting a node takes ~10 s on an idle machine and over a minute on this busy 2-core one.
const START: Duration = Duration::from_secs(240);
/// How long a node with a foreign certificate is given to join (it retries forever).
const FOREIGN_WAIT: Duration = Duration::from_secs(45);
/// `ray status` without certificates gives up after ~50 s on its own.
const PLAIN_WAIT: Duration = Duration::from_secs(150);

fn certs(args: &[&dyn AsRef<std::ffi::OsStr>]) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rayward"));
    c.arg("certs").env_remove("POD_IP");
    for a in args {
        c.arg(a);
    }
    let o = c.output().expect("run rayward certs");
    assert!(
        o.status.success(),
        "rayward certs {:?}: {}",
        c.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn node_cert(ca: &Path, out: &Path) -> Tls {
    certs(&[&"node", &"--ca", &ca, &"--out", &out, &"--ip", &"127.0.0.1"]);
    Tls::from_dir(out)
}

/// Polls `ray status` (with `tls`) until it reports `want` active nodes or `deadline`
/// passes; returns the last count seen and the last output.
fn wait_for_nodes(
    ray: &Ray,
    tls: &Tls,
    want: usize,
    deadline: Duration,
) -> (Option<usize>, String) {
    let start = Instant::now();
    loop {
        let o = ray.status("client", Some(tls), Duration::from_secs(90));
        let n = active_nodes(&o.stdout);
        if n == Some(want) || start.elapsed() >= deadline {
            return (n, o.to_string());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
#[ignore = "needs Ray in netns-run; run by scripts/test.sh"]
fn ray_e2e_mutual_tls_with_rayward_certs() {
    let t0 = Instant::now();
    let ray = Ray::new();
    let d = ray.dir().to_path_buf();

    // Certificates: one CA, two node certificates for 127.0.0.1; a second CA and a node
    // certificate from it for the intruder.
    certs(&[&"ca", &"--out", &d.join("ca")]);
    let head = node_cert(&d.join("ca"), &d.join("n1"));
    let node = node_cert(&d.join("ca"), &d.join("n2"));
    certs(&[&"ca", &"--out", &d.join("ca-other")]);
    let foreign = node_cert(&d.join("ca-other"), &d.join("n3"));

    let o = ray.start_head(Some(&head), START);
    assert!(o.success(), "head with TLS: {o}");
    let t_head = o.elapsed;
    let o = ray.start_node("node2", Some(&node), 52366, START);
    assert!(o.success(), "second node with TLS: {o}");
    let t_node = o.elapsed;

    let t = Instant::now();
    let (n, out) = wait_for_nodes(&ray, &head, 2, Duration::from_secs(120));
    assert_eq!(n, Some(2), "`ray status` with TLS shows both nodes: {out}");
    let t_status = t.elapsed();

    // The intruder (certificate from another CA) and a client without certificates, side by
    // side: neither may get in.
    let (intruder, plain) = std::thread::scope(|s| {
        let i = s.spawn(|| ray.start_node("node3", Some(&foreign), 52367, FOREIGN_WAIT));
        let p = s.spawn(|| ray.status("plain", None, PLAIN_WAIT));
        (i.join().unwrap(), p.join().unwrap())
    });
    assert!(
        !intruder.success(),
        "a node with another CA's certificate must not start: {intruder}"
    );
    assert!(
        intruder.stderr.contains("CERTIFICATE_VERIFY_FAILED")
            || intruder.stdout.contains("CERTIFICATE_VERIFY_FAILED"),
        "the intruder is refused by the TLS handshake: {intruder}"
    );
    assert!(
        !plain.success() && active_nodes(&plain.stdout).is_none(),
        "a client without certificates must not reach GCS: {plain}"
    );
    let (n, out) = wait_for_nodes(&ray, &head, 2, Duration::ZERO);
    assert_eq!(
        n,
        Some(2),
        "still exactly two nodes after the intruder: {out}"
    );

    let t = Instant::now();
    let ours = ray.processes();
    assert!(!ours.is_empty(), "the marker finds the running cluster");
    let left = ray.stop_all();
    assert!(left.is_empty(), "processes survived: {left:?}");
    let t_stop = t.elapsed();
    eprintln!(
        "timing: head {t_head:.1?}, second node {t_node:.1?}, 2 nodes seen in {t_status:.1?}, \
         intruder gave up at {:.1?}, plaintext client failed after {:.1?}, {} processes \
         stopped in {t_stop:.1?}, total {:.1?}",
        intruder.elapsed,
        plain.elapsed,
        ours.len(),
        t0.elapsed()
    );
}
