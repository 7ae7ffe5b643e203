#!/usr/bin/env bash
# Per-request cost of the gateway against nginx proxy_pass (issue 14), in counts that do
# not depend on how loaded the machine is: instructions (user space, callgrind), system
# calls and context switches (perf tracepoints), heap allocations (uprobes on the
# allocators) and CPU time, each divided by a fixed number of requests (wrk with
# bench/gateway/count.lua: 16 connections, GET /api/version, apr1 Basic credentials,
# cached verification). req/s side by side is bench/gateway/run.sh's job.
#
#   bench/gateway/cost.sh                                   # the release build of this tree
#   BEFORE_BIN=/path/to/old/rayward bench/gateway/cost.sh   # and an older binary beside it
#
# Environment: RAYWARD_BIN (default: cargo build --release, then target/release/rayward),
# BEFORE_BIN (unset), BARE_BIN (unset: the `bare_proxy` example of rayward-gateway, hyper's
# server and the gateway's upstream pool with nothing between them, measured as contender
# "bare": the floor under the gateway's own work; `cargo build --release -p
# rayward-gateway --example bare_proxy`), REQUESTS (50000: requests of each counted run), CG_REQUESTS (20000:
# requests under callgrind), CONNS (16), SERVER_CPU (0), LOAD_CPU (1), PORT_BASE (18280),
# OUT (bench/out/gateway-cost), SKIP_CALLGRIND (unset).
# Needs: wrk, nginx, openssl, perf (tracepoints and uprobes: run as root), valgrind,
# taskset, curl, python3. Writes OUT/cost.md (also printed) and the raw perf and callgrind
# outputs beside it (OUT/<contender>-*.txt, OUT/<contender>-callgrind.txt: the functions by
# instructions).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/gateway
OUT=${OUT:-$ROOT/bench/out/gateway-cost}
REQUESTS=${REQUESTS:-50000}
CG_REQUESTS=${CG_REQUESTS:-20000}
CONNS=${CONNS:-16}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT_BASE=${PORT_BASE:-18280}
UP_PORT=$PORT_BASE
PASS_PORT=$((PORT_BASE + 1))
GW_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))
BENCH_USER=bench
BENCH_PASS='Bench-pass-2026'
URL_PATH=/api/version

log() { printf '>> %s\n' "$*" >&2; }
for tool in wrk nginx openssl perf valgrind callgrind_control callgrind_annotate taskset curl python3; do
  command -v "$tool" >/dev/null || {
    echo "$tool is needed (apt-get install -y wrk nginx openssl linux-perf valgrind util-linux curl python3)" >&2
    exit 2
  }
done
[ "$(id -u)" = 0 ] || { echo "cost.sh needs root (perf tracepoints and uprobes)" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# shellcheck source=bench/gateway/lib.sh
. "$HERE/lib.sh"
tree_commit
rayward_bin
RAYWARD_BIN=$RAYWARD

PIDS=()
PROBES=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for e in "${PROBES[@]}"; do perf probe -q -d "$e" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_url() { # url
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "nothing answers at $1" >&2
  exit 2
}

# --- upstream and nginx proxy_pass: single-process nginx (master_process off), so that
# one pid is the whole server
mkdir -p "$OUT/www/api"
printf '{"version":"4","ray_version":"2.60.0","ray_commit":"0123456789abcdef0123456789abcdef01234567","session_name":"session_2026-11-27_04-00-00_000000_1"}' \
  >"$OUT/www/api/version"
NGINX_MAIN="master_process off;"
nginx_conf upstream "
  server {
    listen 127.0.0.1:$UP_PORT;
    location / { root $OUT/www; default_type application/json; }
  }"
taskset -c "$SERVER_CPU" nginx -p "$OUT/upstream" -c "$OUT/upstream/nginx.conf" &
PIDS+=($!)
wait_url "http://127.0.0.1:$UP_PORT/"
nginx_conf pass "
  upstream ray { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$PASS_PORT;
    location / {
      proxy_pass http://ray;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Authorization \"Bearer bench-cluster-token\";
    }
  }"

printf '%s:%s\n' "$BENCH_USER" "$(openssl passwd -apr1 "$BENCH_PASS")" >"$OUT/htpasswd"
AUTH="Authorization: Basic $(printf '%s:%s' "$BENCH_USER" "$BENCH_PASS" | base64 -w0)"
printf 'bench-cluster-token\n' >"$OUT/ray-token"
cat >"$OUT/gateway.toml" <<EOF
listen = "127.0.0.1:$GW_PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
upstream = "http://127.0.0.1:$UP_PORT"
ray_token = { file = "$OUT/ray-token" }

[auth]
htpasswd = "$OUT/htpasswd"

[users]
$BENCH_USER = "viewer"

[limits]
# As in run.sh: the limiter runs on every request but never refuses.
requests_per_second = 1000000000.0
burst = 1000000000.0

[audit]
path = "$OUT/audit.jsonl"
EOF

# start NAME WRAPPER...: the contender's server (under WRAPPER, e.g. valgrind), pinned;
# sets SRV_PID and SRV_URL
start() {
  local name=$1
  shift
  case $name in
    proxy_pass)
      taskset -c "$SERVER_CPU" "$@" nginx -p "$OUT/pass" -c "$OUT/pass/nginx.conf" \
        2>"$OUT/$name.err" &
      SRV_PID=$!
      SRV_URL="http://127.0.0.1:$PASS_PORT$URL_PATH"
      ;;
    bare)
      taskset -c "$SERVER_CPU" "$@" "$BARE_BIN" "127.0.0.1:$GW_PORT" "127.0.0.1:$UP_PORT" \
        2>"$OUT/$name.err" &
      SRV_PID=$!
      SRV_URL="http://127.0.0.1:$GW_PORT$URL_PATH"
      ;;
    *)
      taskset -c "$SERVER_CPU" "$@" "${BINS[$name]}" gateway --config "$OUT/gateway.toml" \
        2>"$OUT/$name.err" &
      SRV_PID=$!
      SRV_URL="http://127.0.0.1:$GW_PORT$URL_PATH"
      ;;
  esac
  PIDS+=("$SRV_PID")
  wait_url "$SRV_URL"
  local body
  body=$(curl -sf -H "$AUTH" "$SRV_URL") || { echo "$name: $SRV_URL failed" >&2; exit 2; }
  [ "$body" = "$(cat "$OUT/www/api/version")" ] || { echo "$name: wrong body: $body" >&2; exit 2; }
}

