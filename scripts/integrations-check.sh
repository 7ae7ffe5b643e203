#!/usr/bin/env bash
# Checks the CI integrations against their published schemas and runs the pre-commit hook
# for real (issue 16): action.yml (SchemaStore's github-action schema, vendored by PyPI
# check-jsonschema), docs/ci/gitlab-ci.yml (SchemaStore's gitlab-ci schema),
# .pre-commit-hooks.yaml (`pre-commit validate-manifest`), then `pre-commit try-repo` of this
# repository on a temporary git repository: the insecure example must fail the hook, the
# secure one pass. Tools in a venv under .cache/ (installed once). Needs target/debug/rayward.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.cache/pytools
if [ ! -x "$venv/bin/pre-commit" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
  # scripts/test.sh may have made the venv for kubernetes-validate already: add to it.
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'pre-commit==4.7.0' 'check-jsonschema==0.39.0' >&2
fi
export PRE_COMMIT_HOME=$root/.cache/pre-commit
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-actions "$root/action.yml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.gitlab-ci "$root/docs/ci/gitlab-ci.yml"
"$venv/bin/pre-commit" validate-manifest "$root/.pre-commit-hooks.yaml"
echo "ok -- .pre-commit-hooks.yaml"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PATH=$root/target/debug:$PATH GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
# The hook repository as pre-commit fetches it: a git repository with the manifest (the
# `system` hook needs nothing else; this also works from a checkout that is not a git
# repository).
hooks=$work/hooks
mkdir -p "$hooks" && cp "$root/.pre-commit-hooks.yaml" "$hooks/"
(cd "$hooks" && git init -q . && git add . && git commit -qm hooks)
try() { # expected exit (0 or 1), then the manifests to commit
  local want=$1; shift
  rm -rf "$work/repo" && mkdir -p "$work/repo" && cd "$work/repo"
  git init -q . && cp "$@" . && git add . && git commit -qm fixture
  set +e
  "$venv/bin/pre-commit" try-repo "$hooks" rayward-audit --all-files > "$work/out" 2>&1
  local got=$?
  set -e
  if { [ "$want" = 0 ] && [ "$got" != 0 ]; } || { [ "$want" != 0 ] && [ "$got" = 0 ]; }; then
    echo "pre-commit try-repo on $*: exit $got, expected $want" >&2
    cat "$work/out" >&2
    exit 1
  fi
  if [ "$want" != 0 ] && ! grep -q "RW[0-9]" "$work/out"; then
    echo "the failing hook names no rule:" >&2; cat "$work/out" >&2; exit 1
  fi
  echo "ok -- pre-commit try-repo rayward-audit on $(basename "$1"): exit $got"
}
try 1 "$root/examples/insecure/raycluster.yaml"
try 0 "$root"/examples/secure/*.yaml
