#!/usr/bin/env bash
# Installs the Debian packages lossd needs to build and run.
# Used by the README quick start, the Makefile, .ci/run and the Dockerfile.
#
#   scripts/install-deps.sh            build + runtime libraries (-dev packages)
#   scripts/install-deps.sh --runtime  runtime libraries only (Docker runtime stage)
#   scripts/install-deps.sh --test     build libraries plus test tools (curl, wrk, promtool from prometheus, a PostgreSQL
#                                      server for the PostgreSQL-store tests)
#
# As root it installs what is missing with apt-get; otherwise it prints the
# exact apt-get command to run and fails if anything is missing.
set -euo pipefail

mode=${1:-build}
case "$mode" in
  build|--build)     pkgs=(libopenblas-dev libssl-dev zlib1g-dev libsqlite3-dev libpq-dev pkg-config) ;;
  --runtime)         pkgs=(libopenblas0-pthread libssl3 zlib1g libsqlite3-0 libpq5 ca-certificates curl) ;;
  --test)            pkgs=(libopenblas-dev libssl-dev zlib1g-dev libsqlite3-dev libpq-dev postgresql pkg-config curl wrk openssl python3 python3-venv prometheus) ;;
  *) echo "usage: $0 [--runtime|--test]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# python3 may come from outside Debian (pyenv, a venv): accept any python3 on PATH.
if [ "${#missing[@]}" -gt 0 ] && command -v python3 >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in python3|python3-venv) ;; *) filtered+=("$p") ;; esac
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
