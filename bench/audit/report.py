#!/usr/bin/env python3
"""Writes the audit benchmark's Markdown results from score.py's JSON and GNU time -v logs.

    report.py --scores scores.json --rayward-time r-1.time r-2.time r-3.time \
              [--checkov-run LABEL TIMEFILE MEMFILE CMD]... --out results.md

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
    """Wall seconds, peak RSS (MB), user and system seconds from `/usr/bin/time -v`, and
    the load average saved next to it (NAME.load) before the run."""
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    user = float(re.search(r"User time \(seconds\): (\S+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): (\S+)", text).group(1))
    load = "?"
    if path.endswith(".time") and os.path.exists(path[:-5] + ".load"):
        load = open(path[:-5] + ".load").read().strip()
    # `time -v` counts in KiB: rss_mb is MiB
    return {"wall": secs, "rss_mb": rss_kb / 1024.0, "rss_bytes": rss_kb * 1024,
            "cpu": user + system, "load": load}


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
    return {
        "cpu": f"{sh(['nproc'])} × {model}",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "rustc": sh(["rustc", "--version"]),
        "rayward": sh([rayward_bin, "--version"]) if rayward_bin else "?",
        # the binary is built from the working tree: name its commit, and say if it was dirty
        "commit": sh(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe",
                      "--always", "--dirty", "--exclude=*"]) or "?",
        "python": platform.python_version(),
        "checkov": sh([checkov_bin, "--version"]) if checkov_bin else None,
    }


def fmt_s(s):
    return f"{s:.2f} s" if s < 10 else f"{s:.0f} s"


def pct(a, b):
    return "n/a" if not b else f"{100.0 * a / b:.1f}%"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", required=True)
    ap.add_argument("--rayward-time", nargs="+", required=True)
    ap.add_argument("--rayward-bin")
    ap.add_argument("--rayward-commit", help="the commit it was built from")
    ap.add_argument("--rayward-cmd", default="rayward audit corpus --format json")
    ap.add_argument("--checkov-run", nargs=4, action="append", default=[],
                    metavar=("LABEL", "TIME", "MEM", "CMD"),
                    help="one Checkov run: label, its time -v file, treemem.py JSON, command")
    ap.add_argument("--checkov-bin")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    scores = json.load(open(a.scores))
    corpus = scores["corpus"]
    rw = scores["rayward"]
    ck = scores.get("checkov")
    rtimes = [parse_time(p) for p in a.rayward_time]
    r_wall = statistics.median(t["wall"] for t in rtimes)
    r_cpu = statistics.median(t["cpu"] for t in rtimes)
    r_rss = max(t["rss_mb"] for t in rtimes)
    cruns = []
    for label, tfile, mfile, cmd in a.checkov_run:
        t = parse_time(tfile)
        t["label"], t["cmd"] = label, cmd
        t["mem"] = json.load(open(mfile)) if os.path.exists(mfile) else None
        cruns.append(t)
    m = machine(a.rayward_bin, a.checkov_bin if cruns else None)
    if a.rayward_commit:
        m["commit"] = a.rayward_commit
    if cruns and m["checkov"] in (None, "", "?"):
        m["checkov"] = (ck or {}).get("version") or "?"

    L = []
    L.append(f"Corpus: {corpus['count']} RayClusters (seed {corpus['seed']}) in "
             f"{len(corpus['files'])} files, {corpus['injected_total']} injected problems; "
             f"clusters with 0/1/2/3 problems: "
             f"{'/'.join(str(n) for n in corpus['clusters_by_problem_count'])}.")
    L.append("")
    L.append(f"Machine ({datetime.date.today().isoformat()}): {m['cpu']}, {m['memory']} RAM, "
             f"{m['os']}; {m['rustc']}; {m['rayward']} (built from `{m['commit']}`); "
             f"Python {m['python']}"
             + (f"; Checkov {m['checkov']}." if cruns else "."))
    L.append("")
    L.append(f"- rayward: `{a.rayward_cmd}`, {len(rtimes)} runs, median wall time")
    for c in cruns:
        L.append(f"- Checkov ({c['label']}): `{c['cmd']}`, 1 run")
    L.append("")

    head = "| | rayward |" + "".join(f" Checkov {c['label']} |" for c in cruns)
    L.append(head)
    L.append("|---|---:|" + "---:|" * len(cruns))

    def row(name, rval, cvals):
        L.append(f"| {name} | {rval} |" + "".join(f" {c} |" for c in cvals))

    runs = f" (runs {', '.join(fmt_s(t['wall']) for t in rtimes)})" if len(rtimes) > 1 else ""
    row("wall time", f"{fmt_s(r_wall)}{runs}", [fmt_s(c["wall"]) for c in cruns])
    row("CPU time (user + system)", fmt_s(r_cpu), [fmt_s(c["cpu"]) for c in cruns])
    row("speedup, wall (Checkov / rayward)", "1×", [f"{c['wall'] / r_wall:.0f}×" for c in cruns])
    row("speedup, CPU time", "1×", [f"{c['cpu'] / r_cpu:.0f}×" for c in cruns])
    row("peak RSS, largest process (`time -v`)", f"{r_rss:.0f} MiB",
        [f"{c['rss_mb']:.0f} MiB" for c in cruns])
    row("peak memory, whole process tree (sampled)", "one process",
        [(f"{c['mem']['peak_tree_pss_mb']:.0f} MiB PSS / {c['mem']['peak_tree_rss_mb']:.0f} MiB RSS,"
          f" {c['mem']['peak_processes']} processes") if c["mem"] else "-" for c in cruns])
    row("load average before the run (1/5/15 min)", "; ".join(t["load"] for t in rtimes),
        [c["load"] for c in cruns])
    L.append("")

    rt = rw["total"]
    ct = ck["total"] if ck else None
    L.append("| | rayward | Checkov" + (" (all runs together)" if len(cruns) > 1 else "") + " |")
    L.append("|---|---:|---:|")
    row2 = lambda n, r, c: L.append(f"| {n} | {r} | {c} |")  # noqa: E731
    row2("findings, all rules", rw["findings"], ck["findings"] if ck else "-")
    row2("injected problems found", f"{rt['found']} / {rt['injected']} ({pct(rt['found'], rt['injected'])})",
         f"{ct['found']} / {ct['injected']} ({pct(ct['found'], ct['injected'])}), object only"
         if ct else "-")
    row2("… at the exact JSON path (or inside it)", rt["at_path"], "n/a: no paths")
    row2("… at the right container, less precise path", rt["at_container"], "n/a")
    row2("false positives: injected kind's rule where that kind was not injected",
         rt["false_positive"], ct["false_positive"] if ct else "-")
    row2("misplaced: kind injected on the cluster, finding at another place",
         rt["misplaced"], ct["misplaced"] if ct else "-")
    row2("input errors", rw.get("errors", 0),
         sum((s or {}).get("parsing_errors", 0) for s in ck["summaries"].values()) if ck else "-")
    L.append("")

    L.append("| kind | rayward rule | injected | rayward found | at path | at container | "
             "rayward false pos. | misplaced | Checkov checks | Checkov found (object) | "
             "Checkov false pos. |")
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

    L.append("Targets:")
    ok = lambda b: "**met**" if b else "**not met**"  # noqa: E731
    for c in cruns:
        sp = c["wall"] / r_wall
        L.append(f"- at least {TARGET_SPEEDUP}× faster than Checkov ({c['label']}), wall time: "
                 f"{sp:.0f}× — {ok(sp >= TARGET_SPEEDUP)}")
    if len(cruns) > 1:
        sp = sum(c["wall"] for c in cruns) / r_wall
        L.append(f"- at least {TARGET_SPEEDUP}× faster than Checkov, all its runs together "
                 f"(what it takes Checkov to look for every injected kind), wall time: "
                 f"{sp:.0f}× — {ok(sp >= TARGET_SPEEDUP)}")
    r_bytes = max(t["rss_bytes"] for t in rtimes)
    L.append(f"- under {TARGET_RSS_MB} MB (10^6 bytes) peak RSS: {r_bytes / 1e6:.0f} MB "
             f"({r_rss:.0f} MiB) — {ok(r_bytes < TARGET_RSS_MB * 1e6)}")
    L.append(f"- every injected problem found at the right object and JSON path: "
             f"{rt['found']}/{rt['injected']}, {rt['at_path']} at the exact path — "
             f"{ok(rt['found'] == rt['injected'])}")
    L.append(f"- no finding of an injected kind where it was not injected: "
             f"{rt['false_positive']} false positives, {rt['misplaced']} misplaced — "
             f"{ok(rt['false_positive'] == 0 and rt['misplaced'] == 0)}")
    L.append("")
    L.append("Other facts:")
    missing = [k for k in KIND_ORDER
               if not any(r in rw["findings_by_rule"] for r in KINDS[k]["rules"])]
    if missing:
        names = ", ".join(f"{k} ({'/'.join(KINDS[k]['rules'])})" for k in missing)
        L.append(f"- kinds whose rule reported nothing at all (not implemented yet, or never "
                 f"firing): {names}")
    on_clean = rw["findings_on_clean_clusters_by_rule"]
    L.append(f"- rayward findings on the {rw['clean_clusters']} clusters with no injected problem: "
             + (", ".join(f"{r} {n}" for r, n in on_clean.items()) if on_clean else "none"))
    other = rw["other_findings_by_rule"]
    L.append("- rayward findings of rules of no injected kind (any object): "
             + (", ".join(f"{r} {n}" for r, n in other.items()) if other else "none"))
    if rw.get("suppressed"):
        L.append(f"- rayward findings suppressed (not scored): {rw['suppressed']}")
    if ck:
        L.append("- Checkov failed checks: "
                 + (", ".join(f"{r} {n}" for r, n in ck["findings_by_rule"].items()) or "none"))
        for fw, s in ck["summaries"].items():
            if s:
                L.append(f"- Checkov {fw} summary: {s.get('resource_count')} resources, "
                         f"{s.get('passed')} passed, {s.get('failed')} failed, "
                         f"{s.get('parsing_errors')} parsing errors")
    text = "\n".join(L) + "\n"
    with open(a.out, "w") as fh:
        fh.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
