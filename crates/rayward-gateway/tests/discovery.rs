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
use crate::kube_e2e::{AUDIENCE, NS};
use rayward_testkit::apiserver::KubeApiserver;
use rayward_testkit::fleet::{self, Fleet, GATEWAY_SA};
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
    fleet::raycluster(NS, name, auth)
}

fn secret(name: &str, token: &str) -> Value {
    fleet::token_secret(NS, name, token)
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
    // The gateway's own RBAC is the documented one (auth-delegator + discovery).
    let f = Fleet::new(&k, NS, &["writer", "reader"]).await;
    let (store, slice_version) = (&f.store, f.slice_version);
    // writer: read and write on cluster-a only; reader: read on cluster-a only.
    f.grant(
        "a-submitter",
        "writer",
        "cluster-a",
        &["ray:read", "ray:write"],
    )
    .await;
    f.grant("a-viewer", "reader", "cluster-a", &["ray:read"])
        .await;
    let writer = f.token("writer", AUDIENCE).await;
    let reader = f.token("reader", AUDIENCE).await;

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
    objects.extend(fleet::head_objects(NS, "cluster-a", a.addr, slice_version));
    objects.extend(fleet::head_objects(NS, "cluster-b", b.addr, slice_version));
    f.store_all(&objects).await;

    let dir = tempfile::tempdir().unwrap();
    let kc = fleet::kubeconfig(&k, dir.path(), &f.token(GATEWAY_SA, "").await);
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
    objects.extend(fleet::head_objects(NS, "cluster-c", c.addr, slice_version));
    f.store_all(&objects).await;
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

/// The built-in roles of the test config's users on every cluster: under `[discovery]` a
/// role that names no clusters holds on none.
pub(crate) const EVERY_CLUSTER: &str = "[roles.viewer]\nclusters = [\"*/*\"]\n[roles.submitter]\nclusters = [\"*/*\"]\n[roles.admin]\nclusters = [\"*/*\"]\n";

/// A `[discovery]` gateway config (no `upstream`, no `ray_token`) for namespace team-a with
/// host routing under `ray.test`, authenticating Kubernetes identities with `kc`; the
/// built-in roles hold on every cluster ([`EVERY_CLUSTER`]).
pub(crate) fn discovery_config(dir: &std::path::Path, kc: &std::path::Path, extra: &str) -> String {
    discovery_config_with_roles(dir, kc, EVERY_CLUSTER, extra)
}

/// [`discovery_config`] with `roles` (`[roles.X]` tables) instead of [`EVERY_CLUSTER`].
pub(crate) fn discovery_config_with_roles(
    dir: &std::path::Path,
    kc: &std::path::Path,
    roles: &str,
    extra: &str,
) -> String {
    config(
        dir,
        "http://unused:1",
        &dir.join("unused"),
        &format!(
            "[discovery]\nkubeconfig = \"{kc}\"\nnamespaces = [\"{NS}\"]\nbase_domain = \"ray.test\"\ntoken_refresh_secs = 1\n[kubernetes]\nkubeconfig = \"{kc}\"\naudiences = [\"{AUDIENCE}\"]\ndecision_cache_secs = 1\n[limits]\nfailed_login_threshold = 1000\nrequests_per_second = 0\n{roles}{extra}",
            kc = kc.display()
        ),
    )
    .lines()
    .filter(|l| !l.starts_with("upstream =") && !l.starts_with("ray_token ="))
    .map(|l| format!("{l}\n"))
    .collect()
}

/// Per-cluster roles for the gateway's own users (htpasswd here), through the real socket:
/// vic's viewer role names cluster-a only, alice's submitter role every cluster, and ada's
/// admin role names none, so under `[discovery]` it holds on none (the secure default).
/// A cluster outside a user's roles answers exactly as one that does not exist (status
/// and body, by prefix and by host), is never reached, and is not on the landing page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver; run by scripts/test.sh"]
async fn kube_e2e_per_cluster_roles_scope_gateway_users_to_their_clusters() {
    let k = KubeApiserver::start();
    let f = Fleet::new(&k, NS, &[]).await;
    let a = head("A").await;
    let b = head("B").await;
    f.store_cluster("cluster-a", a.addr, "token-a").await;
    f.store_cluster("cluster-b", b.addr, "token-b").await;
    let dir = tempfile::tempdir().unwrap();
    let kc = fleet::kubeconfig(&k, dir.path(), &f.token(GATEWAY_SA, "").await);
    let roles = "[roles.viewer]\nclusters = [\"team-a/cluster-a\"]\n[roles.submitter]\nclusters = [\"*/*\"]\n";
    let gw = start_gateway(&discovery_config_with_roles(dir.path(), &kc, roles, "")).await;
    let g = gw.addr;
    let auth = |u: &str, pw: &str| format!("Authorization: {}\r\n", basic(u, pw));
    let (vic, alice, ada) = (
        auth("vic", VIC_PW),
        auth("alice", ALICE_PW),
        auth("ada", ADA_PW),
    );
    let hits = || (a.hits.load(Ordering::SeqCst), b.hits.load(Ordering::SeqCst));
    eventually!("both clusters routed", 20, {
        send(g, "GET", "/clusters/team-a/cluster-a/api/version", &alice)
            .await
            .status
            == 200
            && send(g, "GET", "/clusters/team-a/cluster-b/api/version", &alice)
                .await
                .status
                == 200
    });

    // In scope: vic reads A; alice writes on B.
    let r = send(g, "GET", "/clusters/team-a/cluster-a/api/jobs/", &vic).await;
    assert_eq!(r.body_text(), "A GET /api/jobs/ auth=Bearer token-a");
    let r = send(g, "POST", "/clusters/team-a/cluster-b/api/jobs/", &alice).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body_text().starts_with("B POST /api/jobs/"));
    // In scope, wrong class: 403 as ever.
    let before = hits();
    let r = send(g, "POST", "/clusters/team-a/cluster-a/api/jobs/", &vic).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(hits(), before);

    // Out of scope: the answer of a cluster that does not exist, whatever the class.
    let same = |r: &Raw, name: &str| (r.status, r.body_text().replace(name, "NAME"));
    for (who, cred, exists, missing) in [
        ("vic", &vic, "cluster-b", "cluster-z"),
        ("ada", &ada, "cluster-a", "cluster-z"),
        ("ada", &ada, "cluster-b", "cluster-y"),
    ] {
        for (method, path) in [
            ("GET", "/api/jobs/"),
            ("POST", "/api/jobs/"),
            ("GET", "/worker/traceback?pid=1"),
        ] {
            let by_prefix = |c: &str| format!("/clusters/team-a/{c}{path}");
            let r1 = send(g, method, &by_prefix(exists), cred).await;
            let r2 = send(g, method, &by_prefix(missing), cred).await;
            assert_eq!(r1.status, 404, "{who} {method} {exists}{path}: {r1:?}");
            assert_eq!(
                same(&r1, exists),
                same(&r2, missing),
                "{who} {method} {path}"
            );
            let host = |c: &str| format!("Host: {c}.team-a.ray.test\r\n{cred}");
            let h1 = send(g, method, path, &host(exists)).await;
            let h2 = send(g, method, path, &host(missing)).await;
            assert_eq!(same(&h1, exists), same(&r1, exists), "{who} by host");
            assert_eq!(same(&h1, exists), same(&h2, missing), "{who} by host");
            assert_eq!(
                hits(),
                before,
                "{who} {method} {exists}{path} reached a cluster"
            );
        }
    }
    // ... and of one that does not exist for a user whose roles reach every cluster.
    let out = send(g, "GET", "/clusters/team-a/cluster-b/api/jobs/", &vic).await;
    let gone = send(g, "GET", "/clusters/team-a/cluster-z/api/jobs/", &alice).await;
    assert_eq!(same(&out, "cluster-b"), same(&gone, "cluster-z"));
    assert!(
        gone.body_text().contains("no Ray cluster team-a/cluster-z"),
        "{gone:?}"
    );

    // The landing page lists only what each may read.
    let page = send(g, "GET", "/", &vic).await.body_text();
    assert!(
        page.contains("href=\"/clusters/team-a/cluster-a/\""),
        "{page}"
    );
    assert!(!page.contains("cluster-b"), "{page}");
    let page = send(g, "GET", "/", &alice).await.body_text();
    assert!(
        page.contains("cluster-a") && page.contains("cluster-b"),
        "{page}"
    );
    let page = send(g, "GET", "/", &ada).await.body_text();
    assert!(page.contains("No cluster you may read"), "{page}");
    assert_eq!(hits(), before);
}

