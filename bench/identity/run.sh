#!/usr/bin/env bash
# Before/after identity check for refactors (issue 11): builds the release binary of a
# base revision (default: main's first parent, HEAD~1) in a throwaway worktree, then runs
# the same commands with it and with the current tree's binary, and compares stdout,
# stderr and exit code byte for byte. A refactor that changes no behaviour prints only
# SAME lines and exits 0.
#
#   bench/identity/run.sh            # HEAD~1 against the working tree
#   bench/identity/run.sh e00f81e    # any revision
#
# Commands: audit (json, sarif, text) and harden (stdout, --namespace, --diff, -o) over
# ../shared/corpus and examples/, rules --format markdown, standard input, and the
# hostile inputs of bench/hostile/gen.py.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE_REV=${1:-HEAD~1}
SHARED=$ROOT/../shared
WORK=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$WORK/base" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

git -C "$ROOT" worktree add --detach "$WORK/base" "$BASE_REV" >/dev/null
(cd "$WORK/base" && CARGO_TARGET_DIR=${BASE_TARGET:-$ROOT/target/identity-base} cargo build --release -p rayward --locked -q)
(cd "$ROOT" && cargo build --release -p rayward --locked -q)
BASE=${BASE_TARGET:-$ROOT/target/identity-base}/release/rayward
NEW=$ROOT/target/release/rayward
mkdir -p "$WORK/hostile" && python3 "$ROOT/bench/hostile/gen.py" "$WORK/hostile" >/dev/null

cd "$ROOT"
fail=0
compare() { # label, then the command after the binary; stdin from $STDIN if set
  local label=$1; shift
  local bc nc
  set +e
  "$BASE" "$@" <"${STDIN:-/dev/null}" >"$WORK/b.out" 2>"$WORK/b.err"; bc=$?
  "$NEW" "$@" <"${STDIN:-/dev/null}" >"$WORK/n.out" 2>"$WORK/n.err"; nc=$?
  set -e
  if [ "$bc" = "$nc" ] && cmp -s "$WORK/b.out" "$WORK/n.out" && cmp -s "$WORK/b.err" "$WORK/n.err"; then
    echo "SAME (exit $bc) $label"
  else
    echo "DIFF (exit $bc/$nc) $label"
    diff "$WORK/b.err" "$WORK/n.err" | head -5 || true
    diff "$WORK/b.out" "$WORK/n.out" | head -5 || true
    fail=1
  fi
}
compare "audit json corpus+examples" audit --format json "$SHARED/corpus" examples
compare "audit sarif examples" audit --format sarif examples
compare "audit junit examples" audit --format junit examples
compare "audit text examples" audit --color never examples
compare "audit hostile" audit --format json "$WORK/hostile"
compare "harden corpus --namespace" harden "$SHARED/corpus" --namespace t
compare "harden --diff corpus" harden --diff "$SHARED/corpus"
compare "harden examples --safe-only" harden --safe-only examples
compare "harden hostile merge keys" harden --diff "$WORK/hostile/merge-keys-40k.yaml"
compare "rules markdown" rules --format markdown
cat examples/insecure/*.yaml >"$WORK/stdin.yaml"
STDIN=$WORK/stdin.yaml compare "audit stdin" audit --format json -
STDIN=$WORK/stdin.yaml compare "harden stdin" harden -
"$BASE" harden "$SHARED/corpus" -o "$WORK/o-base" >/dev/null 2>&1 || true
"$NEW" harden "$SHARED/corpus" -o "$WORK/o-new" >/dev/null 2>&1 || true
if diff -r "$WORK/o-base" "$WORK/o-new" >/dev/null; then echo "SAME harden -o corpus"; else echo "DIFF harden -o corpus"; fail=1; fi
exit $fail
