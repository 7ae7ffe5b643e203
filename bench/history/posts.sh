#!/usr/bin/env bash
# The collector's memory under event POSTs alone, without Ray (fast, and independent of
# the machine's load, unlike collector.sh): COUNT POSTs of 1,000 Ray-shaped events (1.84 MB
# each), 20 a second, to `rayward history collect` on a local store; RssAnon and RssFile
# sampled every 0.2 s, VmHWM at the end.
#
#   bash bench/history/posts.sh [COUNT] [ENV=VALUE...]   (default 150)
#
# ENV=VALUE pairs go to the collector's environment (e.g. MIMALLOC_ARENA_EAGER_COMMIT=0).
# RAYWARD_BIN picks the binary (default target/release/rayward).
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-150}; shift || true
bin=${RAYWARD_BIN:-target/release/rayward}
d=$(mktemp -d /tmp/rw-hposts.XXXXXX)
s=session_2026-12-05_10-00-00_000000_1
mkdir -p "$d/ray/$s/logs"; ln -s "$s" "$d/ray/session_latest"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env "$@" "$bin" history collect --store "$d/store" --spool-dir "$d/spool" --ray-dir "$d/ray" \
  --namespace bench --kind RayCluster --name posts --node n --listen "127.0.0.1:$port" 2>"$d/err" &
p=$!
trap 'kill $p 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
( while kill -0 $p 2>/dev/null; do
    awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print a, f}' "/proc/$p/status"; sleep 0.2
  done >"$d/rss" ) &
python3 - "$count" "$port" "$s" <<'PY'
import json, sys, time, urllib.request
n, port, session = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ev = {"eventId": "x" * 32, "sourceType": "CORE_WORKER", "eventType": "TASK_DEFINITION_EVENT",
      "timestamp": "2026-12-05T00:00:00Z", "severity": "INFO", "sessionName": session,
      "taskDefinitionEvent": {"taskId": "ab" * 24, "funcName": "f", "pad": "y" * 1500}}
body = json.dumps([ev] * 1000).encode()
t0 = time.time()
for i in range(n):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/events", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(req).status == 200
    time.sleep(0.05)
print(f"posted {n} x {len(body)} bytes in {time.time() - t0:.1f} s")
PY
sleep 4
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$p/status")
kill -TERM $p; wait $p || true
stored=$(find "$d/store" -path '*/events/*' -type f -exec cat {} + | python3 -c 'import json,sys; d=sys.stdin.read().replace("][", "],["); print(sum(len(a) for a in json.loads("[" + d + "]")))')
awk -v h="$hwm" -v n="$stored" '$1>a {a=$1} $2>f {f=$2} END {printf "RSS peak %.1f MB: anonymous at most %.1f MB, file-backed at most %.1f MB; %d events stored\n", h/1024, a/1024, f/1024, n}' "$d/rss"
