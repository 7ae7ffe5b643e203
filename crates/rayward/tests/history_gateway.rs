//! History through the gateway, end to end: the real `rayward gateway` (discovery mode,
//! a real kube-apiserver for TokenReview and SubjectAccessReview) in front of the real
//! `rayward history serve` with `[trusted_gateway]`, both as the `rayward` binary on
//! 127.0.0.1, on a stored session built with the collector's layout code. Proves: a user
//! logs in once, at the gateway, and opens the listing, a session's Jobs API and a log
//! download with a range, named in serve's audit log `via` the gateway; a ServiceAccount
//! with `ray:read` on one RayJob sees that RayJob's history and nothing else, and one
//! without gets the same 403 for a stored and a missing session with serve receiving
//! nothing; a client's own assertion header is stripped; serve refuses requests that did
//! not come through the gateway. Run by scripts/test.sh (kube_e2e stage).

use crate::history_serve::*;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use rayward_auth::assertion::{Keys, HEADER};
use rayward_testkit::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

const NS: &str = "team-a";
const AUDIENCE: &str = "rayward-gateway";
const KEY: &str = "history-assertion-key-0123456789abcdef0123";
const VIC_PW: &str = "Vic-Secret22";

async fn create<K>(api: &Api<K>, obj: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let o: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &o).await.unwrap();
}

async fn token(client: &kube::Client, sa: &str, audience: &str) -> String {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: if audience.is_empty() {
                vec![]
            } else {
                vec![audience.into()]
            },
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), NS)
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
}

/// The real gateway, killed on drop.
pub(crate) struct Gateway {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_gateway(config: &std::path::Path) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rayward"))
        .args(["gateway", "--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        eprintln!("{line}");
        if line.contains("listening on") {
            addr = line
                .split("http://")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|a| a.parse().ok());
            break;
        }
    }
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            eprintln!("gateway: {l}");
        }
    });
    Gateway {
        child,
        addr: addr.expect("the gateway's listen address"),
    }
}

