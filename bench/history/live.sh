#!/usr/bin/env bash
# History against the live dashboard on the same data (issue 12: "history answers at
# least as fast as the live dashboard (p99) on every endpoint").
#
#   shared/tools/netns-run bash bench/history/live.sh [JOBS] [TASKS] [LOG_MB] [REQUESTS]
#   (defaults 1000 jobs, 100000 tasks, a 100 MB log, 50 requests per route and side)
#
# Inside netns-run (Ray binds loopback only there): a Ray 2.60 head (2 CPUs, token auth,
# event export) and its `rayward history collect` (local store, --head). Population:
# JOBS jobs with the entrypoint `true` through the Jobs REST API, at most 4 in flight
# (each is a job supervisor actor: a Python worker start); one job running TASKS trivial
# tasks in batches of 1,000; one job printing LOG_MB MB to its driver log. The collector
# is then SIGTERMed (its final snapshot and flush) and `history serve` started on the
# store. While Ray still runs, each route is requested REQUESTS times on each side (the
# task routes at most 10, the log at most 20: Ray takes seconds per answer there), live
# and history alternating request by request so both see the same machine load: curl,
# one at a time, Bearer token to Ray, Basic auth (bcrypt cost 4, cache on) to history.
# Population times, p50/p99 per side and the ratio are printed; the last answer of each
# side is kept under bodies/ in the work dir. The log is read whole on both sides
# (`lines=-1`; without it Ray answers the last 1,000 lines, history the whole file).
# RAYWARD_BIN picks the binary (default target/release/rayward), RAYWARD_SERVE_BIN another
# one for `history serve` only (default the same); RAYWARD_RAY_VENV the Ray venv (default
# .cache/ray-2.60).
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-1000}
tasks=${2:-100000}
log_mb=${3:-100}
n=${4:-50}
bin=${RAYWARD_BIN:-target/release/rayward}
venv=${RAYWARD_RAY_VENV:-.cache/ray-2.60}
bin=$(realpath "$bin")
serve_bin=${RAYWARD_SERVE_BIN:-$bin}
venv=$(realpath "$venv")
d=$(mktemp -d /tmp/rw-hlive.XXXXXX)
home=$d/home; mkdir -p "$home"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HOME=$home PATH=$venv/bin:$PATH RAY_USAGE_STATS_ENABLED=0
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$token
cleanup() { kill "${cpid:-}" "${spid:-}" 2>/dev/null || true; }
trap cleanup EXIT
echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"

"$bin" history collect --store "$d/store" --spool-dir "$d/spool" --ray-dir "$d/ray" \
  --namespace bench --kind RayCluster --name live --node live-head --head \
  --listen 127.0.0.1:8084 2>"$d/collector.err" &
cpid=$!
RAY_enable_ray_event=true RAY_enable_core_worker_ray_event_to_aggregator=true \
RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR=http://127.0.0.1:8084/v1/events \
RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES=ALL \
  ray start --head --node-ip-address 127.0.0.1 --dashboard-host 127.0.0.1 --num-cpus 2 \
  --include-dashboard true --disable-usage-stats --temp-dir "$d/ray" >"$d/head.out" 2>&1

cat >"$d/tasks.py" <<'PY'
import ray, sys, time
ray.init()
@ray.remote  # one CPU each: two workers reused, not a Python start per task
def f(i):
    return i
n = int(sys.argv[1]); t0 = time.time(); done = 0
while done < n:
    k = min(1000, n - done)
    ray.get([f.remote(done + i) for i in range(k)]); done += k
print("TASKS", done, "SECONDS", round(time.time() - t0, 1))
PY
cat >"$d/log.py" <<'PY'
import sys
line = "2026-12-06 00:00:00,000 INFO worker.py:1234 -- a log line of about a hundred bytes, repeated to fill.\n"
out = sys.stdout
for _ in range(int(sys.argv[1]) * (1 << 20) // len(line)):
    out.write(line)
out.flush()
PY
cat >"$d/populate.py" <<'PY'
import json, os, sys, time, urllib.request
base = "http://127.0.0.1:8265"; hdr = {"Authorization": "Bearer " + os.environ["RAY_AUTH_TOKEN"],
                                        "Content-Type": "application/json"}
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, headers=hdr,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())
def submit(entrypoint):
    return call("POST", "/api/jobs/", {"entrypoint": entrypoint})["submission_id"]
def state(i):
    return call("GET", f"/api/jobs/{i}")["status"]
def wait(ids):
    while True:
        left = [i for i in ids if state(i) not in ("SUCCEEDED", "FAILED", "STOPPED")]
        if not left:
            return
        time.sleep(0.5)
what, arg, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.time()
if what == "jobs":
    inflight, done = [], 0
    while done < arg or inflight:
        while done < arg and len(inflight) < 4:
            inflight.append(submit("true")); done += 1
        time.sleep(0.2)
        inflight = [i for i in inflight if state(i) not in ("SUCCEEDED", "FAILED", "STOPPED")]
    print(f"{arg} jobs in {time.time() - t0:.0f} s")
elif what == "tasks":
    i = submit(f"python {d}/tasks.py {arg}"); wait([i])
    print(f"{arg} tasks in one job ({i}, {state(i)}) in {time.time() - t0:.0f} s")
else:
    i = submit(f"python {d}/log.py {arg}"); wait([i])
    print(f"a {arg} MB driver log ({i}, {state(i)}) in {time.time() - t0:.0f} s")
    open(f"{d}/log_job", "w").write(i)
