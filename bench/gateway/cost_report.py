#!/usr/bin/env python3
"""Writes cost.md for bench/gateway/cost.sh: per-request counts of each contender from
perf's CSV outputs (`perf stat -x,`), wrk's answer counts (count.lua) and callgrind's
dump. Stdlib only."""

import argparse
import platform
import re
import subprocess
from pathlib import Path


def answers(path: Path) -> int:
    m = re.search(r"answers (\d+)", path.read_text())
    if not m:
        raise SystemExit(f"{path}: no answer count")
    return int(m.group(1))


def perf_counts(path: Path) -> dict:
    """event -> count, from `perf stat -x,` output."""
    out = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        f = line.split(",")
        if len(f) < 3:
            continue
        try:
            v = float(f[0])
        except ValueError:
            continue  # <not counted>
        out[f[2]] = out.get(f[2], 0.0) + v
    return out


def callgrind_total(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"{path}: no callgrind total")


def top_functions(path: Path, total: int, n: int, per: int) -> list:
    """(instructions per request, share, function) of the n largest self costs."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)", line)
        if m:
            ir = int(m.group(1).replace(",", ""))
            if ir >= total:  # the PROGRAM TOTALS line
                continue
            rows.append((ir / per, ir / total * 100, m.group(3)))
    return rows[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--conns", required=True)
    ap.add_argument("--contenders", nargs="+", required=True)
    a = ap.parse_args()
    d = Path(a.out_dir)
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ncpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(
        f"Machine: {ncpu} × {cpu}, Linux {platform.release()}; rayward built from "
        f"`{a.commit}`; load average at the end: {Path('/proc/loadavg').read_text().split()[:3]}.\n"
    )
    print(
        f"Per request, {a.conns} connections, `GET /api/version` with apr1 Basic credentials "
        "(cached verification for the gateway; none for proxy_pass). Instructions: user "
        "space only (callgrind); system calls and context switches: the server's, "
        "from perf tracepoints; allocations: calls of malloc/calloc/realloc (libc) and of "
        "mimalloc's entry points (the gateway's global allocator).\n"
    )
    rows = {}
    for c in a.contenders:
        r = {}
        n = answers(d / f"{c}-wrk.txt")
        p = perf_counts(d / f"{c}-perf.txt")
        r["cpu_us"] = p.get("task-clock", 0) * 1000 / n  # task-clock is in ms
        r["cs"] = p.get("context-switches", 0) / n
        r["sys"] = p.get("raw_syscalls:sys_enter", 0) / n
        ns = answers(d / f"{c}-wrk-sys.txt")
        per_sys = {
            k.split("sys_enter_", 1)[1]: v / ns
            for k, v in perf_counts(d / f"{c}-syscalls.txt").items()
            if v > 0 and "sys_enter_" in k
        }
        r["sys_top"] = sorted(per_sys.items(), key=lambda kv: -kv[1])[:6]
        na = answers(d / f"{c}-wrk-alloc.txt")
        al = perf_counts(d / f"{c}-allocs.txt")
        r["allocs"] = sum(al.values()) / na
        cg = d / f"{c}-cg.dump"
        if cg.exists():
            nc = answers(d / f"{c}-wrk-cg.txt")
            tot = callgrind_total(cg)
            r["ir"] = tot / nc
            r["top"] = top_functions(d / f"{c}-callgrind.txt", tot, 15, nc)
        rows[c] = r
    print("| per request | " + " | ".join(a.contenders) + " |")
    print("|---|" + "---:|" * len(a.contenders))

    def line(label, key, fmt):
        vals = [fmt.format(rows[c][key]) if key in rows[c] else "—" for c in a.contenders]
        print(f"| {label} | " + " | ".join(vals) + " |")

    line("instructions (user space)", "ir", "{:,.0f}")
    line("system calls", "sys", "{:.2f}")
    line("context switches", "cs", "{:.3f}")
    line("heap allocations", "allocs", "{:.1f}")
    line("CPU time (µs, user + system; load-dependent)", "cpu_us", "{:.1f}")
    print()
    for c in a.contenders:
        print(
            f"- {c} system calls: "
            + ", ".join(f"{k} {v:.2f}" for k, v in rows[c]["sys_top"])
        )
    for c in a.contenders:
        if rows[c].get("top"):
            print(f"\n{c}: largest self costs (instructions per request, share):\n")
            for ir, share, fn in rows[c]["top"]:
                print(f"- {ir:,.0f} ({share:.1f}%) `{fn[:140]}`")


if __name__ == "__main__":
    main()
