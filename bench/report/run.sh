#!/usr/bin/env bash
# HTML report benchmark (issue 16): 10,000 insecure RayClusters with a Service each
# (bench/report/gen.py; about 215,000 findings), then
#   - `rayward audit --format html -o`: wall time and peak RSS (GNU time, release build,
#     median of RUNS), and the page's size; `--format json` beside it for comparison;
#   - headless Chromium (bench/report/measure.py over chromedriver): time to the first
#     render of the page and to a filter change.
#
#   bench/report/run.sh            10,000 clusters
#   N=1000 bench/report/run.sh     smaller
#
# Environment: N (10000), RUNS (3), OUT (bench/out/report), CHROMEDRIVER
# (/usr/bin/chromedriver), RAYWARD (a release binary; built when unset).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${N:-10000}
RUNS=${RUNS:-3}
OUT=${OUT:-$ROOT/bench/out/report}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is needed at $TIME (apt-get install time)" >&2; exit 2; }
mkdir -p "$OUT"
if [ -z "${RAYWARD:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p rayward --locked)
  TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  RAYWARD=$TARGET_DIR/release/rayward
fi
python3 "$ROOT/bench/report/gen.py" "$N" "$OUT/clusters.yaml"

measure() { # format output
  local best=()
  for _ in $(seq "$RUNS"); do
    "$TIME" -f '%e %M' -o "$OUT/time" "$RAYWARD" audit --no-config --fail-on none \
      --format "$1" -o "$2" "$OUT/clusters.yaml"
    best+=("$(cat "$OUT/time")")
  done
  printf '%s\n' "${best[@]}" | sort -n | awk -v n="$RUNS" 'NR == int((n + 1) / 2) { print }'
}
read -r html_s html_kb < <(measure html "$OUT/report.html")
read -r json_s json_kb < <(measure json "$OUT/report.json")
findings=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["findings"])' "$OUT/report.json")
python3 "$ROOT/bench/report/measure.py" "$CHROMEDRIVER" "$OUT/report.html" "$RUNS" > "$OUT/browser.json"
python3 - "$OUT" "$N" "$findings" "$html_s" "$html_kb" "$json_s" "$json_kb" <<'PY'
import json, os, sys
out, n, findings, hs, hk, js, jk = sys.argv[1:]
b = json.load(open(os.path.join(out, "browser.json")))
mb = lambda p: os.path.getsize(os.path.join(out, p)) / 1e6
print(f"| clusters | findings | format | file MB | write s | peak RSS MB |")
print(f"|---:|---:|---|---:|---:|---:|")
print(f"| {int(n):,} | {int(findings):,} | html | {mb('report.html'):.1f} | {float(hs):.2f} | {int(hk) / 1024:.0f} |")
print(f"| {int(n):,} | {int(findings):,} | json | {mb('report.json'):.1f} | {float(js):.2f} | {int(jk) / 1024:.0f} |")
print()
print(f"Chromium ({len(b['loads'])} fresh loads, median): JSON parsed at {b['parsed_ms']:.0f} ms, "
      f"page ready at {b['ready_ms']:.0f} ms, first render (painted) at {b['first_render_ms']:.0f} ms, "
      f"first contentful paint {b['fcp_ms']:.0f} ms; filter change to the next frame: median "
      f"{b['filter_ms']:.0f} ms, worst {b['filter_max_ms']:.0f} ms ({len(b['changes'])} changes).")
PY
