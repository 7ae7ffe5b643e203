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

"$bin" history collect --store "$d/store" --spool-dir "$d/spool" --ray-dir "$d/ray" \
  --namespace bench --kind RayCluster --name busy --node busy-head --head \
  --listen 127.0.0.1:8084 2>"$d/collector.err" &
cpid=$!
RAY_enable_ray_event=true RAY_enable_core_worker_ray_event_to_aggregator=true \
RAY_DASHBOARD_AGGREGATOR_AGENT_EVENTS_EXPORT_ADDR=http://127.0.0.1:8084/v1/events \
RAY_DASHBOARD_AGGREGATOR_AGENT_EXPOSABLE_EVENT_TYPES=ALL \
  ray start --head --node-ip-address 127.0.0.1 --dashboard-host 127.0.0.1 --num-cpus 2 \
  --include-dashboard true --disable-usage-stats --temp-dir "$d/ray" >"$d/head.out" 2>&1

cat >"$d/driver.py" <<PY
import ray, time, sys
ray.init(address="127.0.0.1:6379")
@ray.remote(num_cpus=0.01)
def f(i):
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
python "$d/driver.py" "$secs" >"$d/driver.out" 2>"$d/driver.err"
sleep 5  # the last events reach the collector
read -r cpu1 rss1 hwm1 <<<"$(sample)"
t1=$(date +%s.%N)
kill -TERM "$cpid"; wait "$cpid" || true
tasks=$(awk '/^TASKS/ {print $2}' "$d/driver.out")
rate=$(awk '/^TASKS/ {print $4}' "$d/driver.out")
tck=$(getconf CLK_TCK)
store_kb=$(du -sk "$d/store" | cut -f1)
events_kb=$(du -sk "$d"/store/v1/*/*/*/*/events | cut -f1)
python3 - "$cpu0" "$cpu1" "$tck" "$t0" "$t1" "$rss0" "$rss1" "$hwm1" "$tasks" "$rate" "$store_kb" "$events_kb" <<'PY'
import sys
c0, c1, tck, t0, t1, r0, r1, hwm, tasks, rate, skb, ekb = sys.argv[1:]
cpu = (int(c1) - int(c0)) / int(tck); wall = float(t1) - float(t0)
print(f"tasks {tasks} at {rate}/s over {wall:.0f} s")
print(f"collector CPU {cpu:.2f} s = {100 * cpu / wall:.2f}% of one core")
print(f"collector RSS {int(r0) / 1024:.1f} MB before, {int(r1) / 1024:.1f} MB after, peak {int(hwm) / 1024:.1f} MB")
print(f"store {int(skb) / 1024:.1f} MB in all, events {int(ekb) / 1024:.1f} MB: {int(ekb) / int(tasks) * 1000 / 1024:.2f} MB of events per 1,000 tasks")
PY
echo "(work dir $d; Ray is stopped by netns-run when the namespace goes)"
