#!/usr/bin/env bash
# make bench-fairness: a light client's /v1/loss latency while heavy clients
# saturate the workers, with and without the reserved light lane
# (bench/fairness/fairness.py). BENCH_LOSSD=path skips the release build;
# BENCH_SECONDS (default 20) per row.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source bench/lib.sh
out=bench/results/fairness-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
bench_locate_lossd
python3 bench/fairness/fairness.py --lossd "$lossd_bin" --seconds "${BENCH_SECONDS:-20}" | tee "$out/table.md"
