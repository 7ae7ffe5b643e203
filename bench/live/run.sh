#!/usr/bin/env bash
# Live audit against a real kube-apiserver (issue 13's benchmark): N insecure RayClusters
# and a Service each are stored, then, in the same run, side by side:
#   rayward audit --cluster -A                                    (this tool, kube-rs)
#   kubectl get rayclusters,services -A -o yaml | rayward audit -   (the pipe it replaces)
# Wall seconds and peak RSS (GNU time), findings counted from the JSON reports.
#
#   bench/live/run.sh [N]      (default 10000; needs ../shared/tools/kube-apiserver, kubectl)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-10000}
RAYWARD=${RAYWARD:-$ROOT/target/release/rayward}
[ -x "$RAYWARD" ] || (cd "$ROOT" && cargo build --release -p rayward --locked)
KA=$ROOT/../shared/tools/kube-apiserver
DIR=$(mktemp -d)
export KUBE_PORT=${KUBE_PORT:-26443} ETCD_PORT=${ETCD_PORT:-26379}
trap '"$KA" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
"$KA" up "$DIR" >/dev/null
TOKEN=$(cut -d, -f1 "$DIR/tokens.csv")
# The server's self-signed certificate carries CA:TRUE, which rustls refuses: skip
# verification on loopback (the token is the credential).
sed 's/^\(\s*\)certificate-authority: .*/\1insecure-skip-tls-verify: true/' "$DIR/kubeconfig" > "$DIR/kc"
secs=$(python3 "$ROOT/bench/live/populate.py" "https://127.0.0.1:$KUBE_PORT" "$TOKEN" "$N" bench)
echo "stored $N RayClusters and $N Services in ${secs} s" >&2

measure() { # label, then a shell command writing a JSON report to $DIR/out.json
  local label=$1 cmd=$2 t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$DIR/rss" bash -c "$cmd" || true
  t1=$(date +%s.%N)
  rss=$(tail -1 "$DIR/rss")
  local findings
  findings=$(python3 -c "import json; print(len(json.load(open('$DIR/out.json'))['findings']))")
  printf '| %s | %.2f | %d | %s |\n' "$label" "$(echo "$t1 - $t0" | bc)" $((rss / 1024)) "$findings"
}
echo "| command | seconds | peak MB | findings |"
echo "|---|---:|---:|---:|"
measure "rayward audit --cluster -A" \
  "'$RAYWARD' audit --no-config --cluster -A --kubeconfig '$DIR/kc' --format json --fail-on none > '$DIR/out.json'"
measure "kubectl get … -o yaml \| rayward audit - (whole pipe)" \
  "KUBECONFIG='$DIR/kc' kubectl get rayclusters,services -A -o yaml | '$RAYWARD' audit --no-config - --format json --fail-on none > '$DIR/out.json'"
