//! `[discovery]` against a real kube-apiserver (RBAC; the Ray CRDs installed): RayCluster
//! objects, head Services, EndpointSlices and token Secrets in the API server point at two
//! real HTTP upstreams on 127.0.0.1 standing in for two Ray heads (each answers with its
//! name, the path it got and the token it was sent). The gateway runs as its own
//! ServiceAccount with the RBAC of docs/gateway/rbac.yaml. Proves: path-prefix and host
//! routing reach the right cluster with that cluster's token; RBAC is asked about the
//! cluster the request is routed to; the landing page lists what the user may read; a
//! deleted cluster leaves routing and a new one joins within seconds; a rotated token
//! Secret is picked up; and the routing bypass cases are refused with neither upstream
//! reached. Run by scripts/test.sh (kube_e2e stage).

use crate::common::*;
use crate::kube_e2e::{create, gateway_kubeconfig, grant, token, AUDIENCE, NS};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use rayward_testkit::apiserver::{ensure_namespace, install_ray_crds, DryRun, KubeApiserver};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An upstream that answers `NAME METHOD TARGET auth=AUTHORIZATION` and counts requests.
struct Head {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    _task: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn head(name: &'static str) -> Head {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let (addr, task) = serve_local(move |req: http::Request<_>| {
        h.fetch_add(1, Ordering::SeqCst);
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "none".into());
        let body = format!("{name} {} {} auth={auth}", req.method(), req.uri());
        async move { http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body))) }
    })
    .await;
    Head {
        addr,
        hits,
        _task: AbortOnDrop(task),
    }
}

fn raycluster(name: &str, auth: Value) -> Value {
    json!({"apiVersion": "ray.io/v1", "kind": "RayCluster",
           "metadata": {"name": name, "namespace": NS},
           "spec": {"authOptions": auth, "headGroupSpec": {"rayStartParams": {}}}})
}

/// The head Service KubeRay creates, and an EndpointSlice pointing at `at`.
fn head_objects(cluster: &str, at: SocketAddr, slice_version: &str) -> Vec<Value> {
    let svc = format!("{cluster}-head-svc");
    let labels = json!({"ray.io/cluster": cluster, "ray.io/node-type": "head"});
    let mut slice_labels = labels.clone();
    slice_labels["kubernetes.io/service-name"] = json!(svc);
    vec![
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": svc, "namespace": NS, "labels": labels},
               "spec": {"clusterIP": "None", "ports": [
                   {"name": "gcs", "port": 6379}, {"name": "dashboard", "port": 8265}]}}),
        json!({"apiVersion": format!("discovery.k8s.io/{slice_version}"), "kind": "EndpointSlice",
               "metadata": {"name": format!("{svc}-x1"), "namespace": NS, "labels": slice_labels},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [at.ip().to_string()], "conditions": {"ready": true}}],
               "ports": [{"name": "gcs", "port": 6379, "protocol": "TCP"},
                         {"name": "dashboard", "port": at.port(), "protocol": "TCP"}]}),
    ]
}

fn secret(name: &str, token: &str) -> Value {
    use base64::Engine;
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": NS},
           "data": {"auth_token": base64::engine::general_purpose::STANDARD.encode(token)}})
}

/// Sends `method target` with `headers` (each line ending in \r\n) and returns the answer.
async fn send(gw: SocketAddr, method: &str, target: &str, headers: &str) -> Raw {
    let body = if method == "POST" {
        r#"{"entrypoint":"echo hi"}"#
    } else {
        ""
    };
    let host = if headers.to_ascii_lowercase().contains("host:") {
        String::new()
    } else {
        "Host: gw\r\n".into()
    };
    let req = format!(
        "{method} {target} HTTP/1.1\r\n{host}{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw(gw, req.as_bytes()).await
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}\r\n")
}

