#!/usr/bin/env bash
# Hostile-input budgets (issue 10 §3): each input of at most 1 MB must be answered in under
# 1 s and 100 MB by `rayward audit` and `rayward harden --diff` (release binary). kubectl,
# whose reading rayward follows, reads the same files in the same run
# (`kubectl patch --local -o json`, client-side decoding only), as the reference.
#
#   bench/hostile/run.sh             builds target/release/rayward if missing
#   RAYWARD=path bench/hostile/run.sh
#
# Prints a markdown table: wall seconds and peak RSS (GNU time -v) per tool and input.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RAYWARD=${RAYWARD:-$ROOT/target/release/rayward}
KUBECTL=${KUBECTL:-kubectl}
TIME=/usr/bin/time
[ -x "$TIME" ] || { apt-get update -qq >/dev/null && apt-get install -y -qq time >/dev/null; }
[ -x "$RAYWARD" ] || (cd "$ROOT" && cargo build --release -p rayward --locked)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
python3 "$ROOT/bench/hostile/gen.py" "$OUT"

measure() { # label file cmd...
  local label=$1 file=$2; shift 2
  local t0 t1 rss code
  t0=$(date +%s.%N)
  set +e
  "$TIME" -f '%M' -o "$OUT/rss" "$@" "$file" >/dev/null 2>"$OUT/err"
  code=$?
  set -e
  t1=$(date +%s.%N)
  rss=$(tail -1 "$OUT/rss")
  printf '| %s | %s | %.2f | %d | %s |\n' "$(basename "$file" .yaml)" "$label" "$(echo "$t1 - $t0" | bc)" $((rss / 1024)) "$code"
}

echo "| input | tool | seconds | peak MB | exit |"
echo "|---|---|---:|---:|---:|"
for f in "$OUT"/*.yaml; do
  measure "rayward audit" "$f" "$RAYWARD" audit
  measure "rayward harden --diff" "$f" "$RAYWARD" harden --diff
  measure "kubectl (read only)" "$f" "$KUBECTL" patch --local --type merge -p '{}' -o json -f
done