/// The value of the sample `name` (with its labels, as exported) in `/metrics` text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// `/metrics` of the admin listener.
async fn metrics_of(gw: &GatewayGuard) -> String {
    raw(gw.admin, &get("/metrics", None, "")).await.body_text()
}

/// Discovery's metrics on the real server's `/metrics`: clusters ready and not ready (one
/// whose token Secret is missing), token Secret read failures, watch errors per kind, and
/// the age of the last watch event; label sets fixed, no cluster named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver; run by scripts/test.sh"]
async fn kube_e2e_discovery_metrics_count_clusters_token_failures_and_event_age() {
    let k = KubeApiserver::start();
    let f = Fleet::new(&k, NS, &[]).await;
    let a = head("A").await;
    let b = head("B").await;
    f.store_cluster("cluster-a", a.addr, "token-a").await;
    // cluster-b wants token authentication, but its Secret is not there yet.
    let mut objects = vec![raycluster("cluster-b", json!({"mode": "token"}))];
    objects.extend(fleet::head_objects(
        NS,
        "cluster-b",
        b.addr,
        f.slice_version,
    ));
    f.store_all(&objects).await;

    let dir = tempfile::tempdir().unwrap();
    let kc = fleet::kubeconfig(&k, dir.path(), &f.token(GATEWAY_SA, "").await);
    let gw = start_gateway(&discovery_config(dir.path(), &kc, "")).await;
    const READY: &str = "rayward_gateway_discovery_clusters{state=\"ready\"}";
    const NOT_READY: &str = "rayward_gateway_discovery_clusters{state=\"not_ready\"}";
    const FAILURES: &str = "rayward_gateway_discovery_token_read_failures_total";
    const AGE: &str = "rayward_gateway_discovery_last_event_age_seconds";
    eventually!("one ready, one not", 20, {
        let m = metrics_of(&gw).await;
        sample(&m, READY) == Some(1.0)
            && sample(&m, NOT_READY) == Some(1.0)
            && sample(&m, FAILURES).unwrap_or(0.0) >= 1.0
    });
    let m = metrics_of(&gw).await;
    for kind in ["raycluster", "service", "endpointslice"] {
        let name = format!("rayward_gateway_discovery_watch_errors_total{{kind=\"{kind}\"}}");
        assert_eq!(sample(&m, &name), Some(0.0), "{m}");
    }
    let discovery_lines: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("rayward_gateway_discovery_"))
        .collect();
    assert_eq!(
        discovery_lines.len(),
        7,
        "fixed label sets: {discovery_lines:?}"
    );
    assert!(!m.contains("cluster-a") && !m.contains("cluster-b"), "{m}");

    // The Secret arrives: both ready, and the failures stop.
    f.store_all(&[secret("cluster-b", "token-b")]).await;
    eventually!("both ready", 10, {
        let m = metrics_of(&gw).await;
        sample(&m, READY) == Some(2.0) && sample(&m, NOT_READY) == Some(0.0)
    });
    let failures = sample(&metrics_of(&gw).await, FAILURES).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await; // over two refreshes (1 s)
    let m = metrics_of(&gw).await;
    assert_eq!(sample(&m, FAILURES), Some(failures), "{m}");

    // No event: the age grows; a deleted cluster is an event: it drops again.
    let age = sample(&m, AGE).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = sample(&metrics_of(&gw).await, AGE).unwrap();
    assert!(later >= age + 1.4, "{age} -> {later}");
    f.store
        .delete(&raycluster("cluster-b", json!({})))
        .await
        .unwrap();
    eventually!("cluster-b gone", 10, {
        let m = metrics_of(&gw).await;
        sample(&m, READY) == Some(1.0)
            && sample(&m, NOT_READY) == Some(0.0)
            && sample(&m, AGE).unwrap() < later
    });
}

