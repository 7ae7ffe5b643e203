#!/usr/bin/env bash
# `rayward history serve` under load (issue 12's serving targets): p50/p99 of the job list
# with 1,000 jobs, the task summary of 100,000 tasks and a 100 MB log download, and the
# listing of 5,000 stored sessions (target: under 100 ms).
#
#   bash bench/history/serve.sh [REQUESTS]     (default 200 per endpoint; 20 for the log)
#
# The store is written straight in layout v1 by the script (a directory store): 5,000
# sessions over 50 namespaces (head + worker index each), one of them holding a job list
# of 1,000 jobs, a task summary of 100,000 tasks (the shape of Ray 2.60's
# /api/v0/tasks/summarize) and a 100 MB log in 8 MiB parts, as the collector stores
# them. Requests go through the real server (Basic auth of an htpasswd user with a
# bcrypt cost-4 hash) with curl, one at a time; the listing is timed cold (first request,
# every index read) and then as served (the listing kept by a background re-read every
# 30 s, filtered per user in memory). RAYWARD_BIN picks the binary (default
# target/release/rayward). The live dashboard's side of the comparison, on data a real
# Ray made: bench/history/live.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
bin=${RAYWARD_BIN:-target/release/rayward}
d=$(mktemp -d /tmp/rw-hserve-bench.XXXXXX)
cleanup() { kill "${spid:-}" 2>/dev/null || true; }
trap cleanup EXIT

python3 - "$d" <<'PY'
import json, os, sys
d = sys.argv[1]; st = os.path.join(d, "store")
os.makedirs(st); open(os.path.join(st, "rayward-history.json"), "w").write('{"layout":1}\n')
def put(key, data):
    p = os.path.join(st, key); os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(data if isinstance(data, bytes) else data.encode())
def index(ns, name, sess, node, role, extra=None):
    i = {"layout": 1, "namespace": ns, "kind": "rayjob", "name": name, "session": sess,
         "node": node, "role": role, "started": 1796464801000, "updated": 1796465052000,
         "finished": True, "logs": [], "events": [], "snapshots": {}, "jobs": [],
         "dropped": 0, "seq": 0, "ray_node_id": ("aa" if role == "head" else "bb") * 14}
    i.update(extra or {})
    put(f"v1/{ns}/rayjob/{name}/{sess}/index/{node}.json", json.dumps(i, separators=(",", ":")))
for k in range(5000):
    ns, name = f"team-{k % 50:02d}", f"job-{k // 50:03d}"
    sess = f"session_2026-12-05_10-00-00_000000_{k}"
    index(ns, name, sess, f"{name}-head", "head",
          {"jobs": [{"submission_id": f"raysubmit_{k}", "status": "SUCCEEDED"}]})
    index(ns, name, sess, f"{name}-worker", "worker")
# The big session.
ns, name, sess = "team-00", "big", "session_2026-12-05_11-00-00_000000_1"
pre = f"v1/{ns}/rayjob/{name}/{sess}"
jobs = [{"type": "SUBMISSION", "job_id": f"{i:08x}", "submission_id": f"raysubmit_{i:06d}",
         "driver_info": None, "status": "SUCCEEDED", "entrypoint": f"python job_{i}.py",
         "message": "Job finished successfully.", "error_type": None, "start_time": 1796464801000 + i,
         "end_time": 1796464901000 + i, "metadata": {"rayward.io/submitted-by": "htpasswd:alice"},
         "runtime_env": {"working_dir": "gcs://_ray_pkg_0123456789abcdef.zip"},
         "driver_agent_http_address": "http://127.0.0.1:52365", "driver_node_id": "aa" * 14,
         "driver_exit_code": 0} for i in range(1000)]
put(f"{pre}/snapshots/big-head/0000000000000001/jobs.json", json.dumps(jobs))
funcs = {f"func_{f}": {"func_or_class_name": f"func_{f}", "type": "NORMAL_TASK",
         "state_counts": {"FINISHED": 1000}} for f in range(100)}
summary = {"result": True, "msg": "", "data": {"result": {"total": 100000, "num_after_truncation": 100000,
           "num_filtered": 100000, "result": {"node_id_to_summary": {"cluster": {"summary": funcs,
           "total_tasks": 100000, "total_actor_tasks": 0, "total_actor_scheduled": 0,
           "summary_by": "func_name"}}}, "partial_failure_warning": "", "warnings": None}}}
put(f"{pre}/snapshots/big-head/0000000000000002/tasks_summary.json", json.dumps(summary))
line = b"2026-12-05 11:00:00,000 INFO worker.py:1234 -- a log line of about a hundred bytes, repeated to fill.\n"
part = 8 << 20; total = 100 << 20; parts = []
blob = (line * (part // len(line) + 1))[:part]
off = 0
while off < total:
    ln = min(part, total - off); key = f"{pre}/logs/big-head/1-0/{off:016x}"
    put(key, blob[:ln]); parts.append({"key": key, "offset": off, "len": ln}); off += ln
index(ns, name, sess, "big-head", "head", {
    "snapshots": {"jobs": {"key": f"{pre}/snapshots/big-head/0000000000000001/jobs.json", "status": 200, "taken": 0},
                  "tasks_summary": {"key": f"{pre}/snapshots/big-head/0000000000000002/tasks_summary.json", "status": 200, "taken": 0}},
    "logs": [{"id": "1-0", "name": "big.log", "dev": 1, "ino": 1, "shipped": total, "parts": parts}]})
PY

. bench/history/lib.sh
start_serve "$bin" "$d" python3
base="http://$addr"
auth=(-u alice:Secret-Pass1)
big="/clusters/team-00/rayjob/big/session_2026-12-05_11-00-00_000000_1"

time_one() { time_get /dev/null "$base$1" "${auth[@]}"; }
bench() { # NAME PATH COUNT
  local out=$d/$1.times
  : >"$out"
  for _ in $(seq "$3"); do time_one "$2" >>"$out"; done
  read -r p50 p99 bytes bad k < <(time_stats "$out")
  printf '%-28s n=%-4s p50 %8s ms  p99 %8s ms  bytes %10s  non-200 %s' "$1" "$k" "$p50" "$p99" "$bytes" "$bad"
  echo "  (server RSS $(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$spid/status") MB, peak $(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$spid/status") MB)"
}
echo "listing, first request after start (every index read): $(time_one /api/clusters | awk '{printf "%.1f ms, %d bytes", $2 * 1000, $3}')"
bench "listing 5,000 (warm)" /api/clusters "$n"
bench "job list, 1,000 jobs" "$big/api/jobs/" "$n"
bench "task summary, 100,000" "$big/api/v0/tasks/summarize?summary_by=func_name" "$n"
bench "100 MB log download" "$big/api/v0/logs/file?node_id=big-head&filename=big.log" "$(( n / 10 > 0 ? n / 10 : 1 ))"
echo "server RSS peak: $(awk '/VmHWM/ {print $2 / 1024 " MB"}' "/proc/$spid/status")"
echo "(work dir $d)"
