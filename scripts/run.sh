#!/usr/bin/env bash
# Builds lossd (release) and starts it on its defaults: http://127.0.0.1:8080, store under ./data.
# Extra arguments are passed to lossd (see `scripts/run.sh --help`).
#
# Release builds target x86-64 with AVX2 (Haswell and later). For a binary that runs on
# any x86-64 CPU: LOSSD_GENERIC=1 scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build-release.sh >&2
exec .build/release/lossd "$@"
