#!/usr/bin/env bash
# Prints the path of a Python venv holding Ray 2.60 from PyPI (CONTEXT §6), creating it on
# first use under .cache/ (ignored by git), so the second run is fast. Tests that talk to a
# real Ray read this path from RAYWARD_RAY_VENV.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${RAYWARD_RAY_VENV:-$root/.cache/ray-2.60}
if [ ! -x "$venv/bin/ray" ] || ! "$venv/bin/python" -c 'import ray, sys; sys.exit(ray.__version__ != "2.60.0")' 2>/dev/null; then
  echo "ray-venv: installing ray[default]==2.60.0 into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'ray[default]==2.60.0' >&2
fi
echo "$venv"
