#!/usr/bin/env bash
# The collector's cost on a busy head (issue 12's target: under 30 MB RSS and under 2% of
# one core at 100 tasks/s), and the store bytes per 1,000 tasks.
#
#   shared/tools/netns-run bash bench/history/collector.sh [SECONDS]   (default 60)
#
# Inside netns-run (Ray binds loopback only there): a Ray 2.60 head with token auth and
# event export to `rayward history collect` (local store, --head, default intervals); a
# driver submits 100 tiny tasks a second for SECONDS; the collector's CPU time
# (/proc/PID/stat utime+stime) and RSS (VmRSS, VmHWM) are read before and after, then it
# is SIGTERMed (final flush) and the store measured. RAYWARD_BIN picks the binary (default
# target/release/rayward); RAYWARD_RAY_VENV the Ray venv (default .cache/ray-2.60).
# RAYWARD_WRAP runs the collector under a profiler, e.g.
#   RAYWARD_WRAP="heaptrack -o /tmp/collector" (the heap at its peak: heaptrack_print -p)
# the numbers are then the profiled process's, slower and bigger than without.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
bin=${RAYWARD_BIN:-target/release/rayward}
venv=${RAYWARD_RAY_VENV:-.cache/ray-2.60}
d=$(mktemp -d /tmp/rw-hbench.XXXXXX)
home=$d/home; mkdir -p "$home"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export HOME=$home PATH=$venv/bin:$PATH RAY_USAGE_STATS_ENABLED=0
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$token
cleanup() { kill "${cpid:-}" 2>/dev/null || true; }
trap cleanup EXIT

${RAYWARD_WRAP:-} "$bin" history collect --store "$d/store" --spool-dir "$d/spool" --ray-dir "$d/ray" \
  --namespace bench --kind RayCluster --name busy --node busy-head --head \
  --listen 127.0.0.1:8084 2>"$d/collector.err" &
cpid=$!
if [ -n "${RAYWARD_WRAP:-}" ]; then
  # The wrapper's descendant running rayward is the collector.
  for _ in $(seq 50); do
    p=$(pgrep -n -f -- "^$bin history collect" || true)
    [ -n "$p" ] && [ "$p" != "$cpid" ] && { cpid=$p; break; }
    sleep 0.2
  done
fi
RAY_enable_ray_event=true RAY_enable_core_worker_ray_event_to_aggregator=true \
RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR=http://127.0.0.1:8084/v1/events \
RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES=ALL \
  ray start --head --node-ip-address 127.0.0.1 --dashboard-host 127.0.0.1 --num-cpus 2 \
  --include-dashboard true --disable-usage-stats --temp-dir "$d/ray" >"$d/head.out" 2>&1

cat >"$d/driver.py" <<PY
import ray, time, sys
ray.init(address="127.0.0.1:6379")
@ray.remote  # one CPU each: the two workers are reused (with num_cpus=0.01 Ray started a
def f(i):    # Python worker per task and fell to a few tasks/s on a loaded machine)
    return i
secs = float(sys.argv[1]); t0 = time.time(); n = 0
while time.time() - t0 < secs:
    ray.get([f.remote(n + i) for i in range(10)]); n += 10
    time.sleep(max(0.0, t0 + n / 100.0 - time.time()))
print("TASKS", n, "RATE", round(n / (time.time() - t0), 1))
PY

sample() {
  local s; s=$(cut -d' ' -f14,15 "/proc/$cpid/stat")
  echo "$(( ${s% *} + ${s#* } )) $(awk '/VmRSS/ {print $2}' "/proc/$cpid/status") $(awk '/VmHWM/ {print $2}' "/proc/$cpid/status")"
}
sleep 5
read -r cpu0 rss0 _ <<<"$(sample)"
t0=$(date +%s.%N)
# Resident memory split every 0.5 s: anonymous (heap, stacks) against file-backed (the
# binary's pages), to tell which part the peak is.
( while kill -0 "$cpid" 2>/dev/null; do
    awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print a, f}' "/proc/$cpid/status"
    sleep 0.5
  done >"$d/rss.txt" ) &
python "$d/driver.py" "$secs" >"$d/driver.out" 2>"$d/driver.err"
sleep 5  # the last events reach the collector
read -r cpu1 rss1 hwm1 <<<"$(sample)"
read -r anon_max file_max <<<"$(awk '$1>a {a=$1} $2>f {f=$2} END {print a+0, f+0}' "$d/rss.txt")"
t1=$(date +%s.%N)
kill -TERM "$cpid"
while kill -0 "$cpid" 2>/dev/null; do sleep 0.2; done
wait || true
tasks=$(awk '/^TASKS/ {print $2}' "$d/driver.out")
rate=$(awk '/^TASKS/ {print $4}' "$d/driver.out")
tck=$(getconf CLK_TCK)
store_kb=$(du -sk "$d/store" | cut -f1)
events_kb=$(du -sk "$d"/store/v1/*/*/*/*/events | cut -f1)
python3 - "$cpu0" "$cpu1" "$tck" "$t0" "$t1" "$rss0" "$rss1" "$hwm1" "$tasks" "$rate" "$store_kb" "$events_kb" "$anon_max" "$file_max" <<'PY'
import sys
c0, c1, tck, t0, t1, r0, r1, hwm, tasks, rate, skb, ekb, amax, fmax = sys.argv[1:]
cpu = (int(c1) - int(c0)) / int(tck); wall = float(t1) - float(t0)
print(f"tasks {tasks} at {rate}/s over {wall:.0f} s")
print(f"collector CPU {cpu:.2f} s = {100 * cpu / wall:.2f}% of one core")
print(f"collector RSS {int(r0) / 1024:.1f} MB before, {int(r1) / 1024:.1f} MB after, peak {int(hwm) / 1024:.1f} MB")
print(f"  sampled every 0.5 s under load: anonymous at most {int(amax) / 1024:.1f} MB, file-backed at most {int(fmax) / 1024:.1f} MB")
print(f"store {int(skb) / 1024:.1f} MB in all, events {int(ekb) / 1024:.1f} MB: {int(ekb) / int(tasks) * 1000 / 1024:.2f} MB of events per 1,000 tasks")
PY
echo "(work dir $d; Ray is stopped by netns-run when the namespace goes)"
