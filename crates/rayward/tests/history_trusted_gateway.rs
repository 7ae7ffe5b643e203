//! `rayward history serve` with `[trusted_gateway]`, through the binary and a real socket:
//! the gateway's signed assertion ([`rayward_auth::assertion`], signed here with the same
//! code and key file the gateway uses) is the caller's identity and authorization, for
//! exactly one request: its method, its path and query, its cluster, once, while fresh,
//! under a listed key. Every other assertion gets 401 and an audit record; requests
//! without one get serve's own authentication; without the section the header means
//! nothing. The user's name and `via: gateway` are in serve's audit log.

use crate::history_serve::*;
use rayward_auth::assertion::{Claims, Keys, GATEWAY_PRINCIPAL, HEADER, LISTING};

const OLD_KEY: &str = "old-key-0123456789abcdef0123456789abcdef";
const NEW_KEY: &str = "new-key-0123456789abcdef0123456789abcdef";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn keys(k: &str) -> Keys {
    Keys::parse(k.as_bytes()).unwrap()
}

/// An assertion header line for `sub` on `scope`, for `method path` (path and query).
fn assert_line(k: &Keys, sub: &str, scope: &str, method: &str, path: &str) -> String {
    let a = k.issue(sub, &["team".into()], scope, method, path, now(), 15);
    format!("{HEADER}: {a}\r\n")
}

fn audit(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn serve_takes_the_gateway_assertion_for_exactly_one_fresh_request() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    // Rotation in progress: both keys accepted.
    let key_file = d.path().join("gateway.key");
    std::fs::write(&key_file, format!("{NEW_KEY}\n{OLD_KEY}\n")).unwrap();
    let cfg = write_config(
        d.path(),
        &store,
        &format!(
            "[trusted_gateway]\nkey_file = {:?}\n",
            key_file.display().to_string()
        ),
    );
    let srv = start(&cfg);
    let a = srv.addr;
    let (new, old) = (keys(NEW_KEY), keys(OLD_KEY));
    let base = format!("/clusters/team-a/rayjob/train/{S1}");
    let scope = "team-a/rayjob/train";
    // carol may read nothing of team-a by serve's own roles: the gateway's word decides.
    let user = "k8s:system:serviceaccount:team-a:carol";

    // A fresh assertion: the session's Jobs API, the UI, a log download with a range.
    let jobs = format!("{base}/api/jobs/");
    let (st, _, body) = get(a, &jobs, &assert_line(&new, user, scope, "GET", &jobs));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("raysubmit_bad"));
    let (st, _, _) = get(
        a,
        &format!("{base}/"),
        &assert_line(&old, user, scope, "GET", &format!("{base}/")),
    );
    assert_eq!(st, 200, "a key still listed verifies");
    let log = format!("{base}/api/v0/logs/file?node_id={HEAD_ID}&filename=raylet.out");
    let (st, h, body) = get(
        a,
        &log,
        &format!(
            "{}Range: bytes=11-21\r\n",
            assert_line(&new, user, scope, "GET", &log)
        ),
    );
    assert_eq!((st, &body[..]), (206, &b"line 00001\n"[..]));
    assert_eq!(header(&h, "content-range"), Some("bytes 11-21/33000"));

    // The gateway's listing fetch: every session, only for its own principal.
    let (st, _, body) = get(
        a,
        "/api/clusters",
        &assert_line(&new, GATEWAY_PRINCIPAL, LISTING, "GET", "/api/clusters"),
    );
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2, "{v}");

    // Refused, each with 401, nothing of the store in the answer.
    let other = format!("/clusters/team-b/rayjob/other/{S1}/api/jobs/");
    let captured = assert_line(&new, user, scope, "GET", &jobs);
    let (st, _, _) = get(a, &jobs, &captured);
    assert_eq!(st, 200, "first use");
    let forged = {
        let k = keys("another-key-0123456789abcdef0123456789ab");
        assert_line(&k, user, scope, "GET", &jobs)
    };
    let expired = {
        let c = Claims {
            sub: user.into(),
            groups: vec![],
            scope: scope.into(),
            method: "GET".into(),
            path: jobs.clone(),
            iat: now() - 120,
            exp: now() - 105,
            jti: "00112233445566778899aabbccddeeff".into(),
        };
        format!("{HEADER}: {}\r\n", new.sign(&c))
    };
    let too_long = {
        let a = new.issue(user, &[], scope, "GET", &jobs, now(), 3600);
        format!("{HEADER}: {a}\r\n")
    };
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "replayed on the same path",
            jobs.clone(),
            captured.clone(),
            "GET",
        ),
        // The captured assertion's path is team-a's: replayed on team-b's session.
        (
            "replayed on another session",
            other.clone(),
            captured.clone(),
            "GET",
        ),
        ("forged signature", jobs.clone(), forged, "GET"),
        ("expired", jobs.clone(), expired, "GET"),
        ("valid for an hour", jobs.clone(), too_long, "GET"),
        (
            "for HEAD, sent with GET",
            jobs.clone(),
            assert_line(&new, user, scope, "HEAD", &jobs),
            "GET",
        ),
        (
            "another query",
            format!("{jobs}?limit=1"),
            assert_line(&new, user, scope, "GET", &jobs),
            "GET",
        ),
        (
            "signed path but another cluster's scope",
            other.clone(),
            assert_line(&new, user, scope, "GET", &other),
            "GET",
        ),
        (
            "the listing for a user",
            "/api/clusters".into(),
            assert_line(&new, user, LISTING, "GET", "/api/clusters"),
            "GET",
        ),
        (
            "garbage",
            jobs.clone(),
            format!("{HEADER}: v1.x.y\r\n"),
            "GET",
        ),
        (
            "two assertions",
            jobs.clone(),
            format!(
                "{}{}",
                assert_line(&new, user, scope, "GET", &jobs),
                assert_line(&new, user, scope, "GET", &jobs)
            ),
            "GET",
        ),
    ];
    for (what, path, line, method) in &cases {
        let (st, _, body) = raw(
            a,
            &format!("{method} {path} HTTP/1.1\r\nHost: h\r\n{line}Connection: close\r\n\r\n"),
        );
        assert_eq!(st, 401, "{what}: {}", String::from_utf8_lossy(&body));
        assert!(
            !String::from_utf8_lossy(&body).contains("raysubmit"),
            "{what}"
        );
    }
    // Without an assertion, serve's own authentication: none sent, 401.
    let (st, _, _) = get(a, &jobs, "");
    assert_eq!(st, 401);

    // The audit log: the gateway's users by name, each refusal with its reason.
    drop(srv);
    let records = audit(d.path());
    let opened: Vec<_> = records
        .iter()
        .filter(|r| r["via"] == "gateway" && r["user"] == user && r["status"] == 206)
        .collect();
    assert_eq!(opened.len(), 1, "{records:?}");
    assert_eq!(opened[0]["event"], "download_log");
    assert!(records
        .iter()
        .any(|r| r["event"] == "open_session" && r["user"] == user && r["via"] == "gateway"));
    let denied: Vec<&str> = records
        .iter()
        .filter(|r| r["event"] == "denied" && r["via"] == "gateway")
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(denied.len(), cases.len(), "{denied:?}");
    for want in [
        "already used",
        "does not verify",
        "expired",
        "valid for too long",
        "not this method",
        "another path",
        "another scope",
        "malformed",
    ] {
        assert!(
            denied.iter().any(|r| r.contains(want)),
            "{want}: {denied:?}"
        );
    }
}

