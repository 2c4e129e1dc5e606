#!/usr/bin/env bash
# make bench-client: one 256x1000 training step (loss + gradient) through the Python
# client beside NumPy in-process, and the plain-JSON answer with and without gzip
# (bench/client/bench.py), against the release build on a free port.
# BENCH_LOSSD=path skips the build; BENCH_REPEATS (default 25).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source bench/lib.sh
out=bench/results/client-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
bench_locate_lossd
venv=.venv-client
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check ./clients/python requests >/dev/null
tmp=$(mktemp -d)
"$lossd_bin" --port 0 --data-dir "$tmp/data" --log-level warning >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$tmp/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$tmp/out" | head -1)
"$venv/bin/python" bench/client/bench.py --url "$url" --repeats "${BENCH_REPEATS:-25}" | tee "$out/table.md"
