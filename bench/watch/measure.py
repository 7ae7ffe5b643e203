#!/usr/bin/env python3
"""Drives bench/watch/run.sh: readiness, per-object re-audit, change-to-series and
change-to-Event latency, memory. usage: measure.py API TOKEN METRICS PID N FULL_AUDIT_S"""
import json, ssl, statistics, sys, time, urllib.request

api, token, metrics, pid, n, full = sys.argv[1:7]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the test server's self-signed certificate, on loopback


def kube(method, path, obj=None):
    req = urllib.request.Request(api + path, method=method,
                                 data=json.dumps(obj).encode() if obj else None,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return json.load(r)


def get(path):
    try:
        with urllib.request.urlopen(metrics + path, timeout=10) as r:
            return r.status, r.read().decode()
    except Exception:
        return 0, ""


def mem():
    st = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        st[k] = v.strip()
    return int(st["VmRSS"].split()[0]) // 1024, int(st["VmHWM"].split()[0]) // 1024


def value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


t = time.monotonic()
while get("/readyz")[0] != 200:
    time.sleep(0.05)
    if time.monotonic() - t > 600:
        sys.exit("watch did not become ready in 600 s")
ready = time.monotonic() - t
time.sleep(3)  # the first whole run over every object
_, m = get("/metrics")
count = value(m, "rayward_watch_reaudit_seconds_count")
total = value(m, "rayward_watch_reaudit_seconds_sum")

to_series, to_event = [], []
for i in range(5):
    ns = f"bench-new-{i}"
    kube("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": ns}})
    time.sleep(1)
    t = time.monotonic()
    kube("POST", f"/apis/ray.io/v1/namespaces/{ns}/rayclusters", {
        "apiVersion": "ray.io/v1", "kind": "RayCluster",
        "metadata": {"name": "new", "namespace": ns},
        "spec": {"headGroupSpec": {"template": {"spec": {"containers": [{
            "name": "ray-head", "image": "rayproject/ray:2.56.0",
            "securityContext": {"privileged": True}}]}}}}})
    series = event = None
    while series is None or event is None:
        if series is None and f'namespace="{ns}",rule="RW501"' in get("/metrics")[1]:
            series = time.monotonic() - t
        if event is None:
            evs = kube("GET", f"/api/v1/namespaces/{ns}/events")["items"]
            if any(e.get("reason") == "RW501" for e in evs):
                event = time.monotonic() - t
        if time.monotonic() - t > 120:
            sys.exit(f"no series/Event for {ns} in 120 s")
        time.sleep(0.02)
    to_series.append(series)
    to_event.append(event)
rss, hwm = mem()
_, m = get("/metrics")
created = value(m, 'rayward_watch_events_total{result="created"}')

print("| what | measured |")
print("|---|---:|")
print(f"| `rayward audit --cluster -A` once (the alternative: a full re-audit) | {float(full):.2f} s |")
print(f"| watch ready (every kind listed, watched, judged) | {ready:.2f} s |")
print(f"| per-object re-audit, mean over {int(count):,} objects | {total / max(count, 1) * 1e6:.0f} µs |")
print(f"| new privileged RayCluster -> RW501 series in /metrics (median, worst of 5) | {statistics.median(to_series):.2f} s, {max(to_series):.2f} s |")
print(f"| new privileged RayCluster -> its RW501 Event (median, worst of 5) | {statistics.median(to_event):.2f} s, {max(to_event):.2f} s |")
print(f"| resident memory at the end / peak | {rss} MB / {hwm} MB |")
print(f"| Events created by then (10/s, burst 50) | {int(created):,} |")
