#!/usr/bin/env bash
# make bench-cldice: lossd's cldice (POST /v1/loss, value + gradient) on a 4x2x256x256 batch
# beside NumPy computing the same formula in-process (bench/cldice/bench.py,
# bench/cldice/numpy_cldice.py), against the release build on a free port. Prints a markdown
# table (times, NumPy / lossd, and how far the two answers differ), also written to
# bench/results/cldice-<UTC time>/table.md. About a minute after the build.
#
# Environment:
#   BENCH_LOSSD          a lossd binary to use instead of building (bench/lib.sh)
#   BENCH_BUILD=0        use the existing release build
#   BENCH_VENV           Python venv for NumPy (default .venv-bench, git-ignored)
#   BENCH_REPEATS        lossd POSTs (default 7)
#   BENCH_NUMPY_REPEATS  NumPy runs (default 3)
#   BENCH_OUT            output folder (default bench/results/cldice-<UTC time>, git-ignored)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

venv=${BENCH_VENV:-.venv-bench}
out=${BENCH_OUT:-bench/results/cldice-$(date -u +%Y%m%dT%H%M%SZ)}

# Pinned versions (as bench/scaling/run.sh pins them).
pins=(
  "numpy==2.4.6"
  "urllib3==2.8.0"
)
modules=(numpy urllib3)

# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_init
bench_locate_lossd
bench_setup_venv

bench_start_lossd_json "NumPy in $venv"

"$venv/bin/python" bench/cldice/bench.py --url "http://127.0.0.1:$lossd_port" --log "$out/lossd.stderr.log" \
  --repeats "${BENCH_REPEATS:-7}" --numpy-repeats "${BENCH_NUMPY_REPEATS:-3}" >"$out/table.md"

bench_finish_servers
log "table in $out/table.md"
cat "$out/table.md"
