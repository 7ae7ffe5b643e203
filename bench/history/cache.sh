#!/usr/bin/env bash
# The cost of `history serve`'s session cache: a miss (the first request of a session,
# which reads all its node indexes) against hits, and what a request of the nodes route
# reads from the store besides the cached indexes (one snapshot object).
#
#   RAYWARD_BIN=target/release/rayward bash bench/history/cache.sh [BATCHES] [SECONDS]
#   (defaults: a head index naming 20,000 event batches, about the full-scale head's
#   2.3 MB; requests for 30 s, so the 5 s refresh of a session still being written
#   happens 5 times)
#
# A directory store with one session still being written (finished false: re-read in the
# background every 5 s) whose head index names BATCHES event batches and a 16 KB nodes
# snapshot. Requests one at a time with curl and Basic auth (bcrypt cost 4, cache on):
# the first request (the miss), then for SECONDS alternately `/api/authentication_mode`
# (answered from the cached indexes alone) and `/nodes?view=summary` (plus one snapshot
# read), each with p50, p99 and max.
set -euo pipefail
cd "$(dirname "$0")/../.."
batches=${1:-20000}
secs=${2:-30}
bin=${RAYWARD_BIN:-target/release/rayward}
d=$(mktemp -d /tmp/rw-hcache.XXXXXX)
cleanup() { kill "${spid:-}" 2>/dev/null || true; }
trap cleanup EXIT
. bench/history/lib.sh
echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"

python3 - "$d" "$batches" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2]); st = os.path.join(d, "store")
os.makedirs(st); open(os.path.join(st, "rayward-history.json"), "w").write('{"layout":1}\n')
def put(key, data):
    p = os.path.join(st, key); os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(data.encode())
pre = "v1/bench/raycluster/live/session_2026-12-06_02-00-00_000000_1"
node = {"raylet": {"nodeId": "aa" * 28, "state": "ALIVE"}, "ip": "127.0.0.1", "hostname": "h",
        "pad": "x" * 15500}
put(f"{pre}/snapshots/live-head/0000000000000001/nodes.json",
    json.dumps({"result": True, "msg": "", "data": {"summary": [node]}}))
idx = {"layout": 1, "namespace": "bench", "kind": "raycluster", "name": "live",
       "session": "session_2026-12-06_02-00-00_000000_1", "node": "live-head", "role": "head",
       "started": 1796464801000, "updated": 1796465052000, "finished": False, "logs": [],
       "events": [{"key": f"{pre}/events/live-head/{i + 2:016x}.json", "count": 1000, "bytes": 900000}
                  for i in range(n)],
       "snapshots": {"nodes": {"key": f"{pre}/snapshots/live-head/0000000000000001/nodes.json",
                               "status": 200, "taken": 1796465052000}},
       "jobs": [], "dropped": 0, "seq": n + 2, "ray_node_id": "aa" * 28}
put(f"{pre}/index/live-head.json", json.dumps(idx, separators=(",", ":")))
print(f"head index: {os.path.getsize(os.path.join(st, pre, 'index/live-head.json'))} bytes")
PY
start_serve "$bin" "$d" python3
s="http://$addr/clusters/bench/raycluster/live/session_2026-12-06_02-00-00_000000_1"
auth=(-u alice:Secret-Pass1)
time_get /dev/null "http://$addr/api/clusters" "${auth[@]}" >/dev/null # the login's bcrypt, once
echo "miss (first request of the session: its indexes read): $(time_get /dev/null "$s/api/authentication_mode" "${auth[@]}" | awk '{printf "%.1f ms", $2 * 1000}')"
: >"$d/a.t"; : >"$d/n.t"
end=$((SECONDS + secs))
while [ $SECONDS -lt $end ]; do
  time_get /dev/null "$s/api/authentication_mode" "${auth[@]}" >>"$d/a.t"
  time_get /dev/null "$s/nodes?view=summary" "${auth[@]}" >>"$d/n.t"
done
for f in a n; do
  name=$([ $f = a ] && echo "hits, cached indexes only" || echo "hits, nodes (+1 snapshot read)")
  read -r p50 p99 bytes bad k < <(time_stats "$d/$f.t")
  max=$(sort -k2 -g "$d/$f.t" | tail -1 | awk '{printf "%.1f", $2 * 1000}')
  printf '%-32s n=%-5s p50 %6s ms  p99 %6s ms  max %6s ms  bytes %6s  non-200 %s\n' "$name" "$k" "$p50" "$p99" "$max" "$bytes" "$bad"
done
echo "server RSS $(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$spid/status") MB, peak $(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$spid/status") MB"
echo "(work dir $d)"
