#!/usr/bin/env bash
# make bench-fairness: a light client's /v1/loss latency while heavy clients
# saturate the workers, with and without the reserved light lane
# (bench/fairness/fairness.py). BENCH_LOSSD=path skips the release build;
# BENCH_SECONDS (default 20) per row.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ -n "${BENCH_LOSSD:-}" ]; then
  lossd_bin=$BENCH_LOSSD
else
  bash scripts/build-release.sh >&2
  lossd_bin=$(swift build -c release --show-bin-path)/lossd
fi
python3 bench/fairness/fairness.py --lossd "$lossd_bin" --seconds "${BENCH_SECONDS:-20}"
