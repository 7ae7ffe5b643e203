#!/usr/bin/env bash
# Webhook benchmark (issue 5): latency of /validate over HTTPS on loopback for a RayCluster
# with three worker groups, under constant-rate load (at least 500 reviews/s) and at
# maximum throughput, plus a criterion benchmark of where one review's time goes (review
# JSON, object loading, rules, response). See docs/benchmarks.md.
#
#   bench/webhook/run.sh
#
# Environment: RATES ("500 1000": constant rates, reviews/s), DURATION (15 s each),
# MAX_DURATION (10 s, the closed-loop maximum-throughput run), CONNS (8 keep-alive
# connections), SERVER_CPU (0), LOAD_CPU (1), PORT (18443), OUT (bench/out/webhook),
# SKIP_CRITERION (0), PRIO (empty; e.g. 'chrt -f 10': a scheduling policy for the webhook
# and the load generator, so that other jobs on a shared machine do not decide the tail).
# Writes OUT/load-<rate>.json, OUT/load-max.json (webhook_load's output), OUT/criterion.txt,
# OUT/rss.txt, OUT/webhook.err (the webhook's log) and OUT/results.md (also printed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/webhook
OUT=${OUT:-$ROOT/bench/out/webhook}
RATES=${RATES:-500 1000}
DURATION=${DURATION:-15}
MAX_DURATION=${MAX_DURATION:-10}
CONNS=${CONNS:-8}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-18443}
SKIP_CRITERION=${SKIP_CRITERION:-0}
PRIO=${PRIO:-}
# shellcheck disable=SC2206 # PRIO is a command prefix, split on purpose
PRIO_CMD=($PRIO)
REVIEW=$HERE/raycluster-3-groups.review.json
# the answer must be this review's, and a denial (the sample is insecure)
EXPECT='"uid":"0df28fbd-5f5f-11e8-bc74-36e6bb280816","allowed":false'

log() { printf '>> %s\n' "$*" >&2; }
for tool in taskset python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log "building rayward and the load generator (release)"
(cd "$ROOT" && cargo build --release -q -p rayward &&
  cargo build --release -q -p rayward-webhook --example webhook_load)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null ||
  COMMIT="$COMMIT+local changes"
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
RAYWARD=$TARGET_DIR/release/rayward
LOAD=$TARGET_DIR/release/examples/webhook_load

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

log "certificates (rayward certs): CA, and a serving certificate for 127.0.0.1"
"$RAYWARD" certs ca --out "$OUT/ca" >/dev/null 2>&1
"$RAYWARD" certs node --ca "$OUT/ca" --out "$OUT/tls" --ip 127.0.0.1 >/dev/null 2>&1

log "webhook on https://127.0.0.1:$PORT (core $SERVER_CPU), enforce mode"
taskset -c "$SERVER_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} "$RAYWARD" webhook serve --cert "$OUT/tls/tls.crt" \
  --key "$OUT/tls/tls.key" --listen "127.0.0.1:$PORT" --mode enforce 2>"$OUT/webhook.err" &
WH_PID=$!
PIDS+=("$WH_PID")
for _ in $(seq 1 100); do
  curl -sf --cacert "$OUT/ca/ca.crt" "https://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
answer=$(curl -sf --cacert "$OUT/ca/ca.crt" -H 'Content-Type: application/json' \
  --data-binary "@$REVIEW" "https://127.0.0.1:$PORT/validate") ||
  { echo "the webhook does not answer: $(tail -5 "$OUT/webhook.err")" >&2; exit 2; }
case $answer in
  *"$EXPECT"*) ;;
  *) echo "unexpected answer: $answer" >&2; exit 2 ;;
esac
printf '%s\n' "$answer" >"$OUT/answer.json"

run_load() { # name, rate, duration
  log "load $1: rate $2 (0 = as fast as it goes), $CONNS connections, $3 s after 2 s warm-up"
  cut -d' ' -f1-3 /proc/loadavg >"$OUT/load-$1.load"
  taskset -c "$LOAD_CPU" ${PRIO_CMD[@]+"${PRIO_CMD[@]}"} "$LOAD" --addr "127.0.0.1:$PORT" --ca "$OUT/ca/ca.crt" \
    --body "$REVIEW" --rate "$2" --duration "$3" --warmup 2 --conns "$CONNS" \
    --expect "$EXPECT" >"$OUT/load-$1.json"
}
for r in $RATES; do run_load "$r" "$r" "$DURATION"; done
run_load max 0 "$MAX_DURATION"
grep -E '^(VmHWM|VmRSS)' "/proc/$WH_PID/status" >"$OUT/rss.txt"
kill "$WH_PID"
wait "$WH_PID" 2>/dev/null || true

if [ "$SKIP_CRITERION" != 1 ]; then
  log "criterion: the stages of one review (core $SERVER_CPU)"
  (cd "$ROOT" && taskset -c "$SERVER_CPU" cargo bench -q -p rayward-webhook --bench validate -- \
    --warm-up-time 2 --measurement-time 5 --noplot) >"$OUT/criterion.txt" 2>&1
fi

python3 "$HERE/report.py" --out-dir "$OUT" --commit "$COMMIT" --rates "$RATES" \
  --conns "$CONNS" --duration "$DURATION" --max-duration "$MAX_DURATION" \
  --server-cpu "$SERVER_CPU" --load-cpu "$LOAD_CPU" --target-dir "$TARGET_DIR" \
  --prio "${PRIO:-none}" --out "$OUT/results.md"
