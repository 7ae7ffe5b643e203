#!/usr/bin/env bash
# Gateway soak (issue 14): the release gateway in front of a stand-in upstream (nginx:
# /api/version a small JSON file, /api/jobs/ a 200 with a submission id) for SOAK_MINUTES
# (30) at about half of its peak rate, with mixed reads, writes and denials
# (bench/gateway/soak.lua). Passes when there was no error (every answer 200 or the
# expected 403, no socket error) and RSS stayed flat (sampled every 10 s; the last
# sample within 10% + 2 MiB of the sample 2 minutes in, or a quarter of a shorter run).
# Writes OUT/soak.md.
#
#   bench/gateway/soak.sh                      # 30 minutes
#   SOAK_MINUTES=2 bench/gateway/soak.sh       # quick
#
# Environment: SOAK_MINUTES (30), CONNS (64), SERVER_CPU (0), LOAD_CPU (1), PORT_BASE
# (18180), OUT (bench/out/gateway-soak), PRIO (see run.sh), RAYWARD_BIN (unset: build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/gateway
OUT=${OUT:-$ROOT/bench/out/gateway-soak}
SOAK_MINUTES=${SOAK_MINUTES:-30}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT_BASE=${PORT_BASE:-18180}
PRIO=${PRIO:-}
# shellcheck disable=SC2206 # PRIO is a command prefix, split on purpose
PRIO_CMD=($PRIO)
UP_PORT=$PORT_BASE
GW_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))
PASS='Bench-pass-2026'

log() { printf '>> %s\n' "$*" >&2; }
for tool in wrk nginx openssl taskset curl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done
rm -rf "$OUT"
mkdir -p "$OUT/up/logs" "$OUT/www/api"
OUT=$(cd "$OUT" && pwd)

# shellcheck source=bench/gateway/lib.sh
. "$HERE/lib.sh"
rayward_bin
tree_commit

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

printf '{"version":"4","ray_version":"2.60.0"}' >"$OUT/www/api/version"
NGINX_CONNECTIONS=4096 nginx_conf up "
  server {
    listen 127.0.0.1:$UP_PORT;
    location = /api/jobs/ { default_type application/json; return 200 '{\"job_id\":\"j\",\"submission_id\":\"raysubmit_soak\"}'; }
    location / { root $OUT/www; default_type application/json; }
  }"
taskset -c "$SERVER_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} nginx -p "$OUT/up" -c "$OUT/up/nginx.conf" &
PIDS+=($!)

{
  printf 'viewer:%s\n' "$(openssl passwd -apr1 "$PASS")"
  printf 'submitter:%s\n' "$(openssl passwd -apr1 "$PASS")"
} >"$OUT/htpasswd"
printf 'soak-cluster-token\n' >"$OUT/ray-token"
cat >"$OUT/gateway.toml" <<EOF2
listen = "127.0.0.1:$GW_PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
upstream = "http://127.0.0.1:$UP_PORT"
ray_token = { file = "$OUT/ray-token" }
[auth]
htpasswd = "$OUT/htpasswd"
[users]
viewer = "viewer"
submitter = "submitter"
[limits]
requests_per_second = 1000000000.0
burst = 1000000000.0
[audit]
# Every write and denial is audited: 30 minutes of them would be gigabytes on disk.
path = "/dev/null"
EOF2
taskset -c "$SERVER_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} "$RAYWARD" gateway --config "$OUT/gateway.toml" 2>"$OUT/gateway.err" &
GW_PID=$!
PIDS+=("$GW_PID")
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/healthz" && break
  sleep 0.1
done
VIEWER="Basic $(printf 'viewer:%s' "$PASS" | base64 -w0)"
SUBMITTER="Basic $(printf 'submitter:%s' "$PASS" | base64 -w0)"
URL="http://127.0.0.1:$GW_PORT"
wrk_mix() { # duration, connections, delay_ms, output
  taskset -c "$LOAD_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} wrk -t1 -c"$2" -d"$1" --timeout 10s --latency \
    -s "$HERE/soak.lua" "$URL" -- "$3" "$VIEWER" "$SUBMITTER" >"$4"
}

