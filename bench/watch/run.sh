#!/usr/bin/env bash
# rayward watch against a real kube-apiserver holding N insecure RayClusters and a Service
# each (issue 13's benchmark; bench/live/populate.py stores them). Measured in one run:
#   - time until /readyz (every kind listed, watched and judged);
#   - the per-object re-audit (rayward_watch_reaudit_seconds: sum / count);
#   - a new privileged RayCluster in a new namespace -> its RW501 series in /metrics and
#     its Event in the API server (5 times, median and worst);
#   - resident and peak memory (VmRSS, VmHWM) while Events are written;
#   - beside it, the alternative without watch: `rayward audit --cluster -A` run again.
#
#   bench/watch/run.sh [N]     (default 10000; needs ../shared/tools/kube-apiserver)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-10000}
RAYWARD=${RAYWARD:-$ROOT/target/release/rayward}
[ -x "$RAYWARD" ] || (cd "$ROOT" && cargo build --release -p rayward --locked)
KA=$ROOT/../shared/tools/kube-apiserver
DIR=$(mktemp -d)
export KUBE_PORT=${KUBE_PORT:-27443} ETCD_PORT=${ETCD_PORT:-27379}
WPID=
cleanup() {
  [ -n "$WPID" ] && kill "$WPID" 2>/dev/null || true
  "$KA" down "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$KA" up "$DIR" >/dev/null
TOKEN=$(cut -d, -f1 "$DIR/tokens.csv")
sed 's/^\(\s*\)certificate-authority: .*/\1insecure-skip-tls-verify: true/' "$DIR/kubeconfig" > "$DIR/kc"
secs=$(python3 "$ROOT/bench/live/populate.py" "https://127.0.0.1:$KUBE_PORT" "$TOKEN" "$N" bench)
echo "stored $N RayClusters and $N Services in ${secs} s" >&2

t0=$(date +%s.%N)
"$RAYWARD" audit --no-config --cluster -A --kubeconfig "$DIR/kc" --format json --fail-on none > "$DIR/full.json"
t1=$(date +%s.%N)
full=$(echo "$t1 - $t0" | bc)

PORT=${WATCH_PORT:-29464}
"$RAYWARD" watch --no-config -A --kubeconfig "$DIR/kc" --listen "127.0.0.1:$PORT" \
  --settle-ms 300 --identity bench 2> "$DIR/watch.log" &
WPID=$!
python3 "$ROOT/bench/watch/measure.py" "https://127.0.0.1:$KUBE_PORT" "$TOKEN" \
  "http://127.0.0.1:$PORT" "$WPID" "$N" "$full"
