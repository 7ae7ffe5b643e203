//! The gateway in front of a real Ray 2.60 with token auth on, driven by Ray's own CLI,
//! plus the bypass suite: crafted raw requests, each checked for the gateway's answer and
//! for Ray's job list staying unchanged. Runs inside shared/tools/netns-run (only
//! loopback), started by scripts/test.sh:
//!
//! `RAYWARD_RAY_VENV=… ../shared/tools/netns-run cargo test -p rayward-gateway --test rayward-gateway -- --ignored ray_e2e::`

use crate::common;

use common::ray::*;
use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Ray in netns-run; run by scripts/test.sh"]
async fn ray_e2e_gateway_in_front_of_real_ray() {
    let home = tempfile::tempdir().unwrap();
    let token = random_token();
    let ray = start_ray(&token);
    wait_for_ray(&token, &ray).await;
    // Ray itself refuses a request without its token (the gap the gateway closes).
    let direct = raw(RAY_DASHBOARD.parse().unwrap(), &get("/api/jobs/", None, "")).await;
    assert_eq!(direct.status, 401);

    let tok_file = home.path().join("cluster-token");
    std::fs::write(&tok_file, &token).unwrap();
    let cfg = config(
        home.path(),
        &format!("http://{RAY_DASHBOARD}"),
        &tok_file,
        "[limits]\nfailed_login_threshold = 1000\nrequests_per_second = 0\n",
    );
    let gw = start_gateway(&cfg).await;
    let g = gw.addr;
    let vic = basic("vic", VIC_PW);
    let alice = basic("alice", ALICE_PW);
    let ada = basic("ada", ADA_PW);

    let wd = home.path().join("wd");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("data.txt"), "payload-from-working-dir\n").unwrap();
    std::fs::write(
        wd.join("script.py"),
        "print('hello through rayward gateway')\nprint(open('data.txt').read().strip())\n",
    )
    .unwrap();
    let wd_s = wd.to_str().unwrap().to_string();

    let before = ray_jobs(&token).await;

    // Viewer: list works.
    let (code, out, err) = ray_job(&ray, g, Some(&vic), &["list"]);
    assert_eq!(code, 0, "viewer list: {out}\n{err}");
    // No credentials: refused with 401.
    let (code, out, err) = ray_job(&ray, g, None, &["list"]);
    assert_ne!(code, 0, "{out}");
    // Ray's CLI words a 401 as "Authentication required: <body>".
    let said = format!("{out}{err}");
    assert!(
        said.contains("Authentication required: credentials required"),
        "{out}\n{err}"
    );
    // Viewer submission: refused with 403, no job appears in Ray.
    let (code, out, err) = ray_job(
        &ray,
        g,
        Some(&vic),
        &[
            "submit",
            "--working-dir",
            &wd_s,
            "--submission-id",
            "viewer-try",
            "--",
            "python",
            "script.py",
        ],
    );
    assert_ne!(code, 0, "{out}");
    // Ray's CLI words a 403 as "Authentication failed: <body>".
    let said = format!("{out}{err}");
    assert!(
        said.contains("Authentication failed: role viewer may not use write routes"),
        "{out}\n{err}"
    );
    assert_eq!(ray_jobs(&token).await, before, "viewer created a job");

    // Submitter: upload, submission and log tail (WebSocket) through the gateway.
    let (code, out, err) = ray_job(
        &ray,
        g,
        Some(&alice),
        &[
            "submit",
            "--working-dir",
            &wd_s,
            "--submission-id",
            "rayward-e2e-1",
            "--",
            "python",
            "script.py",
        ],
    );
    assert_eq!(code, 0, "submitter submit: {out}\n{err}");
    assert!(
        out.contains("hello through rayward gateway"),
        "log tail: {out}\n{err}"
    );
    assert!(
        out.contains("payload-from-working-dir"),
        "upload: {out}\n{err}"
    );
    let after_submit = ray_jobs(&token).await;
    assert!(
        after_submit.contains(&("rayward-e2e-1".to_string(), "SUCCEEDED".to_string())),
        "{after_submit:?}"
    );
    // Logs with --follow (WebSocket) as the viewer: read is allowed.
    let (code, out, err) = ray_job(&ray, g, Some(&vic), &["logs", "--follow", "rayward-e2e-1"]);
    assert_eq!(code, 0, "viewer logs --follow: {out}\n{err}");
    assert!(
        out.contains("hello through rayward gateway"),
        "{out}\n{err}"
    );
    let (code, out, err) = ray_job(&ray, g, Some(&vic), &["status", "rayward-e2e-1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Job 'rayward-e2e-1' succeeded"), "{out}");

    // The audit log names the user and the entrypoint.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let audit: Vec<serde_json::Value> = std::fs::read_to_string(home.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let submit = audit
        .iter()
        .find(|r| r["method"] == "POST" && r["path"] == "/api/jobs/" && r["status"] == 200)
        .unwrap_or_else(|| panic!("no submission in {audit:?}"));
    assert_eq!(submit["user"], "htpasswd:alice");
    assert_eq!(submit["role"], "submitter");
    assert_eq!(submit["entrypoint"], "python script.py");
    assert_eq!(submit["submission_id"], "rayward-e2e-1");
    assert!(
        audit
            .iter()
            .any(|r| r["user"] == "htpasswd:vic" && r["status"] == 403),
        "viewer's refusal audited: {audit:?}"
    );
    let text = std::fs::read_to_string(home.path().join("audit.jsonl")).unwrap();
    for secret in [token.as_str(), VIC_PW, ALICE_PW] {
        assert!(!text.contains(secret), "secret in audit log");
    }

    // The bypass suite.
    let jobs = ray_jobs(&token).await;
    let suite = bypass_suite(&vic, &alice, &ada, &token);
    assert!(suite.len() >= 40, "{} cases", suite.len());
    let mut failures = Vec::new();
    for (name, request, want) in &suite {
        let r = raw(g, request).await;
        if r.status != *want {
            failures.push(format!(
                "{name}: got {} want {want}: {}",
                r.status,
                r.body_text().trim()
            ));
        }
        let now = ray_jobs(&token).await;
        assert_eq!(now, jobs, "{name}: Ray's job list changed");
    }
    assert!(
        failures.is_empty(),
        "bypass suite:\n{}",
        failures.join("\n")
    );

    // The dashboard UI's page comes through for a viewer, and the UI is told not to ask
    // for Ray's token.
    let page = raw(g, &get("/", Some(&vic), "Accept: text/html\r\n")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body_text()
            .to_ascii_lowercase()
            .contains("<!doctype html"),
        "{}",
        page.body_text()
    );
    let mode = raw(g, &get("/api/authentication_mode", Some(&vic), "")).await;
    assert_eq!(mode.body_text(), r#"{"authentication_mode": "disabled"}"#);
    // Ray itself says token (what the gateway hides from the UI).
    let direct = raw(
        RAY_DASHBOARD.parse().unwrap(),
        &get("/api/authentication_mode", None, ""),
    )
    .await;
    assert!(
        direct.body_text().contains("token"),
        "{}",
        direct.body_text()
    );
    drop(gw);
    drop(ray);
}

