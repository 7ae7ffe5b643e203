//! `rayward install --gateway-discovery`, held to what it claims: its output audits clean
//! and validates against the Kubernetes schemas; applied to a real kube-apiserver, its
//! RBAC lets the gateway's ServiceAccount do its watches, token Secret reads and reviews
//! and nothing more (SubjectAccessReview); and the gateway and history configs from its
//! ConfigMaps, run by the real `rayward` binary as that ServiceAccount (file paths and
//! addresses remapped to a temp dir and 127.0.0.1, TLS left out), discover a cluster,
//! read its Ray token Secret, authenticate a Kubernetes token, and serve history behind
//! one login with the key file both share.

use crate::history_gateway::{login, start_gateway};
use crate::history_serve::{build_store, get, start, S1};
use crate::install::{bin, install, objects};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use rayward_testkit::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use rayward_testkit::cli::{run, run_stdin, tmp};
use rayward_testkit::fleet;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

const ARGS: &[&str] = &[
    "--gateway",
    "--history",
    "--gateway-discovery",
    "team-b,team-a",
    "--history-store",
    "s3://ml-history",
];

fn config_map(objs: &[Value], name: &str, key: &str) -> String {
    objs.iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no ConfigMap {name}"))["data"][key]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn install_discovery_audits_clean_and_tells_which_secret_to_create() {
    for args in [
        ARGS,
        &["--gateway", "--gateway-discovery", "team-a"][..],
        &["--gateway-discovery", "team-a", "--certs=cert-manager"][..],
    ] {
        let yaml = install(args);
        let (code, out, err) = run_stdin(
            bin().args(["audit", "--no-config", "--fail-on", "info", "-"]),
            yaml.as_bytes(),
        );
        assert_eq!(code, 0, "{args:?}:\n{out}\n{err}");
        // The audit read every object (a clean text report still counts them).
        let n = objects(&yaml).len();
        assert!(out.contains(&format!("0 findings in {n} objects")), "{out}");
    }
    let (code, _, err) = run(bin().arg("install").args(ARGS));
    assert_eq!(code, 0);
    assert!(
        err.contains("create secret generic rayward-history-key --from-literal=key=\"$(openssl rand -hex 32)\""),
        "{err}"
    );
    // Bad input: exit 2, naming the flag.
    for (args, want) in [
        (
            &["--gateway-discovery", "Team_A"][..],
            "--gateway-discovery `Team_A`",
        ),
        (
            &["--watch", "--gateway-discovery", "a"][..],
            "add --gateway",
        ),
        (
            &[
                "--gateway-discovery",
                "a",
                "--gateway-upstream",
                "http://r:8265",
            ][..],
            "cannot be used with",
        ),
    ] {
        let (code, _, err) = run(bin().arg("install").args(args));
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Can `system:serviceaccount:rayward-system:rayward-gateway` do `verb` on `resource`
/// (`group`) in `namespace` ("": cluster-wide)? The API server's own answer.
async fn gateway_can(
    client: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
) -> bool {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("system:serviceaccount:rayward-system:rayward-gateway".into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:rayward-system".into(),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
}

/// A stand-in Ray head on 127.0.0.1: answers with the Authorization header it got.
fn echo_head() -> SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let auth = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("authorization:")
                        .then(|| l[14..].trim().to_string())
                })
                .unwrap_or_default();
            let body = format!("head auth={auth}");
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    addr
}

