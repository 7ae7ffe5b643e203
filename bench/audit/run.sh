#!/usr/bin/env bash
# Audit benchmark: rayward vs Checkov, side by side in one run, on a generated corpus of
# RayClusters with injected problems of known kinds and places (docs/benchmarks.md).
#
#   bench/audit/run.sh                 10,000 clusters, rayward 3 runs, Checkov once
#   COUNT=1000 bench/audit/run.sh      smaller corpus
#   SKIP_CHECKOV=1 bench/audit/run.sh  rayward only (reuses no Checkov numbers)
#
# Environment: COUNT (10000), SEED (1), RUNS (3, rayward runs; the median wall time is
# reported), CHECKOV_SPEC ('checkov>=3.3.30'), CHECKOV_FRAMEWORKS ("kubernetes secrets"),
# SKIP_CHECKOV (0), OUT (bench/out).
# Writes OUT/corpus/ (the corpus + truth.jsonl), OUT/rayward.json, OUT/checkov.json,
# OUT/*.time (GNU time -v), OUT/scores.json and OUT/results.md (also printed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$ROOT/bench
HERE=$BENCH/audit
OUT=${OUT:-$BENCH/out}
COUNT=${COUNT:-10000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
CHECKOV_SPEC=${CHECKOV_SPEC:-checkov>=3.3.30}
CHECKOV_FRAMEWORKS=${CHECKOV_FRAMEWORKS:-kubernetes secrets}
SKIP_CHECKOV=${SKIP_CHECKOV:-0}
VENV=$BENCH/.venv
TIME=/usr/bin/time
PY=${PYTHON:-python3}

log() { printf '>> %s\n' "$*" >&2; }

[ -x "$TIME" ] || { echo "GNU time is needed at $TIME (apt-get install time)" >&2; exit 2; }
mkdir -p "$OUT"

# (a) rayward, release build
log "building rayward (release)"
(cd "$ROOT" && cargo build --release -q -p rayward)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
RAYWARD=$TARGET_DIR/release/rayward
"$RAYWARD" audit --help >/dev/null 2>&1 || { echo "$RAYWARD has no 'audit' command" >&2; exit 2; }

# (b) Checkov in its own venv, installed once
if [ "$SKIP_CHECKOV" != 1 ]; then
  if ! "$VENV/bin/checkov" --version >/dev/null 2>&1; then
    log "installing $CHECKOV_SPEC into $VENV (once; a few minutes)"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$CHECKOV_SPEC"
  fi
  log "checkov $("$VENV/bin/checkov" --version)"
fi

# (c) the corpus
log "generating $COUNT RayClusters (seed $SEED)"
"$PY" "$HERE/gen.py" --count "$COUNT" --seed "$SEED" --out "$OUT/corpus"
# read every file once so neither tool pays for a cold page cache
cat "$OUT"/corpus/*.yaml >/dev/null

# (d) timed runs; exit 1 means findings for both tools, anything else is a failure
run_timed() { # name, output file, command...
  local name=$1 out=$2
  shift 2
  set +e
  "$TIME" -v -o "$OUT/$name.time" "$@" >"$out" 2>"$OUT/$name.err"
  local rc=$?
  set -e
  if [ $rc -gt 1 ]; then
    echo "$name exited $rc; see $OUT/$name.err" >&2
    tail -20 "$OUT/$name.err" >&2
    exit 2
  fi
}

RAYWARD_TIMES=()
for i in $(seq 1 "$RUNS"); do
  log "rayward run $i/$RUNS"
  run_timed "rayward-$i" "$OUT/rayward.json" "$RAYWARD" audit "$OUT/corpus" --format json
  RAYWARD_TIMES+=("$OUT/rayward-$i.time")
done

CHECKOV_ARGS=()
if [ "$SKIP_CHECKOV" != 1 ]; then
  log "checkov (once; ${CHECKOV_FRAMEWORKS})"
  # --skip-download: no calls to Prisma Cloud (the machine may be offline; they only add
  # guideline links). Run from OUT so file paths are relative.
  # shellcheck disable=SC2086
  (cd "$OUT" && run_timed checkov "$OUT/checkov.json" "$VENV/bin/checkov" -d corpus \
    --framework $CHECKOV_FRAMEWORKS -o json --quiet --compact --skip-download)
  CHECKOV_ARGS=(--checkov "$OUT/checkov.json" --checkov-time "$OUT/checkov.time"
    --checkov-bin "$VENV/bin/checkov" --checkov-cmd "checkov -d corpus --framework $CHECKOV_FRAMEWORKS -o json --quiet --compact --skip-download")
fi

# (e) score, (f) report
log "scoring"
"$PY" "$HERE/score.py" --corpus "$OUT/corpus" --rayward "$OUT/rayward.json" \
  ${CHECKOV_ARGS[0]:+--checkov "$OUT/checkov.json"} --json "$OUT/scores.json" >&2
"$PY" "$HERE/report.py" --scores "$OUT/scores.json" --rayward-bin "$RAYWARD" \
  --rayward-cmd "rayward audit corpus --format json" \
  --rayward-time "${RAYWARD_TIMES[@]}" "${CHECKOV_ARGS[@]}" --out "$OUT/results.md"