/// (name, raw request, expected status). Every case tries to do what the credentials
/// (or their absence) do not allow, mostly to submit a job as a viewer.
fn bypass_suite(
    vic: &str,
    alice: &str,
    ada: &str,
    ray_token: &str,
) -> Vec<(&'static str, Vec<u8>, u16)> {
    let job = r#"{"entrypoint":"echo pwned"}"#;
    let post = |target: &str, auth: Option<&str>, extra: &str| -> Vec<u8> {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "POST {target} HTTP/1.1\r\nHost: gw\r\n{auth}{extra}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{job}",
            job.len()
        )
        .into_bytes()
    };
    let chunked_job = format!("{:x}\r\n{job}\r\n0\r\n\r\n", job.len());
    let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let v = Some(vic);
    let mut many_headers = String::new();
    for i in 0..150 {
        many_headers.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    vec![
        // Encodings and dot segments that some stacks turn into /api/jobs/.
        ("decoded unreserved escape still classified", post("/api/%6aobs/", v, ""), 403),
        ("encoded slash", post("/api%2Fjobs/", v, ""), 400),
        ("encoded slash lower", post("/api/jobs%2f", v, ""), 400),
        ("double-encoded slash", post("/api%252Fjobs/", v, ""), 400),
        ("double-encoded dot", post("/api/jobs/%252e", v, ""), 400),
        ("encoded dot-dot", post("/static/%2e%2e/api/jobs/", v, ""), 400),
        ("mixed dot-dot", post("/static/.%2E/api/jobs/", v, ""), 400),
        ("raw dot-dot", post("/static/../api/jobs/", v, ""), 400),
        ("dot segment", post("/api/./jobs/", v, ""), 400),
        ("leading double slash", post("//api/jobs/", v, ""), 400),
        ("inner double slash", post("/api//jobs/", v, ""), 400),
        ("trailing dot", post("/api/jobs./", v, ""), 400),
        ("semicolon param", post("/api/jobs/;x=1", v, ""), 400),
        ("semicolon in segment", post("/api;/jobs/", v, ""), 400),
        ("encoded semicolon", post("/api/jobs%3B/", v, ""), 400),
        ("backslash", post("/api\\jobs/", v, ""), 400),
        ("encoded backslash", post("/api%5Cjobs/", v, ""), 400),
        ("encoded NUL", post("/api/jobs/%00", v, ""), 400),
        ("encoded space", post("/api/jobs/%20", v, ""), 400),
        ("upper-case path", post("/API/JOBS/", v, ""), 403),
        ("mixed-case path", post("/api/Jobs/", v, ""), 403),
        ("job agent route", post("/api/job_agent/jobs/", v, ""), 403),
        // Methods.
        ("method override header", get("/api/jobs/", v, "X-HTTP-Method-Override: POST\r\n"), 400),
        ("X-HTTP-Method", get("/api/jobs/", v, "X-HTTP-Method: POST\r\n"), 400),
        ("X-Method-Override", get("/api/jobs/", v, "X-Method-Override: DELETE\r\n"), 400),
        ("lower-case method", format!("post /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes(), 403),
        ("OPTIONS", format!("OPTIONS /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nConnection: close\r\n\r\n").into_bytes(), 403),
        ("HEAD is a read", format!("HEAD /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nConnection: close\r\n\r\n").into_bytes(), 200),
        ("TRACE", format!("TRACE / HTTP/1.1\r\nHost: gw\r\nAuthorization: {ada}\r\nConnection: close\r\n\r\n").into_bytes(), 405),
        ("PATCH", format!("PATCH /api/jobs/rayward-e2e-1 HTTP/1.1\r\nHost: gw\r\nAuthorization: {ada}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes(), 403),
        // Absolute-form targets.
        ("absolute-form to Ray", post(&format!("http://{RAY_DASHBOARD}/api/jobs/"), v, ""), 400),
        ("absolute-form GET", get(&format!("http://{RAY_DASHBOARD}/api/jobs/"), v, ""), 400),
        ("asterisk form", format!("OPTIONS * HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nConnection: close\r\n\r\n").into_bytes(), 400),
        // Credentials.
        ("no credentials", post("/api/jobs/", None, ""), 401),
        ("Ray token as gateway bearer", post("/api/jobs/", Some(&format!("Bearer {ray_token}")), ""), 401),
        ("Ray token in X-Ray-Authorization", post("/api/jobs/", None, &format!("X-Ray-Authorization: Bearer {ray_token}\r\n")), 401),
        ("viewer plus X-Ray-Authorization", post("/api/jobs/", v, &format!("X-Ray-Authorization: Bearer {ray_token}\r\n")), 403),
        ("Ray token cookie", post("/api/jobs/", None, &format!("Cookie: ray-authentication-token={ray_token}\r\n")), 401),
        ("duplicate Authorization", post("/api/jobs/", v, &format!("Authorization: {alice}\r\n")), 400),
        ("wrong password", post("/api/jobs/", Some(&basic("alice", VIC_PW)), ""), 401),
        ("unknown user", post("/api/jobs/", Some(&basic("mallory", ALICE_PW)), ""), 401),
        ("expired token", post("/api/jobs/", Some("Bearer rwt_expired"), ""), 401),
        ("viewer submit", post("/api/jobs/", v, ""), 403),
        ("viewer stop", post("/api/jobs/rayward-e2e-1/stop", v, ""), 403),
        ("viewer delete", format!("DELETE /api/jobs/rayward-e2e-1 HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nConnection: close\r\n\r\n").into_bytes(), 403),
        ("viewer upload", format!("PUT /api/packages/gcs/_ray_pkg_x.zip HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nPK\x03\x04").into_bytes(), 403),
        ("viewer package probe", get("/api/packages/gcs/_ray_pkg_x.zip", v, ""), 403),
        ("submitter profiling", get("/worker/cpu_profile?pid=1&ip=127.0.0.1", Some(alice), ""), 403),
        ("test route as admin", get("/api/v0/delay/1", Some(ada), ""), 403),
        ("test dump as admin", get("/test/dump", Some(ada), ""), 403),
        ("Ray login route", post("/api/authenticate", Some(alice), ""), 403),
        // Framing.
        // Ambiguous framing is refused on the raw bytes, before hyper would resolve it
        // (it drops Content-Length beside Transfer-Encoding): 400, as Ray itself answers,
        // and no request hidden behind either framing is ever parsed.
        ("TE and CL together", format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_job}", job.len()).into_bytes(), 400),
        ("CL.TE smuggling a second request", {
            let hidden = format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Length: {}\r\n\r\n{job}", job.len());
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}", 5 + hidden.len()).into_bytes()
        }, 400),
        ("TE.CL smuggling a second request", {
            let hidden = format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Length: {}\r\n\r\n{job}", job.len());
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len()).into_bytes()
        }, 400),
        ("duplicate equal Content-Length", format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Length: {n}\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n{job}", n = job.len()).into_bytes(), 400),
        ("signed Content-Length", format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Length: +{}\r\nConnection: close\r\n\r\n{job}", job.len()).into_bytes(), 400),
        ("obs-fold hiding Transfer-Encoding", format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{job}", job.len()).into_bytes(), 400),
        ("bare LF line ends", format!("POST /api/jobs/ HTTP/1.1\nHost: gw\nAuthorization: {alice}\nContent-Length: {}\nConnection: close\n\n{job}", job.len()).into_bytes(), 400),
        ("job metadata that cannot be stamped", {
            let body = r#"{"entrypoint":"echo pwned","metadata":"rayward.io/submitted-by"}"#;
            format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
        }, 400),
        ("Transfer-Encoding on HTTP/1.0", format!("POST /api/jobs/ HTTP/1.0\r\nHost: gw\r\nAuthorization: {alice}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_job}").into_bytes(), 400),
        ("CL smuggling a second request", {
            let hidden = format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Length: {}\r\n\r\n{job}", job.len());
            format!("GET /api/version HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{hidden}", hidden.len()).into_bytes()
        }, 200),
        ("conflicting Content-Length", format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {vic}\r\nContent-Length: {}\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{job}", job.len()).into_bytes(), 400),
        ("Transfer-Encoding not chunked", format!("POST /api/jobs/ HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n{chunked_job}").into_bytes(), 400),
        ("oversized header", get("/api/jobs/", v, &format!("X-Big: {}\r\n", "a".repeat(20_000))), 431),
        ("too many headers", get("/api/jobs/", v, &many_headers), 431),
        // Upgrades.
        ("WebSocket to submit route", post("/api/jobs/", Some(alice), ws), 400),
        ("WebSocket to job list", get("/api/jobs/", v, ws), 400),
        ("h2c upgrade", get("/api/version", v, "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"), 400),
        ("WebSocket to log tail as admin over POST", post("/api/jobs/rayward-e2e-1/logs/tail", Some(ada), ws), 400),
    ]
}

/// A job's status and metadata, read directly from Ray with the cluster token.
async fn ray_job_info(token: &str, id: &str) -> serde_json::Value {
    let r = raw(
        RAY_DASHBOARD.parse().unwrap(),
        &get(
            &format!("/api/jobs/{id}"),
            Some(&format!("Bearer {token}")),
            "",
        ),
    )
    .await;
    assert_eq!(r.status, 200, "job {id}: {r:?}");
    serde_json::from_slice(&r.body).unwrap()
}

/// Waits until Ray reports `id` in one of `states` (60 s at most).
async fn wait_for_status(token: &str, id: &str, states: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = ray_job_info(token, id).await["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if states.contains(&s.as_str()) {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "job {id} stayed {s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Job ownership with `ray job` itself: the submitter's principal is stamped into the
/// job's metadata whatever the client sent (`ray job list` shows it), and under `own-jobs`
/// another submitter can neither stop nor delete the job (Ray's job is untouched), nor
/// anyone but an admin an unstamped one; an admin can. Refusals name the owner in the
/// audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Ray in netns-run; run by scripts/test.sh"]
async fn ray_e2e_job_ownership_under_own_jobs() {
    let home = tempfile::tempdir().unwrap();
    let token = random_token();
    let ray = start_ray(&token);
    wait_for_ray(&token, &ray).await;
    let tok_file = home.path().join("cluster-token");
    std::fs::write(&tok_file, &token).unwrap();
    let cfg = config(
        home.path(),
        &format!("http://{RAY_DASHBOARD}"),
        &tok_file,
        "[limits]\nfailed_login_threshold = 1000\nrequests_per_second = 0\n[jobs]\npolicy = \"own-jobs\"\n",
    );
    let gw = start_gateway(&cfg).await;
    let g = gw.addr;
    let alice = basic("alice", ALICE_PW);
    let ada = basic("ada", ADA_PW);
    let vic = basic("vic", VIC_PW);
    let ci = format!("Bearer {CI_TOKEN}"); // another submitter

    // alice submits a long job claiming to be ada.
    let (code, out, err) = ray_job(
        &ray,
        g,
        Some(&alice),
        &[
            "submit",
            "--no-wait",
            "--submission-id",
            "alice-job",
            "--metadata-json",
            r#"{"rayward.io/submitted-by": "htpasswd:ada", "team": "a"}"#,
            "--",
            "sleep",
            "300",
        ],
    );
    assert_eq!(code, 0, "submit: {out}\n{err}");
    wait_for_status(&token, "alice-job", &["RUNNING"]).await;
    let info = ray_job_info(&token, "alice-job").await;
    assert_eq!(
        info["metadata"]["rayward.io/submitted-by"], "htpasswd:alice",
        "{info}"
    );
    assert_eq!(info["metadata"]["team"], "a", "other metadata kept: {info}");
    // `ray job list` through the gateway shows who submitted it.
    let (code, out, err) = ray_job(&ray, g, Some(&vic), &["list"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("'rayward.io/submitted-by': 'htpasswd:alice'"),
        "{out}"
    );

    // Another submitter cannot stop or delete it; Ray's job keeps running.
    let (code, out, err) = ray_job(&ray, g, Some(&ci), &["stop", "--no-wait", "alice-job"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        format!("{out}{err}").contains("was submitted by htpasswd:alice"),
        "{out}\n{err}"
    );
    let del = format!(
        "DELETE /api/jobs/alice-job HTTP/1.1\r\nHost: gw\r\nAuthorization: {ci}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw(g, del.as_bytes()).await.status, 403);
    let stop_raw = format!(
        "POST /api/jobs/alice-job/stop HTTP/1.1\r\nHost: gw\r\nAuthorization: {ci}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw(g, stop_raw.as_bytes()).await.status, 403);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ray_job_info(&token, "alice-job").await["status"], "RUNNING");

    // A job without the stamp (submitted to Ray directly) is admin-only.
    let unstamped = r#"{"entrypoint":"sleep 300","submission_id":"direct-job"}"#;
    let r = raw(
        RAY_DASHBOARD.parse().unwrap(),
        format!(
            "POST /api/jobs/ HTTP/1.1\r\nHost: ray\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{unstamped}",
            unstamped.len()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let (code, out, err) = ray_job(&ray, g, Some(&alice), &["stop", "--no-wait", "direct-job"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        format!("{out}{err}").contains("names no submitter"),
        "{out}\n{err}"
    );
    // Unknown jobs: 404 from the gateway, nothing asked of Ray but the lookup.
    let r = raw(
        g,
        format!("POST /api/jobs/no-such-job/stop HTTP/1.1\r\nHost: gw\r\nAuthorization: {alice}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");

    // An admin stops both.
    for job in ["alice-job", "direct-job"] {
        let (code, out, err) = ray_job(&ray, g, Some(&ada), &["stop", job]);
        assert_eq!(code, 0, "admin stop {job}: {out}\n{err}");
        assert_eq!(
            wait_for_status(&token, job, &["STOPPED", "FAILED"]).await,
            "STOPPED"
        );
    }

    // The audit log names the owner on every stop and delete.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit: Vec<serde_json::Value> = std::fs::read_to_string(home.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let on = |user: &str, method: &str, status: u64| {
        audit
            .iter()
            .filter(|r| {
                r["user"] == user
                    && r["method"] == method
                    && r["path"].as_str().unwrap_or("").contains("alice-job")
                    && r["status"] == status
            })
            .count()
    };
    assert_eq!(on("token:ci", "POST", 403), 2, "{audit:?}");
    assert_eq!(on("token:ci", "DELETE", 403), 1, "{audit:?}");
    assert_eq!(on("htpasswd:ada", "POST", 200), 1, "{audit:?}");
    assert!(audit
        .iter()
        .filter(|r| r["path"]
            .as_str()
            .unwrap_or("")
            .starts_with("/api/jobs/alice-job"))
        .all(|r| r["owner"] == "htpasswd:alice"));
    let submit = audit
        .iter()
        .find(|r| r["method"] == "POST" && r["path"] == "/api/jobs/")
        .unwrap();
    assert_eq!(submit["submission_id"], "alice-job");
    drop(gw);
    drop(ray);
}

/// Kubernetes identities with both real components, inside netns-run (helpers from
/// kube_e2e.rs; named ray_e2e_ so the netns stage, not the kube stage, runs it): a real kube-apiserver
/// (RBAC) and a real Ray 2.60 head with token auth behind the gateway. A ServiceAccount
/// bound to `ray:write` on the cluster submits with `ray job submit --headers` carrying its
/// own token, and the job is stamped with its principal; one with `ray:read` only lists
/// jobs but cannot submit; with the API server stopped a new token gets 503 and Ray's job
/// list does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver and Ray in netns-run; run by scripts/test.sh"]
async fn ray_e2e_service_account_submits_with_ray_job_through_kubernetes_rbac() {
    use crate::kube_e2e::{create, gateway_kubeconfig, grant, token, AUDIENCE, NS};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::Api;
    use rayward_testkit::apiserver::{ensure_namespace, KubeApiserver};
    use serde_json::json;
    let k = KubeApiserver::start();
    let client = k.client().await;
    ensure_namespace(&client, NS).await;
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), NS);
    for sa in ["writer", "reader", "unseen", "rayward-gateway"] {
        create(&sas, json!({"metadata": {"name": sa}})).await;
    }
    let docs = rayward_testkit::cli::repo_root().join("docs/gateway/rbac.yaml");
    let store = rayward_testkit::apiserver::DryRun::new(client.clone()).await;
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
    let unseen = format!("Bearer {}", token(&client, "unseen", AUDIENCE).await);
    let gateway_sa = token(&client, "rayward-gateway", "").await;

    let home = tempfile::tempdir().unwrap();
    let ray_token = random_token();
    let ray = start_ray(&ray_token);
    wait_for_ray(&ray_token, &ray).await;
    let tok_file = home.path().join("cluster-token");
    std::fs::write(&tok_file, &ray_token).unwrap();
    let kc = gateway_kubeconfig(&k, home.path(), &gateway_sa);
    let cfg = config(
        home.path(),
        &format!("http://{RAY_DASHBOARD}"),
        &tok_file,
        &format!(
            "[kubernetes]\nkubeconfig = \"{}\"\naudiences = [\"{AUDIENCE}\"]\nnamespace = \"{NS}\"\ncluster = \"cluster-a\"\ntimeout_ms = 1500\n[limits]\nfailed_login_threshold = 1000\nrequests_per_second = 0\n",
            kc.display()
        ),
    );
    let gw = start_gateway(&cfg).await;
    let g = gw.addr;

    let (code, out, err) = ray_job(
        &ray,
        g,
        Some(&writer),
        &[
            "submit",
            "--submission-id",
            "sa-job",
            "--",
            "echo",
            "submitted-by-a-serviceaccount",
        ],
    );
    assert_eq!(code, 0, "writer submit: {out}\n{err}");
    assert!(
        out.contains("submitted-by-a-serviceaccount"),
        "{out}\n{err}"
    );
    let (code, out, err) = ray_job(&ray, g, Some(&reader), &["list"]);
    assert_eq!(code, 0, "reader list: {out}\n{err}");
    assert!(
        out.contains("'rayward.io/submitted-by': 'k8s:system:serviceaccount:team-a:writer'"),
        "{out}"
    );
    let before = ray_jobs(&ray_token).await;
    let (code, out, err) = ray_job(
        &ray,
        g,
        Some(&reader),
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
    assert_eq!(
        ray_jobs(&ray_token).await,
        before,
        "the reader created a job"
    );

    drop(k);
    let (code, out, err) = ray_job(
        &ray,
        g,
        Some(&unseen),
        &[
            "submit",
            "--submission-id",
            "outage-try",
            "--",
            "echo",
            "no",
        ],
    );
    assert_ne!(code, 0, "{out}");
    let r = raw(g, &get("/api/jobs/", Some(&unseen), "")).await;
    assert_eq!(r.status, 503, "{r:?}\n{out}\n{err}");
    assert_eq!(
        ray_jobs(&ray_token).await,
        before,
        "a job got through the outage"
    );
    drop(gw);
    drop(ray);
}
