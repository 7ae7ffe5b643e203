//! The served UI of the terminated cluster in headless Chromium (WebDriver), as a viewer
//! would use it: the login form, the listing, then Ray's own pages of the stored
//! session (Jobs with the three final states, the failed job's traceback, Cluster's two
//! nodes, Actors' named actor). Every request the pages made is then checked: none got
//! a 4xx/5xx that the live dashboard did not also give for the same path. Called from
//! the Ray 2.60 scenario of `history_ray` (inside netns-run, after Ray stopped), where
//! the store is real; a browser test cannot start Ray itself.

use fantoccini::{Client, ClientBuilder, Locator};
use rayward_history::index::NodeIndex;
use rayward_testkit::browser::{chrome_options, ChromeDriver};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const PAGE_WAIT: Duration = Duration::from_secs(60);

async fn body_text(c: &Client) -> String {
    match c.find(Locator::Css("body")).await {
        Ok(b) => b.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn wait_for_text(c: &Client, page: &str, needles: &[&str]) -> Result<String, String> {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let text = body_text(c).await;
        if needles.iter().all(|n| text.contains(n)) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{page}: {needles:?} not shown after {PAGE_WAIT:?}; url {:?}; the page says:\n{text}",
                c.current_url().await.map(|u| u.to_string())
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

/// Logs in as alice, opens the session, visits the pages; returns every request made
/// inside the session's UI: (URL, status, initiator).
async fn drive(
    c: &Client,
    base: &str,
    session: &str,
    head: &NodeIndex,
) -> Result<Vec<(String, u64, String)>, String> {
    c.goto(&format!("{base}/")).await.map_err(e)?;
    let url = c.current_url().await.map_err(e)?;
    if url.path() != "/rayward/login" {
        return Err(format!("not sent to the login form: {url}"));
    }
    c.find(Locator::Css("input[name=user]"))
        .await
        .map_err(e)?
        .send_keys("alice")
        .await
        .map_err(e)?;
    c.find(Locator::Css("input[name=password]"))
        .await
        .map_err(e)?
        .send_keys("Secret-Pass1")
        .await
        .map_err(e)?;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .map_err(e)?
        .click()
        .await
        .map_err(e)?;
    wait_for_text(c, "listing", &["hist", &head.session, "FAILED"]).await?;
    c.goto(&format!("{base}{session}/")).await.map_err(e)?;
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let url = c.current_url().await.map_err(e)?;
        if url.fragment().is_some_and(|f| f.starts_with("/overview")) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the UI did not start: {url}\n{}",
                body_text(c).await
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.execute("performance.setResourceTimingBufferSize(100000)", vec![])
        .await
        .map_err(e)?;
    let ids: Vec<&str> = head.jobs.iter().map(|j| j.submission_id.as_str()).collect();
    let failed = head
        .jobs
        .iter()
        .find(|j| j.status == "FAILED")
        .map(|j| j.submission_id.clone())
        .ok_or("no failed job")?;
    let mut jobs_needles = ids.clone();
    jobs_needles.extend(["FAILED", "SUCCEEDED"]);
    let failed_page = format!("jobs/{failed}");
    let pages: Vec<(&str, Vec<&str>)> = vec![
        ("overview", vec![]),
        ("jobs", jobs_needles),
        (failed_page.as_str(), vec!["history-traceback-marker"]),
        ("cluster", vec!["127.0.0.1"]),
        ("actors", vec!["history-counter"]),
    ];
    for (page, needles) in &pages {
        c.goto(&format!("{base}{session}/#/{page}"))
            .await
            .map_err(e)?;
        let text = wait_for_text(c, page, needles).await?;
        // Two nodes: a row, with its address, each.
        if *page == "cluster" && text.matches("127.0.0.1").count() < 2 {
            return Err(format!("cluster: two nodes not shown:\n{text}"));
        }
    }
    let v = c
        .execute(
            "return performance.getEntriesByType('resource')\
             .map(e => [e.name, e.responseStatus, e.initiatorType]);",
            vec![],
        )
        .await
        .map_err(e)?;
    let entries = v.as_array().ok_or("resource entries: not an array")?;
    Ok(entries
        .iter()
        .map(|x| {
            (
                x[0].as_str().unwrap_or("").to_string(),
                x[1].as_u64().unwrap_or(0),
                x[2].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

/// Drives Chromium against the server at `addr`; `dir` holds its profile and log;
/// `live_errors` are the live dashboard's error statuses by path.
pub fn the_ui_in_a_browser(
    addr: SocketAddr,
    dir: &Path,
    head: &NodeIndex,
    live_errors: &[(String, u16)],
) {
    let base = format!("http://{addr}");
    let session = format!("/clusters/team-a/rayjob/hist/{}", head.session);
    let driver = ChromeDriver::start(&dir.join("chromedriver.log"));
    let profile = dir.join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let requests = rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), chrome_options(&profile));
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .expect("WebDriver session");
        let r = drive(&c, &base, &session, head).await;
        let _ = c.close().await;
        r
    });
    drop(driver);
    let requests = requests.unwrap_or_else(|e| panic!("browser: {e}"));
    let api = requests
        .iter()
        .filter(|(_, _, k)| k == "xmlhttprequest" || k == "fetch")
        .count();
    assert!(api >= 10, "the pages made {api} API calls: {requests:#?}");
    let prefix = format!("{base}{session}");
    let mut failed = Vec::new();
    for (url, status, _) in &requests {
        let Some(target) = url.strip_prefix(&prefix) else {
            failed.push(format!("outside the session: {url}"));
            continue;
        };
        if (200..400).contains(status) {
            continue;
        }
        let path = target.split('?').next().unwrap_or(target);
        if !live_errors.iter().any(|(p, _)| p == path) {
            failed.push(format!("{status} {target} (the live dashboard: no error)"));
        }
    }
    assert!(
        failed.is_empty(),
        "requests of the UI that failed where the live dashboard did not:\n{}\nlive errors: {live_errors:?}",
        failed.join("\n")
    );
}
