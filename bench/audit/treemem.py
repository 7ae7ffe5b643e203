#!/usr/bin/env python3
"""Runs a command and samples the memory of its whole process tree.

    treemem.py --out MEM.json [--interval 0.2] -- COMMAND ARGS...

GNU `time -v` reports the largest single process's peak RSS. Checkov forks worker
processes, so that figure undercounts it; this samples every process of the tree from
/proc and records the peak of the summed RSS and of the summed PSS (proportional set
size: shared pages split between the processes sharing them, so the sum is not inflated
by pages forked children share). Linux only, standard library only. The command's stdin,
stdout and stderr are passed through and its exit code is returned.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(root):
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def mem_kb(pid):
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    # the sampler itself at low priority, so it takes as little CPU from the command as it
    # can (the command keeps its own priority: it was forked before this)
    try:
        os.nice(10)
    except OSError:
        pass
    peak_rss = peak_pss = peak_procs = samples = 0
    while proc.poll() is None:
        rss = pss = 0
        pids = tree(proc.pid)
        for p in pids:
            r, s = mem_kb(p)
            rss += r
            pss += s
        peak_rss = max(peak_rss, rss)
        peak_pss = max(peak_pss, pss)
        peak_procs = max(peak_procs, len(pids))
        samples += 1
        time.sleep(a.interval)
    wall = time.monotonic() - start
    with open(a.out, "w") as fh:
        json.dump({
            "cmd": cmd,
            "wall_s": wall,
            "exit": proc.returncode,
            "peak_tree_rss_mb": peak_rss / 1024.0,  # MiB, from KiB
            "peak_tree_pss_mb": peak_pss / 1024.0,  # MiB
            "peak_processes": peak_procs,
            "samples": samples,
            "interval_s": a.interval,
        }, fh, indent=2)
        fh.write("\n")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