/// `text` with `from` replaced, which must be there (the remap follows the config).
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    text.replace(from, to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real kube-apiserver (scripts/test.sh, kube_e2e stage)"]
async fn kube_e2e_install_discovery_rbac_and_configs_work_as_the_gateway_s_account() {
    let k = KubeApiserver::start();
    let client = k.client().await;
    install_ray_crds(&client).await;
    for ns in ["team-a", "team-b", "other"] {
        ensure_namespace(&client, ns).await;
    }
    let store = DryRun::new(client.clone()).await;
    let objs = objects(&install(ARGS));
    for o in &objs {
        if o["kind"] == "PodDisruptionBudget" {
            continue; // policy/v1 is served from 1.21 (the install test dry-runs it as v1beta1)
        }
        store
            .apply("rayward-test", o)
            .await
            .unwrap_or_else(|e| panic!("apply {} {}: {e}", o["kind"], o["metadata"]["name"]));
    }

    // The RBAC as the API server decides it: what the gateway needs ...
    for (verb, group, resource, ns) in [
        ("list", "ray.io", "rayclusters", "team-a"),
        ("watch", "ray.io", "rayclusters", "team-b"),
        ("list", "", "services", "team-a"),
        ("watch", "", "services", "team-b"),
        ("list", "discovery.k8s.io", "endpointslices", "team-a"),
        ("watch", "discovery.k8s.io", "endpointslices", "team-b"),
        ("get", "", "secrets", "team-a"),
        ("get", "", "secrets", "team-b"),
        ("create", "authentication.k8s.io", "tokenreviews", ""),
        ("create", "authorization.k8s.io", "subjectaccessreviews", ""),
    ] {
        assert!(
            gateway_can(&client, verb, group, resource, ns).await,
            "the gateway cannot {verb} {resource} in {ns:?}"
        );
    }
    // ... and nothing more: no listing of Secrets, nothing outside the watched
    // namespaces, no writes.
    for (verb, group, resource, ns) in [
        ("list", "", "secrets", "team-a"),
        ("watch", "", "secrets", "team-a"),
        ("list", "", "secrets", ""),
        ("get", "", "secrets", "other"),
        ("get", "", "secrets", "rayward-system"),
        ("list", "ray.io", "rayclusters", "other"),
        ("list", "ray.io", "rayclusters", ""),
        ("get", "ray.io", "rayclusters", "team-a"),
        ("create", "ray.io", "rayclusters", "team-a"),
        ("patch", "", "services", "team-a"),
        ("list", "", "pods", "team-a"),
        ("create", "", "pods", "team-a"),
    ] {
        assert!(
            !gateway_can(&client, verb, group, resource, ns).await,
            "the gateway may {verb} {resource} in {ns:?}"
        );
    }

    // The configs, run by the real binary as the gateway's ServiceAccount.
    let d = tmp("install-discovery-e2e");
    let gw_token =
        fleet::service_account_token(&client, "rayward-system", "rayward-gateway", "").await;
    let kc = fleet::kubeconfig(&k, &d, &gw_token);
    for sub in ["gw-auth", "serve-auth", "key", "ui"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(
        d.join("gw-auth/htpasswd"),
        format!("vic:{}\n", bcrypt::hash("Vic-Secret22", 4).unwrap()),
    )
    .unwrap();
    std::fs::write(d.join("gw-auth/session-key"), [6u8; 32]).unwrap();
    std::fs::write(
        d.join("serve-auth/htpasswd"),
        format!("alice:{}\n", bcrypt::hash("Alice-Secret22", 4).unwrap()),
    )
    .unwrap();
    std::fs::write(d.join("serve-auth/session-key"), [5u8; 32]).unwrap();
    // What the docs tell the user to create: 32 random bytes, hex.
    std::fs::write(
        d.join("key/key"),
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    std::fs::write(d.join("ui/index.html"), "<title>Ray Dashboard</title>").unwrap();
    let st_dir = d.join("store");
    {
        let p = st_dir.clone();
        std::thread::spawn(move || build_store(&p)).join().unwrap();
    }
    let dir = |p: &str| d.join(p).display().to_string();

    let serve_text = config_map(&objs, "rayward-history", "history.toml");
    let serve_text = swap(&serve_text, "0.0.0.0:8443", "127.0.0.1:0");
    let serve_text = swap(&serve_text, "0.0.0.0:9090", "127.0.0.1:0");
    let serve_text = swap(
        &serve_text,
        "s3://ml-history",
        &st_dir.display().to_string(),
    );
    let serve_text = swap(&serve_text, "/var/lib/rayward/dashboard", &dir("ui"));
    let serve_text = swap(&serve_text, "/etc/rayward/auth", &dir("serve-auth"));
    let serve_text = swap(&serve_text, "/etc/rayward/history-key", &dir("key"));
    let serve_cfg = d.join("history.toml");
    std::fs::write(&serve_cfg, &serve_text).unwrap();
    let serve = start(&serve_cfg);

    let gw_text = config_map(&objs, "rayward-gateway", "gateway.toml");
    let gw_text = swap(
        &gw_text,
        "listen = \"0.0.0.0:8443\"",
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"",
    );
    let gw_text = swap(
        &gw_text,
        "[tls]\ncert = \"/etc/rayward/tls/tls.crt\"\nkey = \"/etc/rayward/tls/tls.key\"\n",
        "",
    );
    let gw_text = swap(
        &gw_text,
        "[kubernetes]\n",
        &format!(
            "[kubernetes]\nkubeconfig = {:?}\n",
            kc.display().to_string()
        ),
    );
    let gw_text = swap(
        &gw_text,
        "http://rayward-history.rayward-system.svc:80",
        &format!("http://{}", serve.addr),
    );
    let gw_text = swap(&gw_text, "/etc/rayward/auth", &dir("gw-auth"));
    let gw_text = swap(&gw_text, "/etc/rayward/history-key", &dir("key"));
    let gw_text = format!("{gw_text}vic = \"viewer\"\n[roles.viewer]\nclusters = [\"team-a/*\"]\n");
    let gw_cfg: PathBuf = d.join("gateway.toml");
    std::fs::write(&gw_cfg, &gw_text).unwrap();

    // A token-auth RayCluster in team-a, as KubeRay leaves it, and a reader of it.
    let head = echo_head();
    let slice_version = if store.serves("discovery.k8s.io/v1", "EndpointSlice") {
        "v1"
    } else {
        "v1beta1"
    };
    let mut cluster = vec![
        fleet::token_secret("team-a", "live", "ray-token-live"),
        fleet::raycluster("team-a", "live", json!({"mode": "token"})),
    ];
    cluster.extend(fleet::head_objects("team-a", "live", head, slice_version));
    for o in &cluster {
        store.store("team-a", o).await.unwrap();
    }
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "reader"}})).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), "team-a")
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    fleet::grant(
        &client,
        "team-a",
        "live-read",
        "reader",
        "live",
        &["ray:read"],
    )
    .await;
    let reader = fleet::service_account_token(&client, "team-a", "reader", "").await;

    let gw = start_gateway(&gw_cfg);
    let g = gw.addr;

    // Discovery as the gateway's account: the cluster is found (list/watch of RayClusters,
    // Services, EndpointSlices) and reached with its own Ray token (get of its Secret);
    // the Kubernetes identity is reviewed (TokenReview, SubjectAccessReview).
    let bearer = format!("Authorization: Bearer {reader}\r\n");
    let mut tries = 0;
    let (st, body) = loop {
        let (st, _, body) = get(g, "/clusters/team-a/live/api/version", &bearer);
        if st == 200 || tries == 100 {
            break (st, String::from_utf8_lossy(&body).to_string());
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        (st, body.as_str()),
        (200, "head auth=Bearer ray-token-live"),
        "the discovered cluster through the gateway"
    );
    // Authorization is the reader's RBAC: no write.
    let (st, _, _) = raw_post(g, "/clusters/team-a/live/api/jobs/", &bearer);
    assert_eq!(st, 403);

    // History behind the gateway: one login, the shared key, serve's [trusted_gateway].
    let cookie = login(g, "vic", "Vic-Secret22");
    let (st, _, body) = get(
        g,
        &format!("/clusters/team-a/rayjob/train/{S1}/api/jobs/"),
        &cookie,
    );
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("raysubmit_bad"), "{body}");
    // vic's role holds on team-a only: team-b's stored session is refused, with the
    // answer a missing one gets (nothing says it exists).
    let (st, _, _) = get(
        g,
        &format!("/clusters/team-b/rayjob/other/{S1}/api/jobs/"),
        &cookie,
    );
    let (missing, _, _) = get(
        g,
        &format!("/clusters/team-b/rayjob/nope/{S1}/api/jobs/"),
        &cookie,
    );
    assert!(matches!(st, 403 | 404), "{st}");
    assert_eq!(st, missing);
    // Serve itself answers nothing without the gateway's word or its own login.
    let (st, _, _) = get(
        serve.addr,
        &format!("/clusters/team-a/rayjob/train/{S1}/api/jobs/"),
        "",
    );
    assert_eq!(st, 401);
    drop(gw);
}

