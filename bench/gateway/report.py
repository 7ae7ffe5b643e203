#!/usr/bin/env python3
"""Writes the gateway benchmark's Markdown results from the raw wrk outputs of run.sh.

    report.py --out-dir OUT --commit C --conns N --duration S --lat-duration S \
              --server-cpu 0 --load-cpu 1 --out results.md

Standard library only. Fails (exit 2) when a run had errors or non-2xx answers, so a
broken contender never shows up as a fast one.
"""

import argparse
import os
import re
import subprocess
import sys

TARGET_BCRYPT_X = 50
TARGET_ADDED_P99_MS = 1.0
# Issue 14: at least nginx proxy_pass without authentication, p99 added under 0.2 ms.
TARGET_PASS_X = 1.0
TARGET_ADDED_P99_MS_14 = 0.2
TARGET_RSS_MB = 30
CONTENDERS = ["direct", "proxy_pass", "nginx", "rayward"]
HASHES = ["bcrypt", "apr1"]


def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(path):
    text = open(path).read()
    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    out["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, text, re.M)
        out["p" + pct] = ms(m.group(1), m.group(2))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["non2xx"] = int(bad.group(1)) if bad else 0
    out["errors"] = sum(int(x) for x in errs.groups()) if errs else 0
    if out["non2xx"] or out["errors"]:
        sys.exit(f"{path}: {out['non2xx']} non-2xx answers, {out['errors']} socket errors")
    return out


def median_run(runs):
    """The run with the median p99 (its other numbers with it), and every run's p99."""
    runs = sorted(runs, key=lambda r: r["p99"])
    med = dict(runs[len(runs) // 2])
    med["all_p99"] = [r["p99"] for r in runs]
    return med


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                              shell=isinstance(cmd, str)).stdout.strip() or "?"
    except Exception:  # noqa: BLE001 - machine facts are best effort
        return "?"


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def fmt_ms(v):
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    for a in ("--out-dir", "--commit", "--conns", "--duration", "--lat-duration", "--lat-runs",
              "--server-cpu", "--load-cpu", "--prio", "--out"):
        ap.add_argument(a, required=True)
    # "before": another rayward binary measured in the same run (run.sh BEFORE_BIN).
    ap.add_argument("--contenders", nargs="+", default=CONTENDERS)
    ap.add_argument("--hashes", nargs="+", default=HASHES)
    a = ap.parse_args()
    contenders, hashes = a.contenders, a.hashes
    d = a.out_dir
    res = {}
    for h in hashes:
        for c in contenders:
            res[(h, c)] = {
                "tput": parse_wrk(os.path.join(d, f"{h}-{c}-tput.txt")),
                "lat": median_run([parse_wrk(os.path.join(d, f"{h}-{c}-lat-{i}.txt"))
                                   for i in range(1, int(a.lat_runs) + 1)]),
                "load": open(os.path.join(d, f"{h}-{c}.load")).read().strip(),
            }
    rss = {}
    rss_before = {}
    for h in hashes:
        t = open(os.path.join(d, f"rss-{h}.txt")).read()
        rss[h] = {k: int(v) / 1024.0 for k, v in re.findall(r"(Vm\w+):\s+(\d+) kB", t)}
        if "before" in contenders:
            t = open(os.path.join(d, f"rss-before-{h}.txt")).read()
            rss_before[h] = {k: int(v) / 1024.0
                             for k, v in re.findall(r"(Vm\w+):\s+(\d+) kB", t)}

    L = []
    L.append(f"Machine: {sh('nproc')} × {cpu_model()}, Linux {sh(['uname', '-r'])}; "
             f"{sh('nginx -v 2>&1')}; {sh('wrk -v 2>&1 | head -1').split(' Copyright')[0]}; "
             f"rayward built from `{a.commit}` (release). Servers (upstream nginx, nginx proxies, "
             f"gateway) pinned to core {a.server_cpu}, wrk to core {a.load_cpu}; every nginx "
             f"with one worker. Scheduling prefix: `{a.prio}`.")
    L.append("")
    L.append(f"- throughput: `wrk -t1 -c{a.conns} -d{a.duration}s --timeout 10s --latency "
             f"-H 'Authorization: Basic …' URL` after a 2 s warm-up")
    L.append(f"- latency: the same with `-c1 -d{a.lat_duration}s` (one request at a time: "
             f"service time without queueing), {a.lat_runs} runs, the run with the median p99 "
             f"shown; added latency = contender − direct")
    L.append("")
    for h in hashes:
        L.append(f"**{h}** (`GET /api/version`, one user)")
        L.append("")
        L.append(f"| | req/s ({a.conns} conns) | p50 | p99 | req/s (1 conn) | p50 (1 conn) "
                 f"| p99 (1 conn) | added p99 (1 conn) | p99 of each 1-conn run | load before |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        direct = res[(h, "direct")]
        for c in contenders:
            r = res[(h, c)]
            added = r["lat"]["p99"] - direct["lat"]["p99"]
            L.append(
                f"| {c} | {r['tput']['rps']:.0f} | {fmt_ms(r['tput']['p50'])} | "
                f"{fmt_ms(r['tput']['p99'])} | {r['lat']['rps']:.0f} | {fmt_ms(r['lat']['p50'])} | "
                f"{fmt_ms(r['lat']['p99'])} | "
                f"{'—' if c == 'direct' else ('+' if added >= 0 else '') + fmt_ms(added)} | "
                f"{', '.join(fmt_ms(x) for x in r['lat']['all_p99'])} | {r['load']} |")
        L.append("")
        L.append(f"gateway RSS after the {h} runs: peak (VmHWM) {rss[h]['VmHWM']:.1f} MiB, "
                 f"now (VmRSS) {rss[h]['VmRSS']:.1f} MiB")
        if h in rss_before:
            L.append(f"before's RSS: peak (VmHWM) {rss_before[h]['VmHWM']:.1f} MiB")
        L.append("")

    L.append("Targets:")

    def met(ok):
        return "**met**" if ok else "**missed**"

    if "bcrypt" in hashes:
        b_gw = res[("bcrypt", "rayward")]["tput"]["rps"]
        b_ng = res[("bcrypt", "nginx")]["tput"]["rps"]
        x = b_gw / b_ng
        L.append(f"- bcrypt: at least {TARGET_BCRYPT_X}× nginx's throughput: {x:.0f}× "
                 f"({b_gw:.0f} vs {b_ng:.0f} req/s) — {met(x >= TARGET_BCRYPT_X)}")
    if "apr1" in hashes:
        a_gw = res[("apr1", "rayward")]["tput"]["rps"]
        a_ng = res[("apr1", "nginx")]["tput"]["rps"]
        y = a_gw / a_ng
        L.append(f"- apr1: at least nginx's throughput: {y:.2f}× ({a_gw:.0f} vs {a_ng:.0f} "
                 f"req/s) — {met(y >= 1.0)}")
    for h in hashes:
        if "before" in contenders:
            bf = res[(h, "before")]["tput"]["rps"]
            px = res[(h, "proxy_pass")]["tput"]["rps"]
            L.append(f"- ({h}: before, for comparison: {bf / px:.2f}× proxy_pass, {bf:.0f} req/s)")
        gw, px = res[(h, "rayward")]["tput"]["rps"], res[(h, "proxy_pass")]["tput"]["rps"]
        L.append(f"- {h}: at least nginx proxy_pass (no auth) throughput: {gw / px:.2f}× "
                 f"({gw:.0f} vs {px:.0f} req/s) — {met(gw / px >= TARGET_PASS_X)}")
        added = res[(h, "rayward")]["lat"]["p99"] - res[(h, "direct")]["lat"]["p99"]
        L.append(f"- {h}: p99 added latency under {TARGET_ADDED_P99_MS_14:g} ms (1 connection): "
                 f"{added:+.3f} ms — {met(added < TARGET_ADDED_P99_MS_14)}")
    for h in hashes:
        added = res[(h, "rayward")]["lat"]["p99"] - res[(h, "direct")]["lat"]["p99"]
        L.append(f"- {h}: p99 added latency under {TARGET_ADDED_P99_MS:g} ms (1 connection): "
                 f"{added:+.3f} ms — {met(added < TARGET_ADDED_P99_MS)}")
        added_t = res[(h, "rayward")]["tput"]["p99"] - res[(h, "direct")]["tput"]["p99"]
        L.append(f"  (at {a.conns} connections, saturated, p99 gateway − direct: {added_t:+.3f} ms)")
    peak = max(r["VmHWM"] for r in rss.values())
    L.append(f"- RSS under {TARGET_RSS_MB} MB: peak {peak:.1f} MiB "
             f"({peak * 1.048576:.1f} MB) — {met(peak * 1.048576 < TARGET_RSS_MB)}")
    text = "\n".join(L) + "\n"
    open(a.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
