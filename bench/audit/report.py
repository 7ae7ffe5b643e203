#!/usr/bin/env python3
"""Writes the audit benchmark's Markdown results from score.py's JSON and GNU time -v logs.

Standard library only. Called by run.sh.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kinds import KINDS, KIND_ORDER  # noqa: E402

TARGET_SPEEDUP = 200
TARGET_RSS_MB = 150


def parse_time(path):
    """Wall seconds, peak RSS (MB), user and system seconds from `/usr/bin/time -v`."""
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): (\S+)", text).group(1))
    return {"wall": secs, "rss_mb": rss_kb / 1024.0, "user": user, "sys": system}


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:  # noqa: BLE001 - machine facts are best effort
        return "?"


def machine(rayward_bin, checkov_bin):
    model = "?"
    for line in sh(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    facts = {
        "cpu": f"{sh(['nproc'])} × {model}",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "rustc": sh(["rustc", "--version"]),
        "rayward": sh([rayward_bin, "--version"]) if rayward_bin else "?",
        "python": platform.python_version(),
    }
    if checkov_bin:
        facts["checkov"] = sh([checkov_bin, "--version"])
    return facts


def fmt_s(s):
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def pct(a, b):
    return "n/a" if not b else f"{100.0 * a / b:.1f}%"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", required=True)
    ap.add_argument("--rayward-time", nargs="+", required=True)
    ap.add_argument("--rayward-bin")
    ap.add_argument("--rayward-cmd", default="rayward audit corpus --format json")
    ap.add_argument("--checkov")
    ap.add_argument("--checkov-time")
    ap.add_argument("--checkov-bin")
    ap.add_argument("--checkov-cmd", default="")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    scores = json.load(open(a.scores))
    corpus = scores["corpus"]
    rw = scores["rayward"]
    ck = scores.get("checkov")
    rtimes = [parse_time(p) for p in a.rayward_time]
    r_wall = statistics.median(t["wall"] for t in rtimes)
    r_rss = max(t["rss_mb"] for t in rtimes)
    ctime = parse_time(a.checkov_time) if ck and a.checkov_time else None
    m = machine(a.rayward_bin, a.checkov_bin if ck else None)

    L = []
    L.append(f"Corpus: {corpus['count']} RayClusters (seed {corpus['seed']}) in "
             f"{len(corpus['files'])} files, {corpus['injected_total']} injected problems; "
             f"clusters with 0/1/2/3 problems: "
             f"{'/'.join(str(n) for n in corpus['clusters_by_problem_count'])}.")
    L.append(f"Run {datetime.date.today().isoformat()}. Machine: {m['cpu']}, {m['memory']} RAM, "
             f"{m['os']}; {m['rustc']}; {m['rayward']}; Python {m['python']}"
             + (f"; Checkov {m['checkov']}." if ck else "."))
    L.append("")
    L.append(f"Commands: `{a.rayward_cmd}` ({len(rtimes)} runs, median wall time)"
             + (f"; `{a.checkov_cmd}` (1 run)." if ck else "; Checkov skipped."))
    L.append("")

    rt, ct = rw["total"], (ck["total"] if ck else None)
    L.append("| | rayward | Checkov |")
    L.append("|---|---:|---:|")
    rng = f" (runs {', '.join(fmt_s(t['wall']) for t in rtimes)})" if len(rtimes) > 1 else ""
    L.append(f"| wall time | {fmt_s(r_wall)}{rng} | {fmt_s(ctime['wall']) if ctime else '-'} |")
    L.append(f"| CPU time (user+sys) | {fmt_s(statistics.median(t['user'] + t['sys'] for t in rtimes))}"
             f" | {fmt_s(ctime['user'] + ctime['sys']) if ctime else '-'} |")
    c_rss = f"{ctime['rss_mb']:.0f} MB" if ctime else "-"
    L.append(f"| peak RSS | {r_rss:.1f} MB | {c_rss} |")
    speed = ctime["wall"] / r_wall if ctime and r_wall > 0 else None
    speed_s = f"{speed:.0f}×" if speed else "-"
    L.append(f"| speedup (Checkov wall / rayward wall) | {speed_s} | 1× |")
    L.append(f"| findings (all rules) | {rw['findings']} | {ck['findings'] if ck else '-'} |")
    c_found = (f"{ct['found']} / {ct['injected']} ({pct(ct['found'], ct['injected'])}), "
               "object only" if ct else "-")
    L.append(f"| injected problems found | {rt['found']} / {rt['injected']} "
             f"({pct(rt['found'], rt['injected'])}) | {c_found} |")
    L.append(f"| … at the exact JSON path (or inside it) | {rt['at_path']} | n/a (no paths) |")
    L.append(f"| … at the right container, less precise path | {rt['at_container']} | n/a |")
    L.append(f"| false positives of injected kinds (kind not injected on that object) | "
             f"{rt['false_positive']} | {ct['false_positive'] if ct else '-'} |")
    L.append(f"| misplaced (kind injected on the cluster, finding elsewhere in it) | "
             f"{rt['misplaced']} | {ct['misplaced'] if ct else '-'} |")
    L.append(f"| input errors reported | {rw.get('errors', 0)} | "
             f"{sum((s or {}).get('parsing_errors', 0) for s in ck['summaries'].values()) if ck else '-'} |")
    L.append("")

    L.append("| kind | rayward rule | injected | rayward found | at path | at container | "
             "rayward FP | misplaced | Checkov checks | Checkov found (object) | Checkov FP |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for k in KIND_ORDER:
        r = rw["by_kind"][k]
        c = ck["by_kind"][k] if ck else None
        checks = ", ".join(KINDS[k]["checkov"]) or "none"
        L.append(
            f"| {k} | {'/'.join(KINDS[k]['rules'])} | {r['injected']} | "
            f"{r['found']} ({pct(r['found'], r['injected'])}) | {r['at_path']} | "
            f"{r['at_container']} | {r['false_positive']} | {r['misplaced']} | {checks} | "
            + (f"{c['found']} ({pct(c['found'], c['injected'])}) | {c['false_positive']} |"
               if c else "- | - |"))
    L.append("")

    # targets
    L.append("Targets:")
    ok = lambda b: "**met**" if b else "**not met**"  # noqa: E731
    if speed:
        L.append(f"- at least {TARGET_SPEEDUP}× faster than Checkov: {speed:.0f}× — {ok(speed >= TARGET_SPEEDUP)}")
    L.append(f"- under {TARGET_RSS_MB} MB peak RSS: {r_rss:.1f} MB — {ok(r_rss < TARGET_RSS_MB)}")
    L.append(f"- every injected problem found at the right object and JSON path: "
             f"{rt['found']}/{rt['injected']} ({rt['at_path']} at the exact path) — "
             f"{ok(rt['found'] == rt['injected'])}")
    L.append(f"- no finding of an injected kind where it was not injected: "
             f"{rt['false_positive']} false positives, {rt['misplaced']} misplaced — "
             f"{ok(rt['false_positive'] == 0 and rt['misplaced'] == 0)}")
    missing = [k for k in KIND_ORDER
               if not any(r in rw["findings_by_rule"] for r in KINDS[k]["rules"])]
    if missing:
        names = ", ".join(f"{k} ({'/'.join(KINDS[k]['rules'])})" for k in missing)
        L.append(f"- kinds with no finding of their rule at all (rule not implemented yet, or "
                 f"never firing): {names}")
    if rw["findings_on_clean_clusters_by_rule"]:
        L.append(f"- rayward findings on the {rw['clean_clusters']} clusters with no injected problem, "
                 f"by rule: {', '.join(f'{r} {n}' for r, n in rw['findings_on_clean_clusters_by_rule'].items())}")
    else:
        L.append(f"- rayward findings on the {rw['clean_clusters']} clusters with no injected problem: none")
    if rw["other_findings_by_rule"]:
        L.append(f"- rayward findings of rules of no injected kind, by rule: "
                 f"{', '.join(f'{r} {n}' for r, n in rw['other_findings_by_rule'].items())}")
    if ck:
        L.append(f"- Checkov findings by check: "
                 f"{', '.join(f'{r} {n}' for r, n in ck['findings_by_rule'].items()) or 'none'}")
    text = "\n".join(L) + "\n"
    with open(a.out, "w") as fh:
        fh.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