PY
py=$venv/bin/python
"$py" "$d/populate.py" tasks "$tasks" "$d"
"$py" "$d/populate.py" log "$log_mb" "$d"
"$py" "$d/populate.py" jobs "$jobs" "$d"
sleep 10 # the last events reach the collector, the supervisors' actors die
kill -TERM "$cpid"
while kill -0 "$cpid" 2>/dev/null; do sleep 0.2; done
wait "$cpid" || true
tail -1 "$d/collector.err"
echo "store: $(du -sm "$d/store" | cut -f1) MB"

. bench/history/lib.sh
start_serve "$serve_bin" "$d" "$py"
session=$(basename "$(readlink "$d/ray/session_latest")")
hist="http://$addr/clusters/bench/raycluster/live/$session"
live="http://127.0.0.1:8265"
node=$(curl -s -H "Authorization: Bearer $token" "$live/nodes?view=summary" |
  "$py" -c "import json,sys; print(json.load(sys.stdin)['data']['summary'][0]['raylet']['nodeId'])")
logjob=$(cat "$d/log_job")
job1=$(curl -s -H "Authorization: Bearer $token" "$live/api/jobs/" |
  "$py" -c "import json,sys; print(json.load(sys.stdin)[0]['submission_id'])")

routes=(
  "jobs list|/api/jobs/"
  "job detail|/api/jobs/$job1"
  "tasks summary|/api/v0/tasks/summarize?summary_by=func_name"
  "tasks list (limit 10000)|/api/v0/tasks?detail=1&limit=10000"
  "nodes|/nodes?view=summary"
  "actors|/logical/actors"
  "cluster status|/api/cluster_status"
  "log file ${log_mb} MB|/api/v0/logs/file?node_id=$node&filename=job-driver-$logjob.log&lines=-1"
)
mkdir -p "$d/bodies"
one() { # SIDE URL OUT -> status seconds bytes
  if [ "$1" = live ]; then
    time_get "$3" "$2" -H "Authorization: Bearer $token"
  else
    time_get "$3" "$2" -u alice:Secret-Pass1
  fi
}
printf '%-26s %10s %10s %12s %10s %10s %12s %8s\n' route "live p50" "live p99" "live bytes" "hist p50" "hist p99" "hist bytes" "p99 h/l"
for r in "${routes[@]}"; do
  name=${r%%|*}; path=${r#*|}
  : >"$d/l.t"; : >"$d/h.t"
  # The log and the task routes cost Ray seconds per answer at scale: at most 20 and 10.
  k=$n; [[ $name == log* ]] && k=$(( n < 20 ? n : 20 ))
  [[ $name == tasks* ]] && k=$(( n < 10 ? n : 10 ))
  ri=$(( ${ri:-0} + 1 ))
  for _ in $(seq "$k"); do # the last answer of each side is kept in bodies/
    one live "$live$path" "$d/bodies/$ri-live" >>"$d/l.t"
    one hist "$hist$path" "$d/bodies/$ri-history" >>"$d/h.t"
  done
  read -r lp50 lp99 lbytes lbad _ < <(time_stats "$d/l.t")
  read -r hp50 hp99 hbytes hbad _ < <(time_stats "$d/h.t")
  note=""; [ "$lbad$hbad" = 00 ] || note="  non-200: live $lbad, history $hbad"
  printf '%-26s %8sms %8sms %12s %8sms %8sms %12s %8s%s\n' "$name" "$lp50" "$lp99" "$lbytes" \
    "$hp50" "$hp99" "$hbytes" "$(awk -v h="$hp99" -v l="$lp99" 'BEGIN {printf "%.2f", h / l}')" "$note"
done
# The same data on both sides: counts the UI shows (bodies/1 jobs, 3 summary, 4 tasks,
# 6 actors: the same actor ids, each in the same state).
"$py" - "$d/bodies" <<'PY'
import json, sys
b = sys.argv[1]
def load(i, side):
    return json.load(open(f"{b}/{i}-{side}"))
def jobs(v):
    return sorted((j["submission_id"], j["status"]) for j in v)
def summary(v):
    s = v["data"]["result"]["result"]["node_id_to_summary"]["cluster"]["summary"]
    return {k: sum(x["state_counts"].values()) for k, x in s.items()}
def tasks(v):
    return v["data"]["result"]["total"], len(v["data"]["result"]["result"])
def actors(v):
    return {i: a["state"] for i, a in v["data"]["actors"].items()}
for what, i, f in [("jobs (id, status)", 1, jobs), ("task summary", 3, summary), ("tasks (total, listed)", 4, tasks), ("actors (id, state)", 6, actors)]:
    l, h = f(load(i, "live")), f(load(i, "history"))
    n = len(l) if isinstance(l, (list, dict)) else l
    extra = ""
    if f is actors and l != h:
        only = sorted(set(l) ^ set(h))
        diff = sorted(k for k in set(l) & set(h) if l[k] != h[k])
        extra = f"; {len(l)} live, {len(h)} history, {len(only)} on one side only, {len(diff)} in another state"
        extra += "".join(f"\n  {k}: live {l[k]}, history {h[k]}" for k in diff[:20])
    print(f"parity {what}: {'equal' if l == h else 'DIFFERENT'} ({n}){extra}")
PY
echo "history serve RSS $(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$spid/status") MB, peak $(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$spid/status") MB"
echo "(work dir $d; Ray is stopped by netns-run when the namespace goes)"
