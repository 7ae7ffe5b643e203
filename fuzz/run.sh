#!/usr/bin/env bash
# Fuzzes rayward's manifest loader and rules with cargo-fuzz (libFuzzer).
#
#   fuzz/run.sh [SECONDS] [TARGET]      SECONDS defaults to 60, TARGET to `load`
#                                       (the others: `load_structured`, and the gateway
#                                       relay's `relay_head` and `relay_chunked`)
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none (faster, catches panics and hangs only)
#   FUZZ_JOBS       run N fuzzing processes in parallel (libFuzzer -fork=N)
#
# Works on the stable toolchain: cargo-fuzz passes nightly-only `-Z` flags to rustc, which
# stable accepts under RUSTC_BOOTSTRAP=1. Seeds are read from corpus/<TARGET> (committed,
# never written to); what the fuzzer finds on top goes to corpus-local/<TARGET> (ignored
# by git). Crashes, hangs and out-of-memory inputs are copied to artifacts-regressions/,
# which `cargo test` replays (crates/rayward-rules/tests/fuzz_seeds.rs).
set -euo pipefail

secs=${1:-60}
target=${2:-load}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz…" >&2
    cargo install cargo-fuzz --locked
fi

sanitizer=${FUZZ_SANITIZER:-address}
local_corpus="$here/corpus-local/$target"
artifacts="$here/artifacts/$target"
mkdir -p "$local_corpus" "$artifacts" "$here/artifacts-regressions"
corpora=("$local_corpus")
# A target's own seeds when it has them (the relay's: request heads, chunked bodies).
# Otherwise the YAML seeds: they suit `load` directly; for `load_structured` they are
# just bytes that drive the generator, still a varied start.
if [[ $target == relay_* ]]; then
    corpora+=("$here/corpus/$target")
    dict="$here/$target.dict"
else
    corpora+=("$here/corpus/load")
    dict="$here/load.dict"
fi

args=(
    -max_total_time="$secs"
    -max_len=65536
    -timeout=5
    -rss_limit_mb=2048
    -dict="$dict"
    -print_final_stats=1
)
if [[ -n ${FUZZ_JOBS:-} ]]; then
    args+=(-fork="$FUZZ_JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi

# Artifacts already present from an earlier run are not reported again.
before=$(mktemp)
trap 'rm -f "$before"' EXIT
ls "$artifacts" >"$before"

status=0
cargo fuzz run --sanitizer "$sanitizer" "$target" "${corpora[@]}" -- "${args[@]}" || status=$?

found=0
for f in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/leak-*; do
    [[ -e $f ]] || continue
    grep -qxF "$(basename "$f")" "$before" && continue
    if [[ $target == load || $target == relay_* ]]; then
        dest="$here/artifacts-regressions/$target-$(basename "$f")"
        cp "$f" "$dest"
    else
        # A load_structured input only means something to its generator: save the YAML
        # it generates, which is what the loader and the rules choked on.
        dest="$here/artifacts-regressions/$target-$(basename "$f").yaml"
        RAYWARD_FUZZ_DUMP="$dest" cargo fuzz run --sanitizer "$sanitizer" "$target" "$f" \
            -- -timeout=5 -rss_limit_mb=2048 >/dev/null 2>&1 || true
        [[ -s $dest ]] || { echo "could not regenerate the YAML of $f" >&2; cp "$f" "${dest%.yaml}"; }
    fi
    echo "saved $dest  (input: fuzz/artifacts/$target/$(basename "$f");" \
        "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $target fuzz/artifacts/$target/$(basename "$f"))" >&2
    found=$((found + 1))
done

if ((found > 0)); then
    echo "$found new failing input(s) saved in fuzz/artifacts-regressions/" >&2
    exit 1
fi
exit "$status"
