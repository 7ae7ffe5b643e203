//! Kubernetes identities against a real kube-apiserver (v1.20, RBAC; shared/tools via
//! `rayward_testkit::apiserver`): ServiceAccount tokens from the TokenRequest API are
//! checked with TokenReview (audience `rayward-gateway`), and RBAC Roles with the custom
//! verbs `ray:read` / `ray:write` on `rayclusters.ray.io` (narrowed by `resourceNames`)
//! authorize by route class through SubjectAccessReview. A revoked binding is honoured
//! within the decision cache's TTL; with the API server stopped, new tokens get 503 and
//! nothing reaches the upstream, while cached decisions hold. Run by scripts/test.sh.

use crate::common;

use common::*;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use rayward_testkit::apiserver::{ensure_namespace, KubeApiserver};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(crate) const NS: &str = "team-a";
pub(crate) const AUDIENCE: &str = "rayward-gateway";

pub(crate) async fn create<K>(api: &Api<K>, obj: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let o: K = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &o).await.unwrap();
}

/// A Role granting `verbs` on RayCluster `cluster`, bound to ServiceAccount `sa`.
pub(crate) async fn grant(client: &Client, name: &str, sa: &str, cluster: &str, verbs: &[&str]) {
    rayward_testkit::fleet::grant(client, NS, name, sa, cluster, verbs).await
}

/// A token of ServiceAccount `sa` for `audience` ("": the API server's own).
pub(crate) async fn token(client: &Client, sa: &str, audience: &str) -> String {
    rayward_testkit::fleet::service_account_token(client, NS, sa, audience).await
}

/// A kubeconfig with the gateway's own ServiceAccount token
/// ([`rayward_testkit::fleet::kubeconfig`]).
pub(crate) fn gateway_kubeconfig(
    k: &KubeApiserver,
    dir: &std::path::Path,
    token: &str,
) -> std::path::PathBuf {
    rayward_testkit::fleet::kubeconfig(k, dir, token)
}

async fn status(gw: std::net::SocketAddr, method: &str, path: &str, token: &str) -> u16 {
    let body = r#"{"entrypoint":"echo hi"}"#;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw(gw, req.as_bytes()).await.status
}

