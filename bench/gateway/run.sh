#!/usr/bin/env bash
# Gateway benchmark (issues 4, 14): direct upstream vs nginx proxy_pass without
# authentication vs nginx auth_basic + proxy_pass vs rayward gateway, side by side in one run, with wrk, against the same fast upstream (nginx serving
# a small JSON file at /api/version), with one htpasswd file at bcrypt cost 10 and again
# with apr1. See docs/benchmarks.md.
#
#   bench/gateway/run.sh
#
# Environment: DURATION (15, seconds of each throughput run), LAT_DURATION (10, seconds of
# each one-connection latency run), LAT_RUNS (3: latency runs per contender; the median
# p99 counts), CONNS (16, connections of the throughput runs),
# SERVER_CPU (0) and LOAD_CPU (1): the cores servers and wrk are pinned to, OUT
# (bench/out/gateway), PORT_BASE (18080: upstream, +1 nginx proxy, +2 gateway), PRIO
# (empty; e.g. 'chrt -f 10': a scheduling policy for every server and wrk, so that other
# jobs on a shared machine do not decide the tail latencies; see docs/benchmarks.md),
# RAYWARD_BIN (unset: cargo build --release, then target/release/rayward), BEFORE_BIN
# (unset; another rayward binary, e.g. main's, measured in the same run as a fifth
# contender "before", on PORT_BASE+5 and +6), HASHES ("bcrypt apr1"; "apr1" alone halves
# the run).
# Needs: wrk, nginx, openssl (apt-get install -y wrk nginx), cargo, python3, taskset.
# Writes OUT/<hash>-<contender>-{tput,lat-N}.txt (raw wrk output), OUT/rss-<hash>.txt and
# OUT/results.md (also printed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/gateway
OUT=${OUT:-$ROOT/bench/out/gateway}
DURATION=${DURATION:-15}
LAT_DURATION=${LAT_DURATION:-10}
LAT_RUNS=${LAT_RUNS:-3}
CONNS=${CONNS:-16}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT_BASE=${PORT_BASE:-18080}
PRIO=${PRIO:-}
# shellcheck disable=SC2206 # PRIO is a command prefix, split on purpose
PRIO_CMD=($PRIO)
UP_PORT=$PORT_BASE
NGX_PORT=$((PORT_BASE + 1))
GW_PORT=$((PORT_BASE + 2))
ADMIN_PORT=$((PORT_BASE + 3))
PASS_PORT=$((PORT_BASE + 4))
BENCH_USER=bench
BENCH_PASS='Bench-pass-2026'
PATH_UNDER_TEST=/api/version

log() { printf '>> %s\n' "$*" >&2; }

for tool in wrk nginx openssl taskset python3 curl; do
  command -v "$tool" >/dev/null || {
    echo "$tool is needed (apt-get install -y wrk nginx openssl util-linux curl python3)" >&2
    exit 2
  }
done

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# shellcheck source=bench/gateway/lib.sh
. "$HERE/lib.sh"
tree_commit
rayward_bin
HASHES=${HASHES:-bcrypt apr1}

# --- every process this script starts is stopped on exit, whatever happens
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() { # port: until it answers HTTP
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "nothing answers on 127.0.0.1:$1" >&2
  exit 2
}

# --- the upstream: nginx serving a small JSON file, as Ray's /api/version answers
mkdir -p "$OUT/www/api"
printf '{"version":"4","ray_version":"2.60.0","ray_commit":"0123456789abcdef0123456789abcdef01234567","session_name":"session_2026-11-27_04-00-00_000000_1"}' \
  >"$OUT/www/api/version"

nginx_conf upstream "
  server {
    listen 127.0.0.1:$UP_PORT;
    location / { root $OUT/www; default_type application/json; }
  }"
log "upstream nginx on 127.0.0.1:$UP_PORT (core $SERVER_CPU)"
taskset -c "$SERVER_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} nginx -p "$OUT/upstream" -c "$OUT/upstream/nginx.conf" &
PIDS+=($!)
wait_port "$UP_PORT"

# --- the htpasswd files: bcrypt by `rayward gateway passwd`, apr1 by openssl
printf '%s\n' "$BENCH_PASS" | "$RAYWARD" gateway passwd "$OUT/htpasswd.bcrypt" "$BENCH_USER" 2>/dev/null
printf '%s:%s\n' "$BENCH_USER" "$(openssl passwd -apr1 "$BENCH_PASS")" >"$OUT/htpasswd.apr1"
grep -q "^$BENCH_USER:\$2y\$10\\$" "$OUT/htpasswd.bcrypt" || {
  echo "rayward gateway passwd did not write a bcrypt cost-10 hash: $(cat "$OUT/htpasswd.bcrypt")" >&2
  exit 2
}
grep -q "^$BENCH_USER:\$apr1\\$" "$OUT/htpasswd.apr1"
AUTH="Authorization: Basic $(printf '%s:%s' "$BENCH_USER" "$BENCH_PASS" | base64 -w0)"
printf 'bench-cluster-token\n' >"$OUT/ray-token"

# --- nginx proxy_pass with no authentication at all: the proxy the gateway replaces,
# doing the least a proxy can (issue 14's yardstick)
nginx_conf "pass" "
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
log "nginx proxy_pass (no auth) on 127.0.0.1:$PASS_PORT (core $SERVER_CPU)"
taskset -c "$SERVER_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} nginx -p "$OUT/pass" -c "$OUT/pass/nginx.conf" &
PIDS+=($!)
wait_port "$PASS_PORT"