/// A POST with an empty body.
fn raw_post(addr: SocketAddr, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    crate::history_serve::raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: h\r\n{extra}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    )
}

/// The discovery output (with the Roles of other namespaces) under kubernetes-validate's
/// strict schemas, oldest (1.28) and newest release.
#[test]
#[ignore = "needs PyPI kubernetes-validate (scripts/test.sh, kube_e2e stage)"]
fn kube_e2e_install_discovery_validates_against_kubernetes_schemas() {
    let tool = PathBuf::from(std::env::var("RAYWARD_KUBERNETES_VALIDATE").expect(
        "RAYWARD_KUBERNETES_VALIDATE: the kubernetes-validate of PyPI (scripts/test.sh installs it in .cache/pytools)",
    ));
    let python = tool.parent().unwrap().join("python");
    let o = Command::new(&python)
        .args([
            "-c",
            "import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))",
        ])
        .output()
        .unwrap();
    let schemas =
        PathBuf::from(String::from_utf8(o.stdout).unwrap().trim()).join("kubernetes-json-schema");
    let mut minors: Vec<u32> = std::fs::read_dir(&schemas)
        .unwrap_or_else(|e| panic!("{}: {e}", schemas.display()))
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_prefix("v1.")?
                .strip_suffix(".0-local-strict")?
                .parse()
                .ok()
        })
        .filter(|m| *m >= 28)
        .collect();
    minors.sort();
    assert!(minors.len() >= 2 && minors[0] == 28, "{minors:?}");
    let objs = objects(&install(ARGS));
    assert!(objs
        .iter()
        .any(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "team-a"));
    let dir = tmp("install-discovery-schemas");
    let file = dir.join("discovery.yaml");
    std::fs::write(&file, rayward_install::yaml::stream(&objs, "discovery")).unwrap();
    for m in [minors[0], *minors.last().unwrap()] {
        let (code, out, err) = run(Command::new(&tool)
            .args(["--strict", "--no-warn", "-k", &format!("1.{m}.0")])
            .arg(&file));
        assert_eq!(code, 0, "1.{m}:\n{out}\n{err}");
        let valid = out
            .lines()
            .filter(|l| l.starts_with("INFO") && l.contains("passed"))
            .count();
        assert_eq!(valid, objs.len(), "1.{m}:\n{out}");
    }
}
