//! The Ray 2.60 dashboard UI through the gateway in a real browser (headless Chromium over
//! WebDriver): login form, session cookie, then every top-level page of the UI as a viewer,
//! each waited for until its data shows. The gateway's audit log (every refusal is
//! written there) then proves that none of the UI's requests was refused. Runs inside
//! shared/tools/netns-run, started by scripts/test.sh:
//!
//! `RAYWARD_RAY_VENV=… RAYWARD_CHROMEDRIVER=/usr/bin/chromedriver ../shared/tools/netns-run cargo test -p rayward-gateway --test rayward-gateway -- --ignored browser_e2e::`

use crate::common;

use common::ray::*;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use rayward_testkit::browser::{chrome_options, ChromeDriver};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest wait for one page to show its data (the VM is a busy 2-core machine).
const PAGE_WAIT: Duration = Duration::from_secs(60);

async fn browser(driver: &ChromeDriver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), chrome_options(profile));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .expect("WebDriver session")
}

async fn body_text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's visible text contains every one of `needles`.
async fn wait_for_text(c: &Client, page: &str, needles: &[&str]) {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let text = body_text(c).await;
        if needles.iter().all(|n| text.contains(n)) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{page}: {needles:?} not shown after {PAGE_WAIT:?}; url {:?}; the page says:\n{text}",
                c.current_url().await.map(|u| u.to_string())
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A job that leaves a named detached actor behind, so Jobs, Overview and Actors have
/// data; submitted straight to Ray with the cluster token.
async fn submit_job(token: &str, id: &str) {
    let script = "import ray\nray.init()\n@ray.remote(num_cpus=0)\nclass BrowserProbe:\n    def ping(self):\n        return 1\na = BrowserProbe.options(name='browser_probe', lifetime='detached').remote()\nray.get(a.ping.remote())\nprint('browser-e2e-ok')\n";
    // The script goes in an environment variable: no shell quoting of Python code.
    let body = serde_json::json!({
        "entrypoint": "python -c \"import os; exec(os.environ['PROBE'])\"",
        "submission_id": id,
        "runtime_env": { "env_vars": { "PROBE": script } },
    })
    .to_string();
    let req = format!(
        "POST /api/jobs/ HTTP/1.1\r\nHost: ray\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let addr: SocketAddr = RAY_DASHBOARD.parse().unwrap();
    // The dashboard answers before its agent has registered; Ray then says "No available
    // agent to submit job, please try again later" (500): do as it says, for a bounded time.
    let agent_deadline = Instant::now() + Duration::from_secs(120);
    let r = loop {
        let r = raw(addr, req.as_bytes()).await;
        let no_agent =
            r.status == 500 && String::from_utf8_lossy(&r.body).contains("No available agent");
        if !no_agent || Instant::now() > agent_deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(r.status, 200, "direct submission: {r:?}");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let jobs = ray_jobs(token).await;
        if jobs.contains(&(id.to_string(), "SUCCEEDED".to_string())) {
            return;
        }
        assert!(
            !jobs.iter().any(|(j, s)| j == id && s == "FAILED"),
            "probe job failed: {jobs:?}"
        );
        assert!(
            Instant::now() < deadline,
            "probe job not done in 180 s: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Ray in netns-run; run by scripts/test.sh"]
async fn ray_e2e_gateway_dashboard_in_a_browser() {
    dashboard_in_a_browser(false).await
}

/// The same UI under `/clusters/team-a/cluster-a/` of a `[discovery]` gateway (the cluster
/// found in a real kube-apiserver): after login the landing page lists the cluster, and
/// every request of every page stays under the prefix (a request to an absolute path
/// would leave it and fail the check below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a kube-apiserver and Ray in netns-run; run by scripts/test.sh"]
async fn ray_e2e_gateway_dashboard_in_a_browser_under_the_cluster_prefix() {
    dashboard_in_a_browser(true).await
}

async fn dashboard_in_a_browser(prefixed: bool) {
    // Before Ray starts: a missing chromedriver fails at once.
    rayward_testkit::browser::chromedriver_path();
    let home = tempfile::tempdir().unwrap();
    let token = random_token();
    let ray = start_ray(&token);
    wait_for_ray(&token, &ray).await;
    let job_id = "browser-e2e-probe";
    submit_job(&token, job_id).await;

    let tok_file = home.path().join("cluster-token");
    std::fs::write(&tok_file, &token).unwrap();
    let key_file = home.path().join("session.key");
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let mut _apiserver = None;
    let (cfg, prefix) = if prefixed {
        use crate::kube_e2e::NS;
        use rayward_testkit::apiserver::KubeApiserver;
        use rayward_testkit::fleet::{kubeconfig, Fleet, GATEWAY_SA};
        let k = KubeApiserver::start();
        let f = Fleet::new(&k, NS, &[]).await;
        f.store_cluster("cluster-a", RAY_DASHBOARD.parse().unwrap(), &token)
            .await;
        let kc = kubeconfig(&k, home.path(), &f.token(GATEWAY_SA, "").await);
        _apiserver = Some(k);
        (
            crate::discovery::discovery_config(
                home.path(),
                &kc,
                &format!("[session]\nkey_file = \"{}\"\n", key_file.display()),
            ),
            format!("/clusters/{NS}/cluster-a"),
        )
    } else {
        (
            config(
                home.path(),
                &format!("http://{RAY_DASHBOARD}"),
                &tok_file,
                &format!(
                    "[session]\nkey_file = \"{}\"\n[limits]\nfailed_login_threshold = 1000\nrequests_per_second = 0\n",
                    key_file.display()
                ),
            ),
            String::new(),
        )
    };
    let gw = start_gateway(&cfg).await;
    let base = format!("http://{}{prefix}", gw.addr);

    let driver = ChromeDriver::start(&home.path().join("chromedriver.log"));
    let profile = home.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let c = browser(&driver, &profile).await;
    let result = drive(&c, &base, &prefix, job_id).await;
    let _ = c.close().await;
    drop(driver);
    let requests = result.unwrap_or_else(|e| panic!("browser: {e}"));

    // What the browser saw: every request went to the gateway and succeeded, but for
    // these, which Ray itself answers so on this cluster (checked directly below):
    // no Grafana/Prometheus (500), ray[serve] not installed (501), no platform events
    // source (404).
    let ray_says_so = [
        ("/api/grafana_health", 500),
        ("/api/prometheus_health", 500),
        ("/api/serve/applications/", 501),
        ("/api/v0/platform_events", 404),
    ];
    let api_calls = requests
        .iter()
        .filter(|(_, _, kind)| kind == "xmlhttprequest" || kind == "fetch")
        .count();
    assert!(
        api_calls >= 10,
        "the pages made {api_calls} API calls: {requests:#?}"
    );
    let mut failed = Vec::new();
    for (url, status, _) in &requests {
        let Some(target) = url.strip_prefix(&base) else {
            failed.push(format!("not to the gateway: {url}"));
            continue;
        };
        if (200..400).contains(status) {
            continue;
        }
        let path = target.split('?').next().unwrap_or(target);
        if !ray_says_so.contains(&(path, *status)) {
            failed.push(format!("{status} {target}"));
            continue;
        }
        let direct = raw(
            RAY_DASHBOARD.parse().unwrap(),
            &get(target, Some(&format!("Bearer {token}")), ""),
        )
        .await;
        if u64::from(direct.status) != *status {
            failed.push(format!(
                "{status} {target} through the gateway, {} from Ray",
                direct.status
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "requests of the UI that failed:\n{}",
        failed.join("\n")
    );

    // Every refusal is audited: none of the UI's requests may be among them. The only
    // refusal expected is the first visit's redirect to the login form (no user yet).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit: Vec<serde_json::Value> = std::fs::read_to_string(home.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The viewer writes nothing and reads are not audited, so every record is a refusal;
    // the only one expected is the first visit's redirect to the login form (no user yet).
    let first_path = format!("{prefix}/");
    let first_visit = |r: &serde_json::Value| {
        r["path"] == first_path.as_str() && r["status"] == 302 && r["user"].is_null()
    };
    assert!(
        audit.iter().any(first_visit),
        "first visit not audited: {audit:?}"
    );
    let refused: Vec<String> = audit
        .iter()
        .filter(|r| !first_visit(r))
        .map(|r| r.to_string())
        .collect();
    assert!(
        refused.is_empty(),
        "the gateway refused requests of the dashboard UI:\n{}",
        refused.join("\n")
    );
    // And the pages' reads did go through the gateway to Ray (21 in a run on Ray 2.60;
    // the browser caches the static files), none refused by class or role.
    let m = raw(gw.admin, &get("/metrics", None, "")).await;
    assert_eq!(m.status, 200, "{m:?}");
    let forwarded: f64 = m
        .body_text()
        .lines()
        .filter(|l| {
            l.starts_with("rayward_gateway_requests_total{")
                && l.contains("class=\"read\"")
                && l.contains("outcome=\"forwarded\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    for l in m.body_text().lines() {
        assert!(
            !(l.contains("outcome=\"forbidden\"") || l.contains("class=\"denied\"")),
            "{l}"
        );
    }
    assert!(
        forwarded >= 15.0,
        "only {forwarded} reads forwarded:\n{}",
        m.body_text()
    );
    drop(gw);
    drop(ray);
}

/// The browser part; errors come back so the browser is closed before the test fails.
/// Returns every request the dashboard's pages made: (URL, HTTP status, initiator).
async fn drive(
    c: &Client,
    base: &str,
    prefix: &str,
    job_id: &str,
) -> Result<Vec<(String, u64, String)>, String> {
    c.goto(&format!("{base}/"))
        .await
        .map_err(|e| e.to_string())?;
    let url = c.current_url().await.map_err(|e| e.to_string())?;
    if url.path() != "/rayward/login" {
        return Err(format!("not redirected to the login form: {url}"));
    }
    let user = c
        .find(Locator::Css("input[name=user]"))
        .await
        .map_err(|e| e.to_string())?;
    user.send_keys("vic").await.map_err(|e| e.to_string())?;
    let pw = c
        .find(Locator::Css("input[name=password]"))
        .await
        .map_err(|e| e.to_string())?;
    pw.send_keys(VIC_PW).await.map_err(|e| e.to_string())?;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    if !prefix.is_empty() {
        // Lands on the list of clusters, which links to the cluster's prefix.
        wait_for_text(c, "landing", &["Ray clusters", "cluster-a"]).await;
        let link = c
            .find(Locator::Css(&format!("a[href=\"{prefix}/\"]")))
            .await
            .map_err(|e| format!("no link to {prefix}/ on the landing page: {e}"))?;
        link.click().await.map_err(|e| e.to_string())?;
    }
    // Lands on the dashboard (Ray's UI redirects / to #/overview).
    let deadline = Instant::now() + PAGE_WAIT;
    let home = format!("{prefix}/");
    loop {
        let url = c.current_url().await.map_err(|e| e.to_string())?;
        if url.path() == home && url.fragment().is_some_and(|f| f.starts_with("/overview")) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not on the dashboard after login: {url}\n{}",
                body_text(c).await
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The hash routes below stay in this one document: its resource timing entries
    // (with their HTTP status, Chromium >= 109) are every request the pages make.
    c.execute("performance.setResourceTimingBufferSize(100000)", vec![])
        .await
        .map_err(|e| e.to_string())?;
    // Page by page: the hash route and text that only shows once its data loaded.
    let pages: [(&str, Vec<&str>); 7] = [
        ("overview", vec![job_id]),
        ("jobs", vec![job_id, "SUCCEEDED"]),
        // The venv has ray[default], not ray[serve]: Ray itself answers the Serve API
        // with 501 ("Serve dependencies are not installed"), which the page shows. The
        // audit check below proves the gateway refused nothing.
        ("serve", vec!["Request failed with status code 501"]),
        ("cluster", vec!["127.0.0.1", "ALIVE"]),
        ("actors", vec!["BrowserProbe", "ALIVE"]),
        (
            "metrics",
            vec!["Time-series charts are hidden because either Prometheus or Grafana server is not detected"],
        ),
        ("logs", vec!["127.0.0.1"]),
    ];
    for (page, needles) in &pages {
        c.goto(&format!("{base}/#/{page}"))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_text(c, page, needles).await;
    }
    let v = c
        .execute(
            "return performance.getEntriesByType('resource')\
             .map(e => [e.name, e.responseStatus, e.initiatorType]);",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    let entries = v.as_array().ok_or("resource entries: not an array")?;
    Ok(entries
        .iter()
        .map(|e| {
            (
                e[0].as_str().unwrap_or("").to_string(),
                e[1].as_u64().unwrap_or(0),
                e[2].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}
