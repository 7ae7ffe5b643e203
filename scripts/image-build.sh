#!/usr/bin/env bash
# Builds the rayward container image without Docker, and checks it (issue 15, "The image").
#
# The Dockerfile's image is FROM scratch with one file, /rayward, user 1000:1000 and the
# binary as entrypoint. No Docker engine runs here, so the same image is made with umoci
# (Debian's package: daemonless, no privileges, writes an OCI image layout):
#   1. scripts/static-build.sh makes the static binary (or take BINARY);
#   2. umoci: an empty image, a rootfs holding only /rayward (mode 0755, owned by root),
#      repacked as one layer; user, entrypoint, labels in the config;
#   3. skopeo inspect (Debian's package) reads it back as a registry client would: one
#      layer, user 1000:1000, entrypoint /rayward; the layer's tar lists only `rayward`
#      (no shell, no libc, nothing else);
#   4. the layer is unpacked into an empty folder and the binary run there under chroot
#      as uid/gid 1000, with an empty environment: --version, an audit of a manifest on
#      standard input, and `certs ca` + `certs node` into a folder of uid 1000 (what the
#      init container of a hardened Ray pod does).
#
#   scripts/image-build.sh [BINARY]    prints the OCI layout's path last
#
# Output: target/image/oci (an OCI image layout, tag `rayward:<version>`), which
# `skopeo copy oci:target/image/oci:rayward:0.1.0 docker://REGISTRY/rayward:0.1.0`
# pushes. Needs root for the chroot check (CI runs as root); scripts/test.sh runs it with
# RAYWARD_STATIC_CHECK=1, after the static build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
need=()
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
bin=${1:-}
if [ -z "$bin" ]; then
  bin=$(bash scripts/static-build.sh | tail -1)
else
  bash scripts/static-build.sh --check "$bin"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tag=$version
out=$root/target/image
rm -rf "$out"
mkdir -p "$out"
oci=$out/oci
fail() { echo "image-build: $*" >&2; exit 1; }

# 2. The image.
umoci init --layout "$oci"
umoci new --image "$oci:$tag"
umoci unpack --rootless --image "$oci:$tag" "$out/bundle" >/dev/null
# An empty rootfs but the binary (umoci's rootless unpack makes the folder only).
[ -z "$(ls -A "$out/bundle/rootfs")" ] || fail "the new image's rootfs is not empty"
install -m 0755 "$bin" "$out/bundle/rootfs/rayward"
umoci repack --image "$oci:$tag" "$out/bundle"
umoci config --image "$oci:$tag" \
  --config.user 1000:1000 \
  --config.entrypoint /rayward \
  --config.workingdir / \
  --os linux --architecture amd64 \
  --config.label "org.opencontainers.image.title=rayward" \
  --config.label "org.opencontainers.image.version=$version" \
  --config.label "org.opencontainers.image.source=https://github.com/rayward/rayward"
umoci gc --layout "$oci"

# 3. Read back as a client would.
skopeo inspect --raw "oci:$oci:$tag" > "$out/manifest.json"
skopeo inspect --config "oci:$oci:$tag" > "$out/config.json"
layers=$(jq '.layers | length' "$out/manifest.json")
[ "$layers" = 1 ] || fail "expected one layer, found $layers"
[ "$(jq -r '.config.User' "$out/config.json")" = "1000:1000" ] || fail "user is not 1000:1000"
[ "$(jq -c '.config.Entrypoint' "$out/config.json")" = '["/rayward"]' ] || fail "entrypoint is not /rayward"
[ "$(jq -r '.os + "/" + .architecture' "$out/config.json")" = linux/amd64 ] || fail "not linux/amd64"
digest=$(jq -r '.layers[0].digest' "$out/manifest.json")
blob=$oci/blobs/${digest%%:*}/${digest#*:}
# The root folder's own entry (`.`) aside, only the binary.
entries=$(tar -tzf "$blob" | sed 's#^\./##' | grep -vxE '\.?/?' | sort)
[ "$entries" = rayward ] || fail "the layer holds more than the binary: $(echo "$entries" | tr '\n' ' ')"
owner=$(tar -tvzf "$blob" | awk '$NF ~ /rayward$/ {print $2}')
[ "$owner" = "0/0" ] || fail "the binary is owned by $owner, not root (uid 1000 must not rewrite it)"

# 4. Run it from the unpacked layer, in an empty chroot, as uid 1000.
rootfs=$out/rootfs
mkdir -p "$rootfs"
tar -xzf "$blob" -C "$rootfs"
mkdir -m 0700 "$rootfs/work" && chown 1000:1000 "$rootfs/work"
chroot=$(command -v chroot)
run() { env -i "$chroot" --userspec=1000:1000 "$rootfs" /rayward "$@"; }
[ ! -e "$rootfs/bin/sh" ] || fail "a shell in the image"
run --version | grep -q "rayward $version" || fail "--version"
report=$(printf 'apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: c}\nspec:\n  headGroupSpec:\n    template:\n      spec:\n        containers: [{name: ray-head, image: "rayproject/ray:2.56.0", securityContext: {privileged: true}}]\n' |
  run audit --no-config --format json --fail-on none - )
echo "$report" | jq -e '[.findings[].rule_id] | index("RW501")' >/dev/null || fail "audit from stdin found no RW501"
run certs ca --out /work/ca >/dev/null
env -i POD_IP=10.1.2.3 "$chroot" --userspec=1000:1000 "$rootfs" /rayward certs node --ca /work/ca --out /work/node >/dev/null
run certs check /work/node --ip 10.1.2.3 >/dev/null
[ "$(stat -c %u "$rootfs/work/node/tls.key")" = 1000 ] || fail "the node key is not uid 1000's"
size=$(stat -c %s "$blob")
echo "image-build: $oci:$tag: 1 layer ($((size / 1024 / 1024)) MiB compressed, $digest), user 1000:1000, entrypoint /rayward; ran --version, audit -, certs ca/node/check as uid 1000 in an empty chroot" >&2
rm -rf "$out/bundle" "$rootfs"
echo "$oci"
