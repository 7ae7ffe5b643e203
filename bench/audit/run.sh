#!/usr/bin/env bash
# Audit benchmark: rayward vs Checkov, side by side in one run, on a generated corpus of
# RayClusters with injected problems of known kinds and places (docs/benchmarks.md).
#
#   bench/audit/run.sh                 10,000 clusters, rayward 3 runs, Checkov once
#   COUNT=1000 bench/audit/run.sh      smaller corpus
#   SKIP_CHECKOV=1 bench/audit/run.sh  rayward only (reuses no Checkov numbers)
#
# Environment: COUNT (10000), SEED (1), RUNS (3, rayward runs; the median wall time is
# reported), CHECKOV_SPEC ('checkov>=3.3.30'), CHECKOV_FRAMEWORKS ("kubernetes secrets":
# one timed Checkov run per framework; `kubernetes` is the manifest scanner, `secrets` the
# only one that finds literal cloud keys), SKIP_CHECKOV (0), OUT (bench/out).
# Writes OUT/corpus/ (the corpus + truth.jsonl), OUT/rayward.json, OUT/checkov-*.json,
# OUT/*.time (GNU time -v), OUT/*.load, OUT/checkov-*.mem.json (process-tree memory),
# OUT/scores.json and OUT/results.md (also printed).
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
OUT=$(cd "$OUT" && pwd)

# (a) rayward, release build
log "building rayward (release)"
(cd "$ROOT" && cargo build --release -q -p rayward)
# the commit the binary was built from (the working tree may change during the run), and
# "+local changes" when its inputs (crates/, Cargo.*) differ from that commit
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null ||
  COMMIT="$COMMIT+local changes"
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
  cut -d' ' -f1-3 /proc/loadavg >"$OUT/$name.load"  # the machine may be shared: keep its load
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
  # --no-config: every rule with its defaults, whatever config file lies above OUT
  (cd "$OUT" && run_timed "rayward-$i" "$OUT/rayward.json" "$RAYWARD" audit corpus \
    --format json --no-config)
  RAYWARD_TIMES+=("$OUT/rayward-$i.time")
done

CHECKOV_JSON=()
CHECKOV_REPORT=()
if [ "$SKIP_CHECKOV" != 1 ]; then
  for fw in $CHECKOV_FRAMEWORKS; do
    log "checkov --framework $fw (once)"
    # --skip-download: no calls to Prisma Cloud (the machine may be offline; they only add
    # guideline links). Run from OUT so file paths are relative. Checkov forks workers, so
    # treemem.py also samples the whole process tree's memory (time -v sees one process).
    cmd=(checkov -d corpus --framework "$fw" -o json --quiet --compact --skip-download)
    (cd "$OUT" && run_timed "checkov-$fw" "$OUT/checkov-$fw.json" "$PY" "$HERE/treemem.py" \
      --out "$OUT/checkov-$fw.mem.json" -- "$VENV/bin/${cmd[0]}" "${cmd[@]:1}")
    CHECKOV_JSON+=("$OUT/checkov-$fw.json")
    CHECKOV_REPORT+=(--checkov-run "$fw" "$OUT/checkov-$fw.time"
      "$OUT/checkov-$fw.mem.json" "${cmd[*]}")
  done
  CHECKOV_REPORT+=(--checkov-bin "$VENV/bin/checkov")
fi

# (e) score, (f) report
log "scoring"
SCORE_ARGS=(--corpus "$OUT/corpus" --rayward "$OUT/rayward.json" --json "$OUT/scores.json")
[ ${#CHECKOV_JSON[@]} -eq 0 ] || SCORE_ARGS+=(--checkov "${CHECKOV_JSON[@]}")
"$PY" "$HERE/score.py" "${SCORE_ARGS[@]}" >&2
"$PY" "$HERE/report.py" --scores "$OUT/scores.json" --rayward-bin "$RAYWARD" \
  --rayward-commit "$COMMIT" \
  --rayward-cmd "rayward audit corpus --format json --no-config" \
  --rayward-time "${RAYWARD_TIMES[@]}" "${CHECKOV_REPORT[@]}" --out "$OUT/results.md"
