//! Headless Chromium for browser tests: Debian's `chromedriver` (from
//! `RAYWARD_CHROMEDRIVER`) on a free loopback port, and the options every test's browser
//! starts with. The WebDriver client itself (fantoccini) stays in the tests that drive it.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `$RAYWARD_CHROMEDRIVER`, checked to exist.
pub fn chromedriver_path() -> PathBuf {
    let p = std::env::var("RAYWARD_CHROMEDRIVER").unwrap_or_else(|_| {
        panic!(
            "RAYWARD_CHROMEDRIVER is not set: install Debian's chromium and chromium-driver \
             and point it at /usr/bin/chromedriver (scripts/test.sh does both)"
        )
    });
    let p = PathBuf::from(p);
    assert!(
        p.is_file(),
        "RAYWARD_CHROMEDRIVER={} is not a file",
        p.display()
    );
    p
}

/// chromedriver on a free loopback port, answering only loopback; killed with the
/// browsers it started (its whole process group) on drop.
pub struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    /// Starts `$RAYWARD_CHROMEDRIVER`, logging to `log`; returns once it listens.
    pub fn start(log: &Path) -> ChromeDriver {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let d = ChromeDriver { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// The WebDriver endpoint, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// `goog:chromeOptions` for a fresh headless Debian Chromium with its own profile and no
/// background connections (this machine's closed network refuses them, many at a time).
pub fn chrome_options(profile: &Path) -> Value {
    json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--window-size=1400,1000",
            format!("--user-data-dir={}", profile.display()),
        ]
    })
}