log "peak of the mix: 10 s, 16 connections, no pacing"
wrk_mix 10s 16 0 "$OUT/peak.txt"
PEAK=$(awk '/Requests\/sec/ { printf "%d", $2 }' "$OUT/peak.txt")
# Half of peak over CONNS connections: each waits CONNS*1000/(PEAK/2) ms between requests
# (wrk paces in whole milliseconds, so the rate is about half, and recorded as measured).
DELAY=$(( CONNS * 1000 * 2 / PEAK ))
[ "$DELAY" -ge 1 ] || DELAY=1
log "peak $PEAK req/s; soak ${SOAK_MINUTES} min, $CONNS connections, ${DELAY} ms between requests"
: >"$OUT/rss.txt"
(
  while kill -0 "$GW_PID" 2>/dev/null; do
    printf '%s %s\n' "$(date +%s)" "$(awk '/VmRSS/ { print $2 }' "/proc/$GW_PID/status")" >>"$OUT/rss.txt"
    sleep 10
  done
) &
SAMPLER=$!
PIDS+=("$SAMPLER")
cut -d' ' -f1-3 /proc/loadavg >"$OUT/load-before.txt"
wrk_mix "${SOAK_MINUTES}m" "$CONNS" "$DELAY" "$OUT/soak.txt"
cut -d' ' -f1-3 /proc/loadavg >"$OUT/load-after.txt"
kill "$SAMPLER" 2>/dev/null || true
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$OUT/metrics.txt"

python3 - "$OUT" "$COMMIT" "$PEAK" "$DELAY" "$CONNS" "$SOAK_MINUTES" <<'PY'
import re, sys
out, commit, peak, delay, conns, minutes = sys.argv[1:]
soak = open(f"{out}/soak.txt").read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", soak).group(1))
m = re.search(r"soak: sent (\d+), 200 (\d+), 403 (\d+), other (\d+), socket errors (-?\d+)", soak)
sent, ok, denied, other, sock = map(int, m.groups())
errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", soak)
sockets = sum(int(x) for x in errs.groups()) if errs else 0
p99 = re.search(r"^\s+99%\s+(\S+)", soak, re.M).group(1)
rss = [(int(t), int(k)) for t, k in (l.split() for l in open(f"{out}/rss.txt") if len(l.split()) == 2)]
t0 = rss[0][0]
# The baseline is the first sample once the connections and the upstream pool are up: 2
# minutes in, or a quarter of a shorter run (the first sample is taken before wrk starts).
settle = min(120, (rss[-1][0] - t0) // 4)
base_t, base_k = next((t, k) for t, k in rss if t - t0 >= settle)
first, last, top = base_k / 1024, rss[-1][1] / 1024, max(k for _, k in rss) / 1024
flat = last <= first * 1.10 + 2
# Denials are one in ten of the requests each connection sent (± what was in flight).
deny_ok = abs(denied - (ok + denied) / 10) <= int(conns) + (ok + denied) * 0.01
passed = other == 0 and sockets == 0 and flat and deny_ok
lines = [
    f"Soak of rayward `{commit}` (release): {minutes} min, {conns} connections paced "
    f"{delay} ms, mix 7 reads : 2 writes : 1 denial; peak of the mix {peak} req/s, "
    f"soak rate {rps:.0f} req/s ({rps / float(peak):.0%} of peak), p99 {p99}; load "
    f"{open(f'{out}/load-before.txt').read().strip()} before, "
    f"{open(f'{out}/load-after.txt').read().strip()} after.",
    "",
    f"- answers: {ok} × 200, {denied} × 403 (denials), {other} other; socket errors {sockets}",
    f"- RSS (VmRSS every 10 s, {len(rss)} samples): {first:.1f} MiB at {base_t - t0} s, "
    f"{last:.1f} MiB at the end, peak {top:.1f} MiB — {'flat' if flat else 'GROWING'}",
    f"- result: {'**passed**' if passed else '**failed**'}",
]
text = "\n".join(lines) + "\n"
open(f"{out}/soak.md", "w").write(text)
print(text)
sys.exit(0 if passed else 1)
PY
