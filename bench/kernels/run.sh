#!/usr/bin/env bash
# Kernel and JSON-reader figures: lossd-bench (release, AVX2 like the service) beside
# NumPy/SciPy on the same problems, in one run, with the ratios. NumPy is NumPy's own
# single thread (its elementwise ops do not thread); OPENBLAS_* settings are left as they are.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/install-deps.sh >/dev/null
LOSSD_PRODUCT=lossd-bench bash scripts/build-release.sh >/dev/null 2>&1 || LOSSD_PRODUCT=lossd-bench bash scripts/build-release.sh
bin="$(swift build -c release --show-bin-path)/lossd-bench"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" | tee "$out"

# The number a sed expression extracts from a line.
number() { echo "$1" | sed -E "s/$2/\\1/"; }

# ratio LABEL OURS THEIRS [higher]: "LABEL: N.NNx faster" (times), or "N.NNx" of a rate when
# the fourth argument is "higher" (larger is better).
ratio() {
  python3 -c "import sys; o, t = float(sys.argv[2]), float(sys.argv[3]);
print(f'{sys.argv[1]}: {o / t:.2f}x' if sys.argv[4] == 'higher' else f'{sys.argv[1]}: {t / o:.2f}x faster')" \
    "$1" "$2" "$3" "${4:-lower}"
}

ms='.*: ([0-9.]+) ms.*'
ours_line() { grep "$1" "$out"; }

line=$(python3 bench/kernels/numpy_ce.py 1); echo "$line"
ratio "cross-entropy, lossd 1 thread vs NumPy (target >= 3x)" \
  "$(number "$(ours_line 'two-pass float32, 1 thread')" "$ms")" "$(number "$line" "$ms")"

line=$(python3 bench/kernels/numpy_info_nce.py 1); echo "$line"
gflops='.*, ([0-9.]+) GFLOP\/s.*'
ratio "info_nce GFLOP/s, lossd 1 thread vs NumPy 1 thread" \
  "$(number "$(ours_line 'lossd info_nce float64, 1 thread')" "$gflops")" "$(number "$line" "$gflops")" higher

line=$(python3 bench/kernels/numpy_crossmax.py 1); echo "$line"
ratio "crossmax, lossd 1 thread vs NumPy" \
  "$(number "$(ours_line 'lossd crossmax float64, 1 thread')" "$ms")" "$(number "$line" "$ms")"

line=$(python3 bench/kernels/numpy_dawid_skene.py 1); echo "$line"
seconds='.*: ([0-9.]+) s,.*'
ratio "dawid_skene, lossd 1 thread vs NumPy" \
  "$(number "$(ours_line 'lossd dawid_skene, 1 thread')" "$seconds")" "$(number "$line" "$seconds")"

line=$(python3 bench/kernels/scipy_temperature.py 1); echo "$line"
ratio "temperature fit, lossd 1 thread vs NumPy/SciPy" \
  "$(number "$(ours_line 'lossd temperature fit float64, 1 thread')" "$ms")" "$(number "$line" '.* thread\(s\): ([0-9.]+) ms.*')"
ratio "temperature apply, lossd 1 thread vs NumPy" \
  "$(number "$(ours_line 'lossd temperature apply float64, 1 thread')" "$ms")" "$(number "$line" '.*apply [0-9x]+: ([0-9.]+) ms.*')"
