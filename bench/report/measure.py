#!/usr/bin/env python3
"""Opens an HTML report in headless Chromium (over chromedriver's WebDriver HTTP API, standard
library only) and prints, as JSON, what the page's first render and a filter change cost.

usage: measure.py CHROMEDRIVER PAGE.html [RUNS]

- `first_render_ms`: from the start of navigation to the first frame painted after the
  page's `rw-ready` mark (data parsed, scorecard, filters and the first page of findings
  in the DOM): the median of RUNS fresh loads (default 3), each in a new browser;
  `ready_ms` and `parsed_ms` (JSON.parse done) split it;
- `fcp_ms`: Chromium's first-contentful-paint of the same loads;
- `filter_ms`: a filter change (severity, then rule, then a search) from the change event
  to the next painted frame, median over those changes, in the last browser.
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

driver_bin, page = sys.argv[1], Path(sys.argv[2]).resolve()
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


port = free_port()
log = tempfile.NamedTemporaryFile(prefix="chromedriver-", suffix=".log", delete=False).name
drv = subprocess.Popen([driver_bin, f"--port={port}", "--allowed-ips=127.0.0.1", f"--log-path={log}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
base = f"http://127.0.0.1:{port}"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)["value"]


for _ in range(300):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)

READY = """
const done = arguments[arguments.length - 1];
function check() {
  const painted = performance.getEntriesByName('rw-painted')[0];
  if (!painted) { setTimeout(check, 20); return; }
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  done({parsed: performance.getEntriesByName('rw-parsed')[0].startTime,
        ready: performance.getEntriesByName('rw-ready')[0].startTime,
        painted: painted.startTime, fcp: fcp ? fcp.startTime : null,
        dom_content_loaded: nav ? nav.domContentLoadedEventEnd : null,
        rows: document.querySelectorAll('#t-active tbody tr').length,
        status: document.getElementById('f-count').textContent});
}
check();
"""

CHANGE = """
const [id, value] = [arguments[0], arguments[1]];
const done = arguments[arguments.length - 1];
const e = document.getElementById(id);
const t0 = performance.now();
e.value = value;
e.dispatchEvent(new Event(id === 'f-text' ? 'input' : 'change'));
// The search waits for typing to pause (150 ms); that wait is not work and is taken off.
const wait = id === 'f-text' ? 150 : 0;
function check() {
  if (performance.now() - t0 < wait + 1) { setTimeout(check, 5); return; }
  requestAnimationFrame(() => requestAnimationFrame(() => done({ms: performance.now() - t0 - wait,
      status: document.getElementById('f-count').textContent})));
}
check();
"""

loads, session = [], None
try:
    for i in range(runs):
        profile = tempfile.mkdtemp(prefix="rw-bench-profile-")
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                     f"--user-data-dir={profile}"]}}}}
        session = call("POST", "/session", caps)["sessionId"]
        call("POST", f"/session/{session}/timeouts", {"script": 300000, "pageLoad": 300000})
        call("POST", f"/session/{session}/url", {"url": page.as_uri()})
        r = call("POST", f"/session/{session}/execute/async", {"script": READY, "args": []})
        loads.append(r)
        if i < runs - 1:
            call("DELETE", f"/session/{session}")
            shutil.rmtree(profile, ignore_errors=True)
    changes = []
    for id_, value in [("f-sev", "4"), ("f-sev", ""), ("f-rule", "0"), ("f-rule", ""),
                       ("f-text", "privileged"), ("f-text", "")]:
        if id_ == "f-rule":
            value = value and call("POST", f"/session/{session}/execute/sync", {
                "script": "return document.getElementById('f-rule').options[1].value;", "args": []})
        changes.append(call("POST", f"/session/{session}/execute/async",
                            {"script": CHANGE, "args": [id_, value]}))
    call("DELETE", f"/session/{session}")
finally:
    os.killpg(drv.pid, 9)

print(json.dumps({
    "page_bytes": page.stat().st_size,
    "first_render_ms": statistics.median(l["painted"] for l in loads),
    "ready_ms": statistics.median(l["ready"] for l in loads),
    "parsed_ms": statistics.median(l["parsed"] for l in loads),
    "fcp_ms": statistics.median(l["fcp"] for l in loads if l["fcp"] is not None),
    "loads": loads,
    "filter_ms": statistics.median(c["ms"] for c in changes),
    "filter_max_ms": max(c["ms"] for c in changes),
    "changes": changes,
}, indent=1))