start_nginx_proxy() { # htpasswd file
  nginx_conf "proxy" "
  upstream ray { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      auth_basic \"ray\";
      auth_basic_user_file $1;
      proxy_pass http://ray;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Authorization \"Bearer bench-cluster-token\";
    }
  }"
  taskset -c "$SERVER_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} nginx -p "$OUT/proxy" -c "$OUT/proxy/nginx.conf" &
  NGX_PID=$!
  PIDS+=("$NGX_PID")
  wait_port "$NGX_PORT"
}

start_gateway() { # htpasswd file, audit log[, binary, port, admin port, config name]
  local bin=${3:-$RAYWARD} port=${4:-$GW_PORT} admin=${5:-$ADMIN_PORT} conf=${6:-gateway}
  cat >"$OUT/$conf.toml" <<EOF
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"
upstream = "http://127.0.0.1:$UP_PORT"
ray_token = { file = "$OUT/ray-token" }

[auth]
htpasswd = "$1"

[users]
$BENCH_USER = "viewer"

[limits]
# The per-user rate limit stays on (its check runs on every request) but is set above
# any rate this machine reaches: the default 50 req/s per user would measure the limiter,
# not the proxy. A deployment serving automation at these rates would raise it too.
requests_per_second = 1000000000.0
burst = 1000000000.0

[audit]
path = "$2"
EOF
  taskset -c "$SERVER_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} "$bin" gateway --config "$OUT/$conf.toml" 2>"$OUT/$conf.err" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$admin/healthz" && return 0
    sleep 0.1
  done
  echo "the gateway did not start: $(cat "$OUT/$conf.err")" >&2
  exit 2
}

stop() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

check() { # name, url: 200 with the file's body with credentials, 401 without
  local body code
  body=$(curl -sf -H "$AUTH" "$2") || { echo "$1: $2 failed with credentials" >&2; exit 2; }
  [ "$body" = "$(cat "$OUT/www/api/version")" ] || { echo "$1: wrong body: $body" >&2; exit 2; }
  if [ "$1" != direct ] && [ "$1" != proxy_pass ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' "$2")
    [ "$code" = 401 ] || { echo "$1: $2 without credentials answered $code, not 401" >&2; exit 2; }
  fi
}

bench() { # hash, contender, url
  local name=$1-$2
  log "$name: warm-up 2 s"
  taskset -c "$LOAD_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} wrk -t1 -c"$CONNS" -d2s --timeout 10s -H "$AUTH" "$3" >/dev/null
  cut -d' ' -f1-3 /proc/loadavg >"$OUT/$name.load"
  log "$name: throughput, $CONNS connections, ${DURATION} s"
  taskset -c "$LOAD_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency \
    -H "$AUTH" "$3" >"$OUT/$name-tput.txt"
  local i
  for i in $(seq 1 "$LAT_RUNS"); do
    log "$name: latency, 1 connection, ${LAT_DURATION} s, run $i/$LAT_RUNS"
    taskset -c "$LOAD_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} wrk -t1 -c1 -d"${LAT_DURATION}s" --timeout 10s \
      --latency -H "$AUTH" "$3" >"$OUT/$name-lat-$i.txt"
  done
}

CONTENDERS="direct proxy_pass nginx"
[ -n "${BEFORE_BIN:-}" ] && CONTENDERS="$CONTENDERS before"
CONTENDERS="$CONTENDERS rayward"
for hash in $HASHES; do
  file=$OUT/htpasswd.$hash
  chmod 0644 "$file" # nginx's worker reads it too
  start_nginx_proxy "$file"
  if [ -n "${BEFORE_BIN:-}" ]; then
    start_gateway "$file" "$OUT/audit-before-$hash.jsonl" "$BEFORE_BIN" $((PORT_BASE + 5)) \
      $((PORT_BASE + 6)) gateway-before
    BEFORE_PID=$GW_PID
    check rayward "http://127.0.0.1:$((PORT_BASE + 5))$PATH_UNDER_TEST"
  fi
  start_gateway "$file" "$OUT/audit-$hash.jsonl"
  check direct "http://127.0.0.1:$UP_PORT$PATH_UNDER_TEST"
  check proxy_pass "http://127.0.0.1:$PASS_PORT$PATH_UNDER_TEST"
  check nginx "http://127.0.0.1:$NGX_PORT$PATH_UNDER_TEST"
  check rayward "http://127.0.0.1:$GW_PORT$PATH_UNDER_TEST"
  bench "$hash" direct "http://127.0.0.1:$UP_PORT$PATH_UNDER_TEST"
  bench "$hash" proxy_pass "http://127.0.0.1:$PASS_PORT$PATH_UNDER_TEST"
  bench "$hash" nginx "http://127.0.0.1:$NGX_PORT$PATH_UNDER_TEST"
  if [ -n "${BEFORE_BIN:-}" ]; then
    bench "$hash" before "http://127.0.0.1:$((PORT_BASE + 5))$PATH_UNDER_TEST"
    grep -E '^(VmHWM|VmRSS)' "/proc/$BEFORE_PID/status" >"$OUT/rss-before-$hash.txt"
    stop "$BEFORE_PID"
  fi
  bench "$hash" rayward "http://127.0.0.1:$GW_PORT$PATH_UNDER_TEST"
  grep -E '^(VmHWM|VmRSS)' "/proc/$GW_PID/status" >"$OUT/rss-$hash.txt"
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$OUT/metrics-$hash.txt"
  stop "$GW_PID"
  stop "$NGX_PID"
done

python3 "$HERE/report.py" --out-dir "$OUT" --commit "$COMMIT" --conns "$CONNS" \
  --duration "$DURATION" --lat-duration "$LAT_DURATION" --lat-runs "$LAT_RUNS" --server-cpu "$SERVER_CPU" \
  --load-cpu "$LOAD_CPU" --prio "${PRIO:-none}" --out "$OUT/results.md" \
  --contenders $CONTENDERS --hashes $HASHES
