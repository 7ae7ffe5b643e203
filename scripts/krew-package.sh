#!/usr/bin/env bash
# Packages the static binary for krew, kubectl's plugin manager, and writes the plugin
# manifest plugins/rayward.yaml for it.
#
#   scripts/krew-package.sh [BINARY]
#
# The archive target/krew/kubectl-rayward_v<version>_linux_amd64.tar.gz holds the binary as
# `kubectl-rayward`; the manifest names its sha256 and the release URL it must
# be uploaded to (krew checks the digest when it installs). Without a BINARY, the static
# build is made first (scripts/static-build.sh). Local install without an index:
#   kubectl krew install --manifest=plugins/rayward.yaml --archive=target/krew/<archive>
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  bin=$(bash scripts/static-build.sh | tail -1)
else
  bash scripts/static-build.sh --check "$bin"
fi
version=v$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name=kubectl-rayward_${version}_linux_amd64.tar.gz
out=target/krew
rm -rf "$out" && mkdir -p "$out/stage"
install -m 0755 "$bin" "$out/stage/kubectl-rayward"
# Reproducible archive: fixed order, owner and time.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$out/stage" -czf "$out/$name" .
sha=$(sha256sum "$out/$name" | cut -d' ' -f1)
url=https://github.com/rayward/rayward/releases/download/$version/$name
cat > plugins/rayward.yaml <<YAML
# The krew plugin manifest (written by scripts/krew-package.sh; see docs/kubectl-plugin.md).
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: rayward
spec:
  version: $version
  homepage: https://github.com/rayward/rayward
  shortDescription: Audit and harden Ray on Kubernetes (KubeRay)
  description: |
    rayward checks RayCluster, RayJob and RayService objects, and everything around
    them, against the Ray security guide: TLS between nodes, private services,
    NetworkPolicies, RBAC, pod security, images, credentials. It audits manifests or the
    running cluster (kubectl rayward audit --cluster -A), rewrites Ray objects to their
    secure form (kubectl rayward harden), probes live Ray ports and keeps a live audit.
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: amd64
    uri: $url
    sha256: $sha
    bin: kubectl-rayward
    files:
    - from: kubectl-rayward
      to: .
YAML
echo "krew-package: $out/$name (sha256 $sha); plugins/rayward.yaml written for $url" >&2