fn metric(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver; run by scripts/test.sh"]
async fn kube_e2e_service_account_tokens_and_rbac_verbs_on_the_raycluster() {
    let k = KubeApiserver::start();
    let client = k.client().await;
    ensure_namespace(&client, NS).await;
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    for sa in [
        "writer",
        "reader",
        "late",
        "unseen",
        "ci",
        "rayward-gateway",
    ] {
        create(&sas, json!({"metadata": {"name": sa}})).await;
    }
    // The RBAC examples of docs/gateway/rbac.yaml, stored as they are: the gateway runs as
    // the ServiceAccount they bind to system:auth-delegator (no more than that), and their
    // Role lets the ServiceAccount ci submit to cluster-a.
    let docs = rayward_testkit::cli::repo_root().join("docs/gateway/rbac.yaml");
    let store = rayward_testkit::apiserver::DryRun::new(client.clone()).await;
    for m in rayward_testkit::yaml::load_manifests(&docs).unwrap() {
        store
            .store(NS, &m.value)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", m.id()));
    }
    // writer: ray:write (and read) on cluster-a only; reader: ray:read on both clusters.
    grant(
        &client,
        "a-submitter",
        "writer",
        "cluster-a",
        &["ray:read", "ray:write"],
    )
    .await;
    grant(&client, "a-viewer", "reader", "cluster-a", &["ray:read"]).await;
    grant(&client, "b-viewer", "reader", "cluster-b", &["ray:read"]).await;
    let writer = token(&client, "writer", AUDIENCE).await;
    let reader = token(&client, "reader", AUDIENCE).await;
    let late = token(&client, "late", AUDIENCE).await;
    // Another account: a second token of the same one within a second is the same JWT.
    let unseen = token(&client, "unseen", AUDIENCE).await;
    let wrong_audience = token(&client, "writer", "some-other-service").await;

    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let gateway_sa = token(&client, "rayward-gateway", "").await;
    let kc = gateway_kubeconfig(&k, dir.path(), &gateway_sa);
    let ci = token(&client, "ci", AUDIENCE).await;
    let up = upstream().await;
    let gateway_for = |cluster: &str, decision_secs: u64| {
        config(
            dir.path(),
            &format!("http://{}", up.addr),
            &tok,
            &format!(
                "[kubernetes]\nkubeconfig = \"{}\"\naudiences = [\"{AUDIENCE}\"]\nnamespace = \"{NS}\"\ncluster = \"{cluster}\"\ndecision_cache_secs = {decision_secs}\ntimeout_ms = 1500\n[limits]\nfailed_login_threshold = 1000\nrequests_per_second = 0\n",
                kc.display()
            ),
        )
    };
    let a = start_gateway(&gateway_for("cluster-a", 2)).await;
    let b = start_gateway(&gateway_for("cluster-b", 60)).await;
    let hits = || up.hits.load(Ordering::SeqCst);

    // Cluster A: the submitter's ServiceAccount lists and submits; admin routes are not
    // in its Role; the viewer's reads but cannot submit.
    assert_eq!(status(a.addr, "GET", "/api/jobs/", &writer).await, 200);
    assert_eq!(status(a.addr, "POST", "/api/jobs/", &writer).await, 200);
    assert_eq!(
        status(a.addr, "GET", "/worker/traceback?pid=1", &writer).await,
        403
    );
    assert_eq!(status(a.addr, "GET", "/api/jobs/", &reader).await, 200);
    assert_eq!(status(a.addr, "POST", "/api/jobs/", &reader).await, 403);
    assert_eq!(status(a.addr, "DELETE", "/api/jobs/x", &reader).await, 403);
    // A ServiceAccount without any binding, a token for another audience, junk: refused.
    assert_eq!(status(a.addr, "GET", "/api/jobs/", &late).await, 403);
    assert_eq!(
        status(a.addr, "GET", "/api/jobs/", &wrong_audience).await,
        401
    );
    assert_eq!(
        status(a.addr, "GET", "/api/jobs/", "not-a-token").await,
        401
    );
    // A signature byte changed (not the last character: its low bits are padding that
    // base64 decoders ignore, so changing it may leave the signature as it was).
    let i = writer.len() - 10;
    let flipped = if &writer[i..=i] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &writer[..i], &writer[i + 1..]);
    assert_eq!(status(a.addr, "GET", "/api/jobs/", &forged).await, 401);
    // The docs' example: ci submits to cluster-a.
    assert_eq!(status(a.addr, "POST", "/api/jobs/", &ci).await, 200);
    assert_eq!(status(b.addr, "POST", "/api/jobs/", &ci).await, 403);
    // The gateway's own users coexist.
    let r = raw(a.addr, &get("/api/jobs/", Some(&basic("vic", VIC_PW)), "")).await;
    assert_eq!(r.status, 200);
    assert_eq!(hits(), 5, "only the allowed requests reached the upstream");

    // Cluster B: the writer's Role names cluster-a only.
    assert_eq!(status(b.addr, "GET", "/api/jobs/", &writer).await, 403);
    assert_eq!(status(b.addr, "GET", "/api/jobs/", &reader).await, 200);
    assert_eq!(hits(), 6);

    // Groups reach the SubjectAccessReview: every ServiceAccount of the namespace (group
    // system:serviceaccounts:team-a) may read cluster-c, none may write.
    create(
        &Api::<Role>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": "c-viewer"},
               "rules": [{"apiGroups": ["ray.io"], "resources": ["rayclusters"],
                          "resourceNames": ["cluster-c"], "verbs": ["ray:read"]}]}),
    )
    .await;
    create(
        &Api::<RoleBinding>::namespaced(client.clone(), NS),
        json!({"metadata": {"name": "c-viewer"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "c-viewer"},
               "subjects": [{"kind": "Group", "name": "system:serviceaccounts:team-a",
                             "apiGroup": "rbac.authorization.k8s.io"}]}),
    )
    .await;
    let c = start_gateway(&gateway_for("cluster-c", 2)).await;
    assert_eq!(status(c.addr, "GET", "/api/jobs/", &late).await, 200);
    assert_eq!(status(c.addr, "POST", "/api/jobs/", &late).await, 403);
    assert_eq!(status(c.addr, "POST", "/api/jobs/", &writer).await, 403);
    assert_eq!(hits(), 7);
    drop(c);

    // Audit: namespaced principals, the RBAC verb as the role.
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(
        log.contains(r#""user":"k8s:system:serviceaccount:team-a:writer","role":"rbac:ray:write","source":"127.0.0.1","method":"POST","path":"/api/jobs/","class":"write","status":200"#),
        "{log}"
    );
    assert!(
        log.contains("RBAC does not allow ray:write on rayclusters.ray.io team-a/cluster-a"),
        "{log}"
    );
    assert!(!log.contains(&writer[20..60]), "no token in the audit log");

    // A revoked binding is honoured within the decision cache's TTL (2 s here).
    Api::<RoleBinding>::namespaced(client.clone(), NS)
        .delete("a-submitter", &DeleteParams::default())
        .await
        .unwrap();
    let revoked = Instant::now();
    loop {
        let s = status(a.addr, "POST", "/api/jobs/", &writer).await;
        if s == 403 {
            break;
        }
        assert_eq!(s, 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(2 + 3),
            "the revoked binding still allowed a submission after the cache TTL"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hits_before_outage = hits();

    // The API server goes away.
    drop(k);
    // A token never seen: 503, fail closed, nothing forwarded.
    let r = raw(
        b.addr,
        &get("/api/jobs/", Some(&format!("Bearer {late}")), ""),
    )
    .await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(status(a.addr, "GET", "/api/jobs/", &unseen).await, 503);
    // A cached identity whose decision expired (A caches 2 s): 503 as well.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(status(a.addr, "GET", "/api/jobs/", &reader).await, 503);
    assert_eq!(hits(), hits_before_outage, "nothing reached the upstream");
    // Cached decisions hold until they expire (B caches 60 s): allowed and denied alike.
    assert_eq!(status(b.addr, "GET", "/api/jobs/", &reader).await, 200);
    assert_eq!(status(b.addr, "GET", "/api/jobs/", &writer).await, 403);
    assert_eq!(hits(), hits_before_outage + 1);
    // Counted and audited.
    let m = raw(a.admin, &get("/metrics", None, "")).await.body_text();
    assert!(
        metric(
            &m,
            "rayward_gateway_kube_unavailable_total{call=\"tokenreview\"} "
        ) >= 1,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "rayward_gateway_kube_unavailable_total{call=\"subjectaccessreview\"} "
        ) >= 1,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "rayward_gateway_requests_total{class=\"read\",outcome=\"unavailable\"} "
        ) >= 2,
        "{m}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let outage: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(r#""status":503"#))
        .collect();
    assert!(outage.len() >= 3, "{log}");
    assert!(
        outage
            .iter()
            .all(|l| l.contains("Kubernetes API server unavailable")),
        "{outage:?}"
    );
}