fn audit(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Logs in through the gateway's form: the session cookie line.
pub(crate) fn login(gw: SocketAddr, user: &str, pw: &str) -> String {
    let (st, h, body) = get(gw, "/rayward/login", "");
    assert_eq!(st, 200);
    let nonce = header(&h, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = String::from_utf8(body).unwrap();
    let csrf = html
        .split("name=csrf value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let form = format!("user={user}&password={pw}&csrf={csrf}");
    let (st, h, _) = raw(
        gw,
        &format!(
            "POST /rayward/login HTTP/1.1\r\nHost: h\r\nOrigin: http://h\r\nCookie: {nonce}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert_eq!(st, 303, "login");
    let session = header(&h, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    format!("Cookie: {session}\r\n")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A stand-in Ray head on 127.0.0.1: answers `live-head` and counts requests.
fn live_head() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nlive-head",
            );
        }
    });
    (addr, hits)
}

/// RayJob train's RayCluster (a generated name, owned by the RayJob), its head Service
/// and an EndpointSlice pointing at `at`.
fn live_cluster_objects(at: SocketAddr, slice_version: &str) -> Vec<serde_json::Value> {
    let (cluster, svc) = ("train-raycluster-x1", "train-raycluster-x1-head-svc");
    let labels = json!({"ray.io/cluster": cluster, "ray.io/node-type": "head"});
    let mut slice_labels = labels.clone();
    slice_labels["kubernetes.io/service-name"] = json!(svc);
    vec![
        json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
               "metadata": {"name": cluster, "namespace": NS, "ownerReferences": [
                   {"apiVersion": "ray.io/v1", "kind": "RayJob", "name": "train",
                    "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]},
               "spec": {"headGroupSpec": {"rayStartParams": {}}}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": svc, "namespace": NS, "labels": labels},
               "spec": {"clusterIP": "None", "ports": [{"name": "dashboard", "port": 8265}]}}),
        json!({"apiVersion": format!("discovery.k8s.io/{slice_version}"), "kind": "EndpointSlice",
               "metadata": {"name": format!("{svc}-x1"), "namespace": NS, "labels": slice_labels},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [at.ip().to_string()], "conditions": {"ready": true}}],
               "ports": [{"name": "dashboard", "port": at.port(), "protocol": "TCP"}]}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver; run by scripts/test.sh"]
async fn kube_e2e_history_through_the_gateway_one_login_the_gateways_authorization() {
    let k = KubeApiserver::start();
    let client = k.client().await;
    ensure_namespace(&client, NS).await;
    install_ray_crds(&client).await;
    let store = DryRun::new(client.clone()).await;
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    for sa in ["reader", "nobody", "rayward-gateway"] {
        create(&sas, json!({"metadata": {"name": sa}})).await;
    }
    let docs = rayward_testkit::cli::repo_root().join("docs/gateway/rbac.yaml");
    for m in rayward_testkit::yaml::load_manifests(&docs).unwrap() {
        store.store(NS, &m.value).await.unwrap();
    }
    // reader: ray:read on the RayJob "train" only (its history), nothing on RayClusters.
    create(
        &Api::<Role>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": "train-history"},
               "rules": [{"apiGroups": ["ray.io"], "resources": ["rayjobs"],
                          "resourceNames": ["train"], "verbs": ["ray:read"]}]}),
    )
    .await;
    create(
        &Api::<RoleBinding>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": "train-history"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "train-history"},
               "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": NS}]}),
    )
    .await;
    let reader = token(&client, "reader", AUDIENCE).await;
    let nobody = token(&client, "nobody", AUDIENCE).await;

    // The store: team-a/rayjob/train and team-b/rayjob/other (and a broken index).
    let d = tempfile::tempdir().unwrap();
    let st_dir = d.path().join("store");
    {
        // build_store runs its own runtime: not on this one's thread.
        let p = st_dir.clone();
        std::thread::spawn(move || build_store(&p)).join().unwrap();
    }
    let key_file = d.path().join("assertion.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let serve_cfg = write_config(
        d.path(),
        &st_dir,
        &format!(
            "[trusted_gateway]\nkey_file = {:?}\n",
            key_file.display().to_string()
        ),
    );
    // Top-level: before the tables write_config ends with.
    let text = std::fs::read_to_string(&serve_cfg).unwrap();
    std::fs::write(&serve_cfg, format!("live_base_url = \"\"\n{text}")).unwrap();
    // RayJob train's session is still being written (its head's collector has not
    // finished), and its RayCluster is live: a stand-in head answers on 127.0.0.1.
    let idx = st_dir.join(format!("v1/team-a/rayjob/train/{S1}/index/train-head.json"));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&idx).unwrap()).unwrap();
    v["finished"] = json!(false);
    v["updated"] = json!(now_ms());
    std::fs::write(&idx, serde_json::to_vec(&v).unwrap()).unwrap();
    let (head_addr, head_hits) = live_head();
    let slice_version = if store.serves("discovery.k8s.io/v1", "EndpointSlice") {
        "v1"
    } else {
        "v1beta1"
    };
    for o in live_cluster_objects(head_addr, slice_version) {
        store.store(NS, &o).await.unwrap();
    }
    let serve = start(&serve_cfg);
    let serve_audit = d.path().join("audit.jsonl");

    // The gateway: vic (htpasswd, viewer) and Kubernetes identities.
    let gw_dir = d.path().join("gw");
    std::fs::create_dir_all(&gw_dir).unwrap();
    let kc = gw_dir.join("kubeconfig");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: gw\n  user:\n    token: {}\ncontexts:\n- name: t\n  context: {{cluster: t, user: gw}}\ncurrent-context: t\n",
            k.url(),
            token(&client, "rayward-gateway", "").await
        ),
    )
    .unwrap();
    std::fs::write(
        gw_dir.join("htpasswd"),
        format!("vic:{}\n", bcrypt::hash(VIC_PW, 4).unwrap()),
    )
    .unwrap();
    std::fs::write(gw_dir.join("session.key"), [7u8; 32]).unwrap();
    let gw_cfg = gw_dir.join("gateway.toml");
    std::fs::write(
        &gw_cfg,
        format!(
            r#"listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[auth]
htpasswd = "{dir}/htpasswd"
[session]
key_file = "{dir}/session.key"
[users]
vic = "viewer"
# Under [discovery] a role holds on the clusters it names (docs/gateway.md, per-cluster
# roles): vic reads every namespace's history here.
[roles.viewer]
clusters = ["*/*"]
[discovery]
kubeconfig = "{kc}"
namespaces = ["{NS}"]
history_upstream = "http://{serve}"
history_key_file = "{key}"
[kubernetes]
kubeconfig = "{kc}"
audiences = ["{AUDIENCE}"]
decision_cache_secs = 1
[limits]
failed_login_threshold = 1000
requests_per_second = 0
[audit]
path = "{dir}/audit.jsonl"
"#,
            dir = gw_dir.display(),
            kc = kc.display(),
            serve = serve.addr,
            key = key_file.display(),
        ),
    )
    .unwrap();
    let gw = start_gateway(&gw_cfg);
    let g = gw.addr;
    let base = format!("/clusters/team-a/rayjob/train/{S1}");
    let other = format!("/clusters/team-b/rayjob/other/{S1}");

    // vic logs in once, at the gateway, and opens history with that cookie alone.
    let cookie = login(g, "vic", VIC_PW);
    let html_get = |p: &str| get(g, p, &format!("{cookie}Accept: text/html\r\n"));
    let (st, _, body) = html_get("/");
    let landing = String::from_utf8_lossy(&body).to_string();
    assert_eq!(st, 200, "{landing}");
    assert!(
        landing.contains(&format!("href=\"{base}/\""))
            && landing.contains(&format!("href=\"{other}/\"")),
        "the landing page lists the stored sessions vic's role reads: {landing}"
    );
    // The live link: the session being written, to its RayJob's live cluster, through
    // the gateway's authorization of that cluster (vic's viewer role reads it).
    let live = "/clusters/team-a/train-raycluster-x1/";
    let mut tries = 0;
    let landing = loop {
        let (_, _, body) = html_get("/");
        let l = String::from_utf8_lossy(&body).to_string();
        if l.contains("live dashboard") || tries == 50 {
            break l;
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        landing.contains(&format!(
            "being written: <a class=\"live\" href=\"{live}\">"
        )),
        "{landing}"
    );
    // The head's Service and EndpointSlice join the routing table within seconds.
    let mut tries = 0;
    let (st, body) = loop {
        let (st, _, body) = get(g, &format!("{live}api/version"), &cookie);
        if st != 503 || tries == 100 {
            break (st, body);
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        (st, &body[..]),
        (200, &b"live-head"[..]),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let hits_after_vic = head_hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(hits_after_vic, 1);
    let (st, _, body) = get(g, &format!("{base}/api/jobs/"), &cookie);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("raysubmit_bad"));
    let (st, _, body) = html_get(&format!("{base}/"));
    assert!(st == 200 && String::from_utf8_lossy(&body).contains("Ray Dashboard"));
    let log = format!("{base}/api/v0/logs/file?node_id={HEAD_ID}&filename=raylet.out");
    let (st, h, body) = get(g, &log, &format!("{cookie}Range: bytes=11-21\r\n"));
    assert_eq!((st, &body[..]), (206, &b"line 00001\n"[..]));
    assert_eq!(header(&h, "content-range"), Some("bytes 11-21/33000"));

    // A client's own assertion, validly signed for mallory on this very path: stripped;
    // serve hears the gateway's word (vic), once.
    let keys = Keys::parse(KEY.as_bytes()).unwrap();
    let jobs = format!("{base}/api/jobs/");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mallory = |path: &str| {
        format!(
            "{HEADER}: {}\r\n",
            keys.issue(
                "htpasswd:mallory",
                &[],
                "team-a/rayjob/train",
                "GET",
                path,
                now,
                15
            )
        )
    };
    let (st, _, _) = get(g, &jobs, &format!("{cookie}{}", mallory(&jobs)));
    assert_eq!(st, 200);
    // Without gateway credentials, the same header gets nowhere.
    let (st, _, _) = get(g, &jobs, &mallory(&jobs));
    assert_eq!(st, 401);

    // Kubernetes identities: the RayJob's RBAC decides, by the kind in the URL.
    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");
    let (st, _, _) = get(g, &jobs, &bearer(&reader));
    assert_eq!(st, 200, "ray:read on rayjobs/train");
    // The live link of a RayJob's session is the RayCluster's route: RBAC on the
    // rayclusters resource decides, and reader has none.
    let (st, _, _) = get(g, &format!("{live}api/version"), &bearer(&reader));
    assert_eq!(st, 403);
    assert_eq!(
        head_hits.load(std::sync::atomic::Ordering::SeqCst),
        hits_after_vic,
        "the live head heard nothing of reader"
    );
    let (st, _, body) = get(g, "/", &bearer(&reader));
    let landing = String::from_utf8_lossy(&body).to_string();
    assert_eq!(st, 200);
    assert!(landing.contains(&format!("href=\"{base}/\"")), "{landing}");
    assert!(
        !landing.contains("team-b") && !landing.contains("broken"),
        "{landing}"
    );
    let strip = |(st, h, b): (u16, Vec<(String, String)>, Vec<u8>)| {
        (
            st,
            h.into_iter()
                .filter(|(k, _)| k != "date")
                .collect::<Vec<_>>(),
            b,
        )
    };
    let before = audit(&serve_audit).len();
    // The stored session and a session that does not exist, of the same RayJob: the
    // same bytes (the refusal names only what the request named).
    let missing = "/clusters/team-a/rayjob/train/session_2026-01-01_00-00-00_000000_1/api/jobs/";
    let absent = strip(get(g, missing, &bearer(&nobody)));
    assert_eq!(absent.0, 403);
    assert_eq!(strip(get(g, &jobs, &bearer(&nobody))), absent, "nobody");
    for p in [
        format!("{base}/"),
        log.clone(),
        format!("/clusters/team-a/raycluster/train/{S1}/api/jobs/"),
        format!("/clusters/team-a/rayjob/nope/{S1}/api/jobs/"),
    ] {
        assert_eq!(get(g, &p, &bearer(&nobody)).0, 403, "nobody: {p}");
    }
    // reader may read RayJob train only: another kind or name is refused alike.
    let (st, _, _) = get(
        g,
        &format!("/clusters/team-a/raycluster/train/{S1}/api/jobs/"),
        &bearer(&reader),
    );
    assert_eq!(st, 403);
    let (st, _, _) = get(
        g,
        &format!("/clusters/team-a/rayjob/nope/{S1}/api/jobs/"),
        &bearer(&reader),
    );
    assert_eq!(st, 403);
    let (st, _, body) = get(g, "/", &bearer(&nobody));
    assert_eq!(st, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("No stored session you may read"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Serve heard nothing of the refused requests (the landing page's own listing fetch
    // is no user request and leaves no record).
    let after = audit(&serve_audit);
    assert_eq!(after.len(), before, "{:?}", &after[before..]);

    // Serve's own page marks the session and links it to the gateway's landing page
    // (a RayJob's cluster has a generated name), same origin (`live_base_url = ""`).
    let (st, _, body) = get(serve.addr, "/", &basic("alice"));
    assert_eq!(st, 200);
    assert!(
        String::from_utf8_lossy(&body)
            .contains("being written: <a class=live href=\"/\">live dashboard</a>"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Straight to serve, past the gateway: no identity.
    let (st, _, _) = get(serve.addr, &jobs, "");
    assert_eq!(st, 401);

    // Serve's audit log names the gateway's users.
    let records = audit(&serve_audit);
    let via: Vec<_> = records.iter().filter(|r| r["via"] == "gateway").collect();
    assert!(via.iter().any(|r| r["event"] == "download_log"
        && r["user"] == "htpasswd:vic"
        && r["status"] == 206));
    assert!(via
        .iter()
        .any(|r| r["event"] == "open_session" && r["user"] == "htpasswd:vic"));
    assert!(
        !records.iter().any(|r| r["user"] == "htpasswd:mallory"),
        "{records:?}"
    );
}