/// A POST of a job with submission id `id` to `target` with extra `headers`: what `ray job
/// submit` sends, for host routing (the CLI cannot name a host that does not resolve).
async fn post_job(gw: SocketAddr, target: &str, headers: &str, id: &str) -> Raw {
    let body = json!({"entrypoint": "echo by-host", "submission_id": id}).to_string();
    let host = if headers.to_ascii_lowercase().contains("host:") {
        ""
    } else {
        "Host: gw\r\n"
    };
    let req = format!(
        "POST {target} HTTP/1.1\r\n{host}{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw(gw, req.as_bytes()).await
}

/// Ray's job list once every job has finished, so that two reads compare equal unless a
/// job was added, stopped or deleted (60 s at most).
async fn settled_jobs(addr: SocketAddr, token: &str) -> Vec<(String, String)> {
    use crate::common::ray::ray_jobs_at;
    let start = Instant::now();
    loop {
        let jobs = ray_jobs_at(addr, token).await;
        if jobs
            .iter()
            .all(|(_, st)| matches!(st.as_str(), "SUCCEEDED" | "FAILED" | "STOPPED"))
        {
            return jobs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "jobs still running: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn ids(jobs: &[(String, String)]) -> Vec<&str> {
    jobs.iter().map(|(id, _)| id.as_str()).collect()
}

/// The multi-cluster proof with two real Ray 2.60 heads (token auth, each its own token and
/// port set, `rayward_testkit::ray::Ports`), discovered from a real kube-apiserver (RBAC),
/// inside netns-run:
/// - prefix and host routing reach the right head: a job submitted through one cluster's
///   URL is in that head's list and not in the other's;
/// - a ServiceAccount bound to `ray:write` on cluster-a submits with `ray job submit
///   --headers` (the log tail is a WebSocket under the prefix), and gets 403 on cluster-b
///   and on admin routes; a `ray:read` ServiceAccount lists cluster-a's jobs and cannot
///   submit;
/// - the routing bypass cases each get their answer and change neither head's job list;
/// - a cluster deleted from the API server leaves routing, a new one joins within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver and Ray in netns-run; run by scripts/test.sh"]
async fn ray_e2e_discovery_routes_between_two_real_ray_heads_by_prefix_and_host() {
    use crate::common::ray::*;
    let k = KubeApiserver::start();
    let f = Fleet::new(&k, NS, &["writer", "reader"]).await;
    f.grant("w", "writer", "cluster-a", &["ray:read", "ray:write"])
        .await;
    f.grant("r", "reader", "cluster-a", &["ray:read"]).await;
    let writer = format!("Bearer {}", f.token("writer", AUDIENCE).await);
    let reader = format!("Bearer {}", f.token("reader", AUDIENCE).await);

    // Two heads side by side: default ports (A) and the second set (B).
    let (ta, tb) = (random_token(), random_token());
    let ray_a = start_ray_on(Ports::default(), &ta);
    let ray_b = start_ray_on(Ports::second(), &tb);
    wait_for_ray(&ta, &ray_a).await;
    wait_for_ray(&tb, &ray_b).await;
    let (at_a, at_b): (SocketAddr, SocketAddr) = (
        ray_a.dashboard().parse().unwrap(),
        ray_b.dashboard().parse().unwrap(),
    );
    assert_ne!(at_a, at_b);
    f.store_cluster("cluster-a", at_a, &ta).await;
    f.store_cluster("cluster-b", at_b, &tb).await;

    let dir = tempfile::tempdir().unwrap();
    let kc = fleet::kubeconfig(&k, dir.path(), &f.token(GATEWAY_SA, "").await);
    let gw = start_gateway(&discovery_config(dir.path(), &kc, "")).await;
    let g = gw.addr;
    let w_auth = format!("Authorization: {writer}\r\n");
    let r_auth = format!("Authorization: {reader}\r\n");
    let alice = basic("alice", ALICE_PW);
    let alice_auth = format!("Authorization: {alice}\r\n");
    eventually!("both clusters routed", 20, {
        send(
            g,
            "GET",
            "/clusters/team-a/cluster-a/api/version",
            &alice_auth,
        )
        .await
        .status
            == 200
            && send(
                g,
                "GET",
                "/clusters/team-a/cluster-b/api/version",
                &alice_auth,
            )
            .await
            .status
                == 200
    });

    // `ray job` under a cluster's prefix, as a client with no Ray token of its own.
    let job = |cluster: &str, auth: &str, args: &[&str]| {
        let o = ray_a.job(
            "client",
            &format!("http://{g}/clusters/{NS}/{cluster}"),
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
    let submit = |id: &str| ["submit", "--submission-id", id, "--", "echo", id].map(String::from);

    // Prefix routing: the ServiceAccount's job reaches A only, alice's B only.
    let args = submit("sa-on-a");
    let (code, out, err) = job("cluster-a", &writer, &args.each_ref().map(|s| s.as_str()));
    assert_eq!(code, 0, "writer submits to A: {out}\n{err}");
    assert!(out.contains("sa-on-a"), "{out}\n{err}");
    let args = submit("alice-on-b");
    let (code, out, err) = job("cluster-b", &alice, &args.each_ref().map(|s| s.as_str()));
    assert_eq!(code, 0, "alice submits to B: {out}\n{err}");
    assert_eq!(ids(&settled_jobs(at_a, &ta).await), ["sa-on-a"]);
    assert_eq!(ids(&settled_jobs(at_b, &tb).await), ["alice-on-b"]);
    // Host routing: the same, by `Host` alone.
    for (host, id) in [("cluster-a", "host-on-a"), ("cluster-b", "host-on-b")] {
        let r = post_job(
            g,
            "/api/jobs/",
            &format!("Host: {host}.team-a.ray.test\r\n{alice_auth}"),
            id,
        )
        .await;
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }
    let jobs_a = settled_jobs(at_a, &ta).await;
    let jobs_b = settled_jobs(at_b, &tb).await;
    assert_eq!(ids(&jobs_a), ["host-on-a", "sa-on-a"]);
    assert_eq!(ids(&jobs_b), ["alice-on-b", "host-on-b"]);
    // Each job carries its submitter's principal.
    let (code, out, err) = job("cluster-a", &reader, &["list"]);
    assert_eq!(code, 0, "reader lists A: {out}\n{err}");
    assert!(
        out.contains("'rayward.io/submitted-by': 'k8s:system:serviceaccount:team-a:writer'"),
        "{out}"
    );
    assert!(!out.contains("alice-on-b"), "{out}");

    // Refusals: the reader cannot submit; then each case gets its answer and changes
    // neither head.
    let args = submit("reader-try");
    let (code, out, err) = job("cluster-a", &reader, &args.each_ref().map(|s| s.as_str()));
    assert_ne!(code, 0, "{out}");
    assert!(
        format!("{out}{err}").contains("RBAC does not allow ray:write"),
        "{out}\n{err}"
    );
    let both = || async { (settled_jobs(at_a, &ta).await, settled_jobs(at_b, &tb).await) };
    assert_eq!(both().await, (jobs_a.clone(), jobs_b.clone()));
    let host_b = "Host: cluster-b.team-a.ray.test\r\n";
    for (auth, method, target, headers, want) in [
        // The writer has no write on B (prefix, host) and no admin on A.
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-b/api/jobs/",
            "",
            403,
        ),
        (&w_auth, "POST", "/api/jobs/", host_b, 403),
        (
            &w_auth,
            "GET",
            "/clusters/team-a/cluster-a/worker/traceback?pid=1",
            "",
            403,
        ),
        // The reader may not write on A, by prefix or host.
        (
            &r_auth,
            "POST",
            "/clusters/team-a/cluster-a/api/jobs/",
            "",
            403,
        ),
        (
            &r_auth,
            "POST",
            "/api/jobs/",
            "Host: cluster-a.team-a.ray.test\r\n",
            403,
        ),
        // `..` across the prefix, raw and encoded, in both directions.
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-a/../cluster-b/api/jobs/",
            "",
            400,
        ),
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-a/%2e%2e/cluster-b/api/jobs/",
            "",
            400,
        ),
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-a/%2E%2E/%2E%2E/team-a/cluster-b/api/jobs/",
            "",
            400,
        ),
        (
            &r_auth,
            "POST",
            "/clusters/team-a/cluster-b/../cluster-a/api/jobs/",
            "",
            400,
        ),
        (
            &r_auth,
            "POST",
            "/clusters/team-a/cluster-b/%2e%2e/cluster-a/api/jobs/",
            "",
            400,
        ),
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-a%2fcluster-b/api/jobs/",
            "",
            400,
        ),
        // Double slashes.
        (
            &w_auth,
            "POST",
            "/clusters/team-a//cluster-b/api/jobs/",
            "",
            400,
        ),
        (
            &w_auth,
            "POST",
            "/clusters//team-a/cluster-b/api/jobs/",
            "",
            400,
        ),
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-a//api/jobs/",
            "",
            400,
        ),
        // Prefix confusion: a longer name is another (unknown) cluster, a missing slash
        // after `clusters` names none, the prefix without its slash is only redirected.
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-aa/api/jobs/",
            "",
            403,
        ),
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-bb/api/jobs/",
            "",
            403,
        ),
        (
            &w_auth,
            "POST",
            "/clustersteam-a/cluster-a/api/jobs/",
            "",
            404,
        ),
        (&w_auth, "POST", "/clusters/team-a/cluster-b", "", 308),
        (&w_auth, "POST", "/clusters/team-a/cluster-a", "", 308),
        // A Host naming B wins over a path naming A: B is judged (and denies).
        (
            &w_auth,
            "POST",
            "/clusters/team-a/cluster-a/api/jobs/",
            host_b,
            403,
        ),
        // Absolute-form targets naming another cluster.
        (
            &w_auth,
            "POST",
            "http://cluster-b.team-a.ray.test/api/jobs/",
            "",
            400,
        ),
        (
            &w_auth,
            "POST",
            "http://gw/clusters/team-a/cluster-b/api/jobs/",
            "",
            400,
        ),
        (
            &r_auth,
            "POST",
            "http://cluster-a.team-a.ray.test/api/jobs/",
            "",
            400,
        ),
        // No cluster named.
        (&w_auth, "POST", "/api/jobs/", "", 404),
    ] {
        let r = send(g, method, target, &format!("{headers}{auth}")).await;
        assert_eq!(r.status, want, "{method} {target} {headers:?}: {r:?}");
        assert_eq!(
            both().await,
            (jobs_a.clone(), jobs_b.clone()),
            "{method} {target} {headers:?} changed a cluster"
        );
    }

    // A deleted cluster leaves routing; a new one (B's head under another name) joins.
    f.store
        .delete(&raycluster("cluster-b", json!({})))
        .await
        .unwrap();
    eventually!("cluster-b gone", 10, {
        send(
            g,
            "GET",
            "/clusters/team-a/cluster-b/api/jobs/",
            &alice_auth,
        )
        .await
        .status
            == 404
    });
    f.store_cluster("cluster-c", at_b, &tb).await;
    eventually!("cluster-c routed", 10, {
        let r = send(
            g,
            "GET",
            "/clusters/team-a/cluster-c/api/jobs/",
            &alice_auth,
        )
        .await;
        r.status == 200 && r.body_text().contains("alice-on-b")
    });
    assert_eq!(both().await, (jobs_a, jobs_b));
    drop(gw);
    drop(ray_b);
    drop(ray_a);
}
