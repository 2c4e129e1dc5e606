#!/usr/bin/env bash
# make bench-scaling: lossd's scaling-law fits (POST /v1/scaling/fit) beside SciPy doing the
# same fit in-process (bench/scaling/bench.py, bench/scaling/scipy_fit.py), in one run:
# a 1000-point chinchilla fit (432 starts) and a 100,000-step dense lr_annealing fit
# (24 starts), against the release build on a free port. Prints a markdown table (times,
# SciPy / lossd, both objectives, the largest parameter difference), also written to
# bench/results/scaling-<UTC time>/table.md. About five minutes, most of it SciPy's
# chinchilla fit (run once).
#
# Environment:
#   BENCH_LOSSD          a lossd binary to use instead of building (bench/lib.sh)
#   BENCH_BUILD=0        use the existing release build
#   BENCH_VENV           Python venv for NumPy/SciPy (default .venv-bench, git-ignored)
#   BENCH_REPEATS        lossd POSTs a fit (default 5; fewer past 25 s of them)
#   BENCH_SCIPY_REPEATS  SciPy fits a case (default 3; fewer past 50 s of them)
#   BENCH_OUT            output folder (default bench/results/scaling-<UTC time>, git-ignored)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

venv=${BENCH_VENV:-.venv-bench}
out=${BENCH_OUT:-bench/results/scaling-$(date -u +%Y%m%dT%H%M%SZ)}

# Pinned versions, verified together on Python 3.11 (NumPy as bench/loss/run.sh pins it).
pins=(
  "numpy==2.4.6"
  "scipy==1.17.1"
  "urllib3==2.8.0"
)
modules=(numpy scipy urllib3)

# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_init
bench_locate_lossd
bench_setup_venv

# lossd with its default threads (every core), its JSON log for the server-side times.
bench_start_lossd_json "SciPy in $venv"

"$venv/bin/python" bench/scaling/bench.py --url "http://127.0.0.1:$lossd_port" --log "$out/lossd.stderr.log" \
  --repeats "${BENCH_REPEATS:-5}" --scipy-repeats "${BENCH_SCIPY_REPEATS:-3}" >"$out/table.md"

bench_finish_servers
log "table in $out/table.md"
cat "$out/table.md"
