//! Requests the gateway answers itself (health and metrics on the admin listener, login,
//! logout, the dashboard's authentication-mode probe) are counted under their own labels,
//! never as `forwarded`, and none of them reaches the upstream. The public port answers
//! neither health nor metrics: it carries Ray traffic only.

use crate::common;

use common::*;
use std::sync::atomic::Ordering;

fn count(metrics: &str, class: &str, outcome: &str) -> u64 {
    let want =
        format!("rayward_gateway_requests_total{{class=\"{class}\",outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(want.as_str()))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test]
async fn own_answers_are_counted_by_class_and_never_as_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("ray_token");
    std::fs::write(&tok, "cluster-token").unwrap();
    let key = dir.path().join("session.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let up = upstream().await;
    let text = config(
        dir.path(),
        &format!("http://{}", up.addr),
        &tok,
        &format!("[session]\nkey_file = \"{}\"\n", key.display()),
    );
    let gw = start_gateway(&text).await;
    let alice = basic("alice", ALICE_PW);

    assert_eq!(raw(gw.admin, &get("/healthz", None, "")).await.status, 200);
    assert_eq!(raw(gw.admin, &get("/readyz", None, "")).await.status, 200);
    assert_eq!(
        raw(gw.admin, &get("/api/jobs/", None, "")).await.status,
        404
    );
    // On the public port these are no gateway endpoint: an unknown route, 401 without
    // credentials and 403 (denied route) with them.
    assert_eq!(raw(gw.addr, &get("/metrics", None, "")).await.status, 401);
    assert_eq!(
        raw(gw.addr, &get("/healthz", Some(&alice), ""))
            .await
            .status,
        403
    );
    let (c, t) = login_form(gw.addr).await;
    let ok = raw(gw.addr, &login_post("alice", ALICE_PW, Some((&c, &t)), "")).await;
    assert_eq!(ok.status, 303);
    assert!(ok.header("set-cookie").is_some());
    let bad = raw(gw.addr, &login_post("alice", "wrong", Some((&c, &t)), "")).await;
    assert_eq!(bad.status, 303);
    assert_eq!(
        bad.header("location").as_deref(),
        Some("/rayward/login?failed")
    );
    let logout = "POST /rayward/logout HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(gw.addr, logout.as_bytes()).await.status, 303);
    let mode = raw(gw.addr, &get("/api/authentication_mode", Some(&alice), "")).await;
    assert_eq!(mode.status, 200);
    assert!(mode.body_text().contains("disabled"));
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        0,
        "none of these reached the upstream"
    );
    // One forwarded request for contrast.
    assert_eq!(
        raw(gw.addr, &get("/api/jobs/", Some(&alice), ""))
            .await
            .status,
        200
    );
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);

    let m = raw(gw.admin, &get("/metrics", None, "")).await.body_text();
    // healthz, readyz, login page, login ok, logout, and this /metrics itself.
    assert_eq!(count(&m, "gateway", "answered"), 6, "{m}");
    assert_eq!(count(&m, "gateway", "unauthenticated"), 1, "{m}");
    assert_eq!(count(&m, "denied", "unauthenticated"), 1, "{m}");
    assert_eq!(count(&m, "denied", "forbidden"), 1, "{m}");
    assert_eq!(count(&m, "read", "answered"), 1, "{m}");
    assert_eq!(count(&m, "read", "forwarded"), 1, "{m}");
    assert_eq!(count(&m, "denied", "forwarded"), 0, "{m}");
    assert_eq!(count(&m, "gateway", "forwarded"), 0, "{m}");
    let m2 = raw(gw.admin, &get("/metrics", None, "")).await.body_text();
    assert_eq!(count(&m2, "gateway", "answered"), 7, "{m2}");

    // The failed login is audited under the gateway's class, not as a denied Ray route.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let failed: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["path"] == "/rayward/login")
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(failed[0]["class"], "gateway", "{log}");
}