stop_srv() {
  kill "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
}

# load N OUTFILE: N requests over CONNS connections, wrk pinned to LOAD_CPU
load() {
  REQUESTS=$1 taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d600s --timeout 10s -s "$HERE/count.lua" \
    -H "$AUTH" "$SRV_URL" >"$2"
  grep -q 'status_errors 0$' "$2" || { echo "errors in $2: $(cat "$2")" >&2; exit 2; }
}

# counted OUTFILE EVENTS WRKOUT: REQUESTS requests while perf counts EVENTS of the server
counted() {
  perf stat -x, -o "$1" -e "$2" -p "$SRV_PID" &
  local perf_pid=$!
  sleep 0.5 # perf attached
  load "$REQUESTS" "$3"
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
}

declare -A BINS
CONTENDERS=(proxy_pass)
[ -n "${BARE_BIN:-}" ] && CONTENDERS+=(bare)
BINS[rayward]=$RAYWARD_BIN
if [ -n "${BEFORE_BIN:-}" ]; then
  BINS[before]=$BEFORE_BIN
  CONTENDERS+=(before)
fi
CONTENDERS+=(rayward)

for c in "${CONTENDERS[@]}"; do
  # 1. syscalls, context switches, CPU time
  log "$c: system calls, context switches, CPU time over $REQUESTS requests"
  start "$c"
  load 20000 "$OUT/$c-wrk-warm.txt" # warm-up: the verification cache, the upstream pool
  counted "$OUT/$c-perf.txt" task-clock,context-switches,raw_syscalls:sys_enter "$OUT/$c-wrk.txt"
  counted "$OUT/$c-syscalls.txt" 'syscalls:sys_enter_*' "$OUT/$c-wrk-sys.txt"

  # 2. heap allocations: uprobes on mimalloc's entry points (the gateway's global
  # allocator) and on libc's (nginx's, and the gateway's C dependencies')
  log "$c: heap allocations over $REQUESTS requests"
  events=()
  libc=$(ldd "$(command -v nginx)" | awk '/libc.so/ {print $3}')
  for f in malloc calloc realloc; do
    perf probe -q -x "$libc" -a "rwcost:${c}_libc_$f=$f" && PROBES+=("rwcost:${c}_libc_$f")
    events+=("rwcost:${c}_libc_$f")
  done
  if [ "$c" != proxy_pass ]; then
    for f in mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
      perf probe -q -x "${BINS[$c]:-$BARE_BIN}" -a "rwcost:${c}_$f=$f" && PROBES+=("rwcost:${c}_$f")
      events+=("rwcost:${c}_$f")
    done
  fi
  counted "$OUT/$c-allocs.txt" "$(IFS=,; echo "${events[*]}")" "$OUT/$c-wrk-alloc.txt"
  for e in "${events[@]}"; do perf probe -q -d "$e" || true; done
  stop_srv

  # 3. instructions (user space): callgrind, counting only the measured requests
  if [ -z "${SKIP_CALLGRIND:-}" ]; then
    log "$c: instructions under callgrind over $CG_REQUESTS requests"
    start "$c" valgrind -q --tool=callgrind --instr-atstart=no \
      --callgrind-out-file="$OUT/$c-cg.out"
    load 2000 "$OUT/$c-wrk-cg-warm.txt"
    callgrind_control -i on "$SRV_PID" >/dev/null
    load "$CG_REQUESTS" "$OUT/$c-wrk-cg.txt"
    callgrind_control -d "$SRV_PID" >/dev/null
    stop_srv
    dump=$(ls "$OUT/$c-cg.out".* 2>/dev/null | sort | head -1)
    [ -n "$dump" ] || { echo "$c: no callgrind dump" >&2; exit 2; }
    callgrind_annotate --threshold=95 "$dump" >"$OUT/$c-callgrind.txt" 2>/dev/null || true
    cp "$dump" "$OUT/$c-cg.dump"
  fi
done

python3 "$HERE/cost_report.py" --out-dir "$OUT" --commit "$COMMIT" --conns "$CONNS" \
  --contenders "${CONTENDERS[@]}" >"$OUT/cost.md"
cat "$OUT/cost.md"