/// Polls until `cond` (an expression that may `.await`) holds: routing follows the API
/// server within seconds.
macro_rules! eventually {
    ($what:expr, $secs:expr, $cond:expr) => {{
        let start = Instant::now();
        while !$cond {
            assert!(
                start.elapsed() < Duration::from_secs($secs),
                "{}: not within {} s",
                $what,
                $secs
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("{}: after {:?}", $what, start.elapsed());
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver; run by scripts/test.sh"]
async fn kube_e2e_discovery_routes_by_prefix_and_host_and_authorizes_the_routed_cluster() {
    let k = KubeApiserver::start();
    let client = k.client().await;
    ensure_namespace(&client, NS).await;
    install_ray_crds(&client).await;
    let store = DryRun::new(client.clone()).await;
    let slice_version = if store.serves("discovery.k8s.io/v1", "EndpointSlice") {
        "v1"
    } else {
        "v1beta1"
    };
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    for sa in ["writer", "reader", "rayward-gateway"] {
        create(&sas, json!({"metadata": {"name": sa}})).await;
    }
    // The gateway's own RBAC is the documented one (auth-delegator + discovery).
    let docs = rayward_testkit::cli::repo_root().join("docs/gateway/rbac.yaml");
    for m in rayward_testkit::yaml::load_manifests(&docs).unwrap() {
        store
            .store(NS, &m.value)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", m.id()));
    }
    // writer: read and write on cluster-a only; reader: read on cluster-a only.
    grant(
        &client,
        "a-submitter",
        "writer",
        "cluster-a",
        &["ray:read", "ray:write"],
    )
    .await;
    grant(&client, "a-viewer", "reader", "cluster-a", &["ray:read"]).await;
    let writer = token(&client, "writer", AUDIENCE).await;
    let reader = token(&client, "reader", AUDIENCE).await;

    // Two heads; cluster-a keeps its token in the Secret named like it (KubeRay's
    // default), cluster-b in the Secret its authOptions name.
    let a = head("A").await;
    let b = head("B").await;
    let mut objects = vec![
        secret("cluster-a", "token-a"),
        secret("b-token", "token-b"),
        raycluster("cluster-a", json!({"mode": "token"})),
        raycluster(
            "cluster-b",
            json!({"mode": "token", "secretName": "b-token"}),
        ),
    ];
    objects.extend(head_objects("cluster-a", a.addr, slice_version));
    objects.extend(head_objects("cluster-b", b.addr, slice_version));
    for o in &objects {
        store
            .store(NS, o)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", o["kind"]));
    }

    let dir = tempfile::tempdir().unwrap();
    let kc = gateway_kubeconfig(&k, dir.path(), &token(&client, "rayward-gateway", "").await);
    let text = discovery_config(dir.path(), &kc, "");
    let gw = start_gateway(&text).await;
    let vic = format!("Authorization: {}\r\n", basic("vic", VIC_PW));
    let hits = || (a.hits.load(Ordering::SeqCst), b.hits.load(Ordering::SeqCst));

    // Discovered: each prefix reaches its head, with that cluster's token, prefix stripped.
    eventually!("both clusters routed", 20, {
        send(
            gw.addr,
            "GET",
            "/clusters/team-a/cluster-a/api/version",
            &vic,
        )
        .await
        .status
            == 200
            && send(
                gw.addr,
                "GET",
                "/clusters/team-a/cluster-b/api/version",
                &vic,
            )
            .await
            .status
                == 200
    });
    let r = send(
        gw.addr,
        "GET",
        "/clusters/team-a/cluster-a/api/jobs/?x=1",
        &vic,
    )
    .await;
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "A GET /api/jobs/?x=1 auth=Bearer token-a")
    );
    let r = send(gw.addr, "GET", "/clusters/team-a/cluster-b/api/jobs/", &vic).await;
    assert_eq!(r.body_text(), "B GET /api/jobs/ auth=Bearer token-b");
    // By host: {name}.{namespace}.<base_domain>, path as it is.
    let r = send(
        gw.addr,
        "GET",
        "/api/jobs/",
        &format!("Host: cluster-b.team-a.ray.test:8443\r\n{vic}"),
    )
    .await;
    assert_eq!(r.body_text(), "B GET /api/jobs/ auth=Bearer token-b");
    // The prefix without its slash is redirected (relative URLs need it), unforwarded.
    let before = hits();
    let r = send(gw.addr, "GET", "/clusters/team-a/cluster-a", &vic).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/clusters/team-a/cluster-a/")
    );
    assert_eq!(hits(), before);

    // RBAC is asked about the routed cluster.
    let r = send(
        gw.addr,
        "POST",
        "/clusters/team-a/cluster-a/api/jobs/",
        &bearer(&writer),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body_text().starts_with("A POST /api/jobs/"));
    let before = hits();
    for (method, target, headers, want) in [
        // No write on B, by prefix or by host.
        (
            "POST",
            "/clusters/team-a/cluster-b/api/jobs/",
            String::new(),
            403,
        ),
        (
            "POST",
            "/api/jobs/",
            "Host: cluster-b.team-a.ray.test\r\n".to_string(),
            403,
        ),
        // No admin on A.
        (
            "GET",
            "/clusters/team-a/cluster-a/worker/traceback?pid=1",
            String::new(),
            403,
        ),
        // No read on B.
        (
            "GET",
            "/clusters/team-a/cluster-b/api/jobs/",
            String::new(),
            403,
        ),
        // `..` across the prefix, raw and encoded; an encoded slash; an empty segment.
        (
            "POST",
            "/clusters/team-a/cluster-a/../cluster-b/api/jobs/",
            String::new(),
            400,
        ),
        (
            "POST",
            "/clusters/team-a/cluster-a/%2e%2e/cluster-b/api/jobs/",
            String::new(),
            400,
        ),
        (
            "POST",
            "/clusters/team-a/cluster-a/%2E%2E/%2E%2E/team-a/cluster-b/api/jobs/",
            String::new(),
            400,
        ),
        (
            "POST",
            "/clusters/team-a/cluster-a%2fcluster-b/api/jobs/",
            String::new(),
            400,
        ),
        (
            "POST",
            "/clusters/team-a//cluster-b/api/jobs/",
            String::new(),
            400,
        ),
        // Prefix confusion: a longer name is another cluster (which writer may not touch),
        // a prefix without its slash is only redirected.
        (
            "POST",
            "/clusters/team-a/cluster-bb/api/jobs/",
            String::new(),
            403,
        ),
        ("POST", "/clusters/team-a/cluster-b", String::new(), 308),
        (
            "POST",
            "/clustersteam-a/cluster-b/api/jobs/",
            String::new(),
            404,
        ),
        // A Host naming B wins over a path naming A: B gets judged (and denies).
        (
            "POST",
            "/clusters/team-a/cluster-a/api/jobs/",
            "Host: cluster-b.team-a.ray.test\r\n".to_string(),
            403,
        ),
        // Absolute-form targets naming another cluster.
        (
            "POST",
            "http://cluster-b.team-a.ray.test/api/jobs/",
            String::new(),
            400,
        ),
        (
            "POST",
            "http://gw/clusters/team-a/cluster-b/api/jobs/",
            String::new(),
            400,
        ),
        // No cluster named: nothing to route to.
        ("POST", "/api/jobs/", String::new(), 404),
    ] {
        let r = send(
            gw.addr,
            method,
            target,
            &format!("{headers}{}", bearer(&writer)),
        )
        .await;
        assert_eq!(r.status, want, "{method} {target} {headers:?}: {r:?}");
        assert_eq!(
            hits(),
            before,
            "{method} {target} {headers:?} reached a cluster"
        );
    }
    // The reader reads A, not B; writes nowhere.
    let r = send(
        gw.addr,
        "GET",
        "/clusters/team-a/cluster-a/api/jobs/",
        &bearer(&reader),
    )
    .await;
    assert_eq!(r.status, 200);
    let before = hits();
    let r = send(
        gw.addr,
        "POST",
        "/clusters/team-a/cluster-a/api/jobs/",
        &bearer(&reader),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(hits(), before);
    // An unknown cluster is not told apart from a forbidden one for those who may not
    // read it; the gateway's own viewer (roles hold everywhere) learns it is unknown.
    let r = send(
        gw.addr,
        "GET",
        "/clusters/team-a/nope/api/jobs/",
        &bearer(&reader),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send(gw.addr, "GET", "/clusters/team-a/nope/api/jobs/", &vic).await;
    assert_eq!(r.status, 404);

    // The landing page lists what each may read, with links.
    let r = send(gw.addr, "GET", "/", &bearer(&reader)).await;
    assert_eq!(r.status, 200);
    let page = r.body_text();
    assert!(
        page.contains("href=\"/clusters/team-a/cluster-a/\""),
        "{page}"
    );
    assert!(!page.contains("cluster-b"), "{page}");
    assert!(!page.contains("token-"), "no token on the page");
    let page = send(gw.addr, "GET", "/", &vic).await.body_text();
    assert!(
        page.contains("href=\"/clusters/team-a/cluster-a/\""),
        "{page}"
    );
    assert!(
        page.contains("href=\"/clusters/team-a/cluster-b/\""),
        "{page}"
    );
    assert!(page.contains("//cluster-b.team-a.ray.test/"), "{page}");

    // A rotated token Secret is used within the refresh period.
    store
        .apply("test", &secret("cluster-a", "token-a2"))
        .await
        .unwrap();
    eventually!("rotated token", 10, {
        send(gw.addr, "GET", "/clusters/team-a/cluster-a/api/jobs/", &vic)
            .await
            .body_text()
            .ends_with("auth=Bearer token-a2")
    });

    // A deleted cluster leaves routing.
    store
        .delete(&raycluster("cluster-b", json!({})))
        .await
        .unwrap();
    eventually!("cluster-b gone", 10, {
        send(gw.addr, "GET", "/clusters/team-a/cluster-b/api/jobs/", &vic)
            .await
            .status
            == 404
    });
    let page = send(gw.addr, "GET", "/", &vic).await.body_text();
    assert!(!page.contains("cluster-b"), "{page}");
    // A new one (no token authentication: none is sent) joins within seconds.
    let c = head("C").await;
    let mut objects = vec![raycluster("cluster-c", json!({"mode": "disabled"}))];
    objects.extend(head_objects("cluster-c", c.addr, slice_version));
    for o in &objects {
        store.store(NS, o).await.unwrap();
    }
    eventually!("cluster-c routed", 10, {
        send(gw.addr, "GET", "/clusters/team-a/cluster-c/api/jobs/", &vic)
            .await
            .body_text()
            == "C GET /api/jobs/ auth=none"
    });

    // Audit: the routed cluster is named.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(
        log.contains(
            r#""path":"/clusters/team-a/cluster-a/api/jobs/","class":"write","status":200"#
        ) && log.contains(r#""cluster":"team-a/cluster-a""#),
        "{log}"
    );
    assert!(
        log.contains("RBAC does not allow ray:write on rayclusters.ray.io team-a/cluster-b"),
        "{log}"
    );
    assert!(!log.contains("token-a"), "no token in the audit log");
}

/// Stores what KubeRay would create for a token-auth RayCluster `name` whose head's
/// dashboard is at `at`: the RayCluster, its token Secret, head Service and EndpointSlice.
pub(crate) async fn store_cluster(store: &DryRun, name: &str, at: SocketAddr, ray_token: &str) {
    let slice_version = if store.serves("discovery.k8s.io/v1", "EndpointSlice") {
        "v1"
    } else {
        "v1beta1"
    };
    let mut objects = vec![
        secret(name, ray_token),
        raycluster(name, json!({"mode": "token"})),
    ];
    objects.extend(head_objects(name, at, slice_version));
    for o in &objects {
        store
            .store(NS, o)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", o["kind"]));
    }
}

/// A `[discovery]` gateway config (no `upstream`, no `ray_token`) for namespace team-a with
/// host routing under `ray.test`, authenticating Kubernetes identities with `kc`.
pub(crate) fn discovery_config(dir: &std::path::Path, kc: &std::path::Path, extra: &str) -> String {
    config(
        dir,
        "http://unused:1",
        &dir.join("unused"),
        &format!(
            "[discovery]\nkubeconfig = \"{kc}\"\nnamespaces = [\"{NS}\"]\nbase_domain = \"ray.test\"\ntoken_refresh_secs = 1\n[kubernetes]\nkubeconfig = \"{kc}\"\naudiences = [\"{AUDIENCE}\"]\ndecision_cache_secs = 1\n[limits]\nfailed_login_threshold = 1000\nrequests_per_second = 0\n{extra}",
            kc = kc.display()
        ),
    )
    .lines()
    .filter(|l| !l.starts_with("upstream =") && !l.starts_with("ray_token ="))
    .map(|l| format!("{l}\n"))
    .collect()
}

/// The same routing with a real Ray 2.60 head (token auth) as cluster-a, discovered from
/// the API server, inside netns-run. The test kit runs one head per network namespace (Ray
/// takes fixed ports), so cluster-b is a counting HTTP upstream: every request that
/// reached it is seen. A ServiceAccount with ray:write on cluster-a submits with `ray job
/// submit --address http://gw/clusters/team-a/cluster-a` (the job's log tail is a
/// WebSocket under the prefix) and by host; it gets 403 on cluster-b; a reader cannot
/// submit; the bypass cases change neither Ray's job list nor reach cluster-b.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver and Ray in netns-run; run by scripts/test.sh"]
async fn ray_e2e_discovery_routes_to_a_real_ray_head_by_prefix_and_host() {
    use crate::common::ray::*;
    let k = KubeApiserver::start();
    let client = k.client().await;
    ensure_namespace(&client, NS).await;
    install_ray_crds(&client).await;
    let store = DryRun::new(client.clone()).await;
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    for sa in ["writer", "reader", "rayward-gateway"] {
        create(&sas, json!({"metadata": {"name": sa}})).await;
    }
    let docs = rayward_testkit::cli::repo_root().join("docs/gateway/rbac.yaml");
    for m in rayward_testkit::yaml::load_manifests(&docs).unwrap() {
        store.store(NS, &m.value).await.unwrap();
    }
    grant(
        &client,
        "w",
        "writer",
        "cluster-a",
        &["ray:read", "ray:write"],
    )
    .await;
    grant(&client, "r", "reader", "cluster-a", &["ray:read"]).await;
    let writer = format!("Bearer {}", token(&client, "writer", AUDIENCE).await);
    let reader = format!("Bearer {}", token(&client, "reader", AUDIENCE).await);

    let ray_token = random_token();
    let ray = start_ray(&ray_token);
    wait_for_ray(&ray_token, &ray).await;
    let b = head("B").await;
    store_cluster(
        &store,
        "cluster-a",
        RAY_DASHBOARD.parse().unwrap(),
        &ray_token,
    )
    .await;
    store_cluster(&store, "cluster-b", b.addr, "token-b").await;

    let dir = tempfile::tempdir().unwrap();
    let kc = gateway_kubeconfig(&k, dir.path(), &token(&client, "rayward-gateway", "").await);
    let gw = start_gateway(&discovery_config(dir.path(), &kc, "")).await;
    let g = gw.addr;
    let a_auth = format!("Authorization: {writer}\r\n");
    eventually!("cluster-a routed", 20, {
        send(g, "GET", "/clusters/team-a/cluster-a/api/version", &a_auth)
            .await
            .status
            == 200
    });

    // `ray job submit` under the prefix: POST, then the log tail over a WebSocket.
    let prefix = format!("http://{g}/clusters/{NS}/cluster-a");
    let job = |auth: &str, args: &[&str]| {
        let o = ray.job(
            "client",
            &prefix,
            Some(auth),
            args,
            Duration::from_secs(240),
        );
        (
            o.status.map_or(-2, |s| s.code().unwrap_or(-1)),
            o.stdout,
            o.stderr,
        )
    };
    let (code, out, err) = job(
        &writer,
        &[
            "submit",
            "--submission-id",
            "by-prefix",
            "--",
            "echo",
            "through-the-prefix",
        ],
    );
    assert_eq!(code, 0, "submit under the prefix: {out}\n{err}");
    assert!(out.contains("through-the-prefix"), "{out}\n{err}");
    let (code, out, err) = job(&reader, &["list"]);
    assert_eq!(code, 0, "reader list: {out}\n{err}");
    assert!(
        out.contains("'rayward.io/submitted-by': 'k8s:system:serviceaccount:team-a:writer'"),
        "{out}"
    );
    // By host: the same head.
    let r = send(
        g,
        "GET",
        "/api/jobs/",
        &format!("Host: cluster-a.team-a.ray.test\r\n{a_auth}"),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body_text().contains("by-prefix"), "{}", r.body_text());

    // Refusals: each leaves Ray's job list and cluster-b as they were.
    let jobs = ray_jobs(&ray_token).await;
    let (code, out, err) = job(
        &reader,
        &[
            "submit",
            "--submission-id",
            "reader-try",
            "--",
            "echo",
            "no",
        ],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        format!("{out}{err}").contains("RBAC does not allow ray:write"),
        "{out}\n{err}"
    );
    let r_auth = format!("Authorization: {reader}\r\n");
    for (auth, target, headers, want) in [
        (&a_auth, "/clusters/team-a/cluster-b/api/jobs/", "", 403),
        (
            &a_auth,
            "/api/jobs/",
            "Host: cluster-b.team-a.ray.test\r\n",
            403,
        ),
        (&r_auth, "/clusters/team-a/cluster-a/api/jobs/", "", 403),
        (
            &r_auth,
            "/api/jobs/",
            "Host: cluster-a.team-a.ray.test\r\n",
            403,
        ),
        (
            &r_auth,
            "/clusters/team-a/cluster-b/../cluster-a/api/jobs/",
            "",
            400,
        ),
        (
            &r_auth,
            "/clusters/team-a/cluster-b/%2e%2e/cluster-a/api/jobs/",
            "",
            400,
        ),
        (
            &a_auth,
            "/clusters/team-a/cluster-a/api/jobs/",
            "Host: cluster-b.team-a.ray.test\r\n",
            403,
        ),
        (
            &r_auth,
            "http://cluster-a.team-a.ray.test/api/jobs/",
            "",
            400,
        ),
        (&r_auth, "/clusters/team-a/cluster-a", "", 308),
        (&r_auth, "/clusters/team-a/cluster-aa/api/jobs/", "", 403),
    ] {
        let r = send(g, "POST", target, &format!("{headers}{auth}")).await;
        assert_eq!(r.status, want, "POST {target} {headers:?}: {r:?}");
        assert_eq!(
            ray_jobs(&ray_token).await,
            jobs,
            "POST {target} {headers:?} changed Ray"
        );
        assert_eq!(
            b.hits.load(Ordering::SeqCst),
            0,
            "POST {target} {headers:?} reached cluster-b"
        );
    }
    drop(gw);
    drop(ray);
}
