#!/usr/bin/env bash
# Builds lossd (release) and starts it on its defaults: http://127.0.0.1:8080, store under ./data.
# Extra arguments are passed to lossd (see `scripts/run.sh --help`).
#
# The release binary runs on any CPU of its architecture; the row kernels' instruction set
# is chosen at start-up (/v1/version reports it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build-release.sh >&2
exec .build/release/lossd "$@"
