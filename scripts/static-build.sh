#!/usr/bin/env bash
# Builds `rayward` as a fully static executable — the same command the Dockerfile runs — and
# checks the result: no dynamic loader, no shared library, and `rayward certs ca` + `certs
# node` work from it with an empty environment (what the init container does).
#
#   scripts/static-build.sh            build + check; prints the binary's path last
#   scripts/static-build.sh --check F  check an existing binary F only
#
# Static glibc (`-C target-feature=+crt-static` on x86_64-unknown-linux-gnu) rather than
# musl: it needs no extra target or C toolchain (aws-lc-sys, mimalloc build with the system
# gcc and libc6-dev's libc.a). Name lookups, the one thing static glibc once handled badly,
# work without shared libraries since glibc 2.34 (files and dns are inside libc; docs/development.md,
# "Container image"). A release build from scratch takes minutes (see docs/development.md, "Container image"),
# so scripts/test.sh runs this only with RAYWARD_STATIC_CHECK=1.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu

check() {
  local bin=$1
  [ -x "$bin" ] || { echo "static-build: $bin: no such executable" >&2; exit 2; }
  local kind
  kind=$(file -b "$bin")
  case "$kind" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "static-build: $bin is not static: $kind" >&2; exit 1 ;;
  esac
  if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
    echo "static-build: $bin asks for a dynamic loader" >&2; exit 1
  fi
  if readelf -d "$bin" | grep -q '(NEEDED)'; then
    echo "static-build: $bin needs shared libraries: $(readelf -d "$bin" | grep '(NEEDED)')" >&2; exit 1
  fi
  local d
  d=$(mktemp -d)
  trap 'rm -rf "$d"' RETURN
  env -i "$bin" certs ca --out "$d/ca" >/dev/null
  env -i POD_IP=10.1.2.3 "$bin" certs node --ca "$d/ca" --out "$d/node" >/dev/null
  env -i "$bin" certs check "$d/node" --ip 10.1.2.3 >/dev/null
  echo "static-build: $bin: $kind; certs ca/node/check ok" >&2
}

if [ "${1:-}" = --check ]; then
  check "${2:?usage: static-build.sh --check BINARY}"
  exit 0
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/static}
start=$(date +%s)
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked -p rayward --target "$target"
bin=$CARGO_TARGET_DIR/$target/release/rayward
echo "static-build: built in $(( $(date +%s) - start )) s" >&2
check "$bin"
echo "$bin"