#[test]
fn without_the_section_serve_ignores_the_assertion_header() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    let cfg = write_config(d.path(), &store, "");
    let srv = start(&cfg);
    let k = keys(NEW_KEY);
    let other = format!("/clusters/team-b/rayjob/other/{S1}/api/jobs/");
    let line = assert_line(&k, "htpasswd:bob", "team-b/rayjob/other", "GET", &other);
    // alice's own credentials decide (team-b is not hers: 404); no credentials: 401.
    let (st, _, _) = get(srv.addr, &other, &format!("{line}{}", basic("alice")));
    assert_eq!(st, 404);
    let (st, _, _) = get(srv.addr, &other, &line);
    assert_eq!(st, 401);
    let (st, _, _) = get(srv.addr, &other, &basic("bob"));
    assert_eq!(st, 200);
}

struct Out {
    code: i32,
    stderr: String,
}

#[test]
fn a_gateway_only_serve_needs_no_auth_section_and_checks_its_key_file() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    build_store(&store);
    let key_file = d.path().join("gateway.key");
    std::fs::write(&key_file, "short\n").unwrap();
    let ui = d.path().join("ui");
    std::fs::create_dir_all(&ui).unwrap();
    std::fs::write(ui.join("index.html"), "x").unwrap();
    let cfg = d.path().join("h.toml");
    let text = |extra: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nstore = {:?}\ndashboard_dir = {:?}\n{extra}",
            store.display().to_string(),
            ui.display().to_string()
        )
    };
    let run = |t: String| {
        std::fs::write(&cfg, t).unwrap();
        let (code, _, stderr) = rayward_testkit::cli::run(
            std::process::Command::new(env!("CARGO_BIN_EXE_rayward")).args([
                "history",
                "serve",
                "--config",
                cfg.to_str().unwrap(),
            ]),
        );
        Out { code, stderr }
    };
    let tg = format!(
        "[trusted_gateway]\nkey_file = {:?}\n",
        key_file.display().to_string()
    );
    let out = run(text(""));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("[trusted_gateway]"), "{}", out.stderr);
    let out = run(text(&tg));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("gateway.key") && out.stderr.contains("at least 32"),
        "{}",
        out.stderr
    );
    let out = run(text(&format!("{tg}max_age_secs = 0\n")));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("max_age_secs"), "{}", out.stderr);
    let out = run(text(&format!("live_base_url = \"ftp://x\"\n{tg}")));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("live_base_url"), "{}", out.stderr);

    // A valid key: no [auth], and nothing but an assertion lets anyone in.
    std::fs::write(&key_file, format!("{NEW_KEY}\n")).unwrap();
    std::fs::write(&cfg, text(&tg)).unwrap();
    let srv = start(&cfg);
    let (st, _, _) = get(srv.addr, "/api/clusters", &basic("alice"));
    assert_eq!(st, 401);
    let (st, _, _) = get(
        srv.addr,
        "/api/clusters",
        &assert_line(
            &keys(NEW_KEY),
            GATEWAY_PRINCIPAL,
            LISTING,
            "GET",
            "/api/clusters",
        ),
    );
    assert_eq!(st, 200);
}
