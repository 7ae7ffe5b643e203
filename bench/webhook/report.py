#!/usr/bin/env python3
"""Writes the webhook benchmark's Markdown results from run.sh's raw outputs.

    report.py --out-dir OUT --commit C --rates "500 1000" --conns N --duration S \
              --max-duration S --server-cpu 0 --load-cpu 1 --target-dir T --out results.md

Standard library only. Fails (exit 2) when a load run had errors, so a broken server
never shows up as a fast one.
"""

import argparse
import json
import os
import re
import subprocess
import sys

TARGET_P99_MS = 2.0
MIN_RATE = 500
STAGES = [
    ("1_review_json", "parse: AdmissionReview JSON → request (object kept raw)"),
    ("2_load_object", "parse: object → audit loader's tree with spans"),
    ("3_rules", "rules: audit engine over the object"),
    ("4_response", "response: AdmissionReview answer serialised"),
]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              timeout=30).stdout.strip() or "?"
    except Exception:  # noqa: BLE001 - machine facts are best effort
        return "?"


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def load_run(d, name):
    r = json.load(open(os.path.join(d, f"load-{name}.json")))
    if r["errors"] or not r["sent"]:
        sys.exit(f"load-{name}.json: {r['errors']} errors of {r['sent']} requests")
    r["loadavg"] = open(os.path.join(d, f"load-{name}.load")).read().strip()
    return r


def criterion(target_dir):
    out = {}
    for sid, _ in STAGES + [("5_handle", "")]:
        p = os.path.join(target_dir, "criterion", "validate", sid, "new", "estimates.json")
        if not os.path.exists(p):
            return None
        e = json.load(open(p))
        out[sid] = {"mean_us": e["mean"]["point_estimate"] / 1000.0,
                    "median_us": e["median"]["point_estimate"] / 1000.0}
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("--out-dir", "--commit", "--rates", "--conns", "--duration", "--max-duration",
              "--server-cpu", "--load-cpu", "--target-dir", "--prio", "--out"):
        ap.add_argument(a, required=True)
    a = ap.parse_args()
    d = a.out_dir
    rates = a.rates.split()
    runs = {r: load_run(d, r) for r in rates}
    mx = load_run(d, "max")
    rss = {k: int(v) / 1024.0 for k, v in
           re.findall(r"(Vm\w+):\s+(\d+) kB", open(os.path.join(d, "rss.txt")).read())}
    size = os.path.getsize(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "raycluster-3-groups.review.json"))

    L = []
    L.append(f"Machine: {sh('nproc')} × {cpu_model()}, Linux {sh('uname -r')}; "
             f"{sh('rustc --version')}; rayward built from `{a.commit}` (release). Webhook "
             f"pinned to core {a.server_cpu}, load generator to core {a.load_cpu}; scheduling "
             f"prefix: `{a.prio}`.")
    L.append("")
    L.append(f"Review: KubeRay's `ray-cluster-label-selector.yaml` RayCluster (head, three "
             f"worker groups, autoscaler) as a CREATE AdmissionReview, {size} bytes; "
             f"`rayward webhook serve --mode enforce` denies it (insecure sample). HTTPS "
             f"(rustls, ECDSA P-256 from `rayward certs`), {a.conns} keep-alive connections "
             f"opened before the run, 2 s warm-up, then {a.duration} s per rate "
             f"({a.max_duration} s at maximum throughput).")
    L.append("")
    L.append("| load | sent | errors | achieved req/s | p50 | p90 | p99 | p99.9 | max "
             "| p99 from due time | load before |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

    def row(label, r):
        s, f = r["service_ms"], r.get("from_due_ms")
        due = f"{f['p99']:.3f} ms" if f else "n/a (closed loop)"
        return (f"| {label} | {r['sent']} | {r['errors']} | {r['achieved_rps']:.0f} | "
                f"{s['p50']:.3f} ms | {s['p90']:.3f} ms | {s['p99']:.3f} ms | "
                f"{s['p999']:.3f} ms | {s['max']:.3f} ms | {due} | {r['loadavg']} |")

    for r in rates:
        L.append(row(f"constant {r}/s", runs[r]))
    L.append(row(f"max throughput ({a.conns} conns, closed loop)", mx))
    L.append("")
    L.append(f"Webhook RSS: peak (VmHWM) {rss['VmHWM']:.1f} MiB, at the end (VmRSS) "
             f"{rss['VmRSS']:.1f} MiB.")
    L.append("")

    crit = criterion(a.target_dir)
    if crit:
        total = crit["5_handle"]["mean_us"]
        L.append("Where one review's time goes (criterion, in-process, no TLS or HTTP; "
                 "mean of each stage, share of the whole `App::handle`):")
        L.append("")
        L.append("| stage | mean | median | share of handle |")
        L.append("|---|---:|---:|---:|")
        for sid, label in STAGES:
            c = crit[sid]
            L.append(f"| {label} | {c['mean_us']:.1f} µs | {c['median_us']:.1f} µs | "
                     f"{100 * c['mean_us'] / total:.0f}% |")
        c = crit["5_handle"]
        L.append(f"| whole `App::handle(\"POST\", \"/validate\", body)` | {c['mean_us']:.1f} µs "
                 f"| {c['median_us']:.1f} µs | 100% |")
        parse = crit["1_review_json"]["mean_us"] + crit["2_load_object"]["mean_us"]
        rules = crit["3_rules"]["mean_us"]
        L.append("")
        L.append(f"Parsing (review JSON + object loading) {parse:.1f} µs, "
                 f"{100 * parse / total:.0f}% of a review; rules {rules:.1f} µs, "
                 f"{100 * rules / total:.0f}%; the rest (verdict and its message, response, metrics) "
                 f"{100 * (total - parse - rules) / total:.0f}%.")
        L.append("")

    L.append("Targets:")
    for r in rates:
        run = runs[r]
        ok_rate = float(r) >= MIN_RATE and run["achieved_rps"] >= 0.98 * float(r)
        p99 = run["service_ms"]["p99"]
        L.append(f"- p99 under {TARGET_P99_MS:g} ms at {r} reviews/s (achieved "
                 f"{run['achieved_rps']:.0f}/s{'' if ok_rate else ', rate NOT held'}): "
                 f"{p99:.3f} ms — {'**met**' if p99 < TARGET_P99_MS and ok_rate else '**missed**'}"
                 f" (from due time: {run['from_due_ms']['p99']:.3f} ms)")
    L.append(f"- maximum throughput: {mx['achieved_rps']:.0f} reviews/s on one core")
    text = "\n".join(L) + "\n"
    open(a.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
