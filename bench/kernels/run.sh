#!/usr/bin/env bash
# Kernel and JSON-reader figures: lossd-bench (release, AVX2 like the service) beside
# NumPy on the same problem, in one run, with the ratio. NumPy is NumPy's own single
# thread (its elementwise ops do not thread); OPENBLAS_* settings are left as they are.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/install-deps.sh >/dev/null
LOSSD_PRODUCT=lossd-bench bash scripts/build-release.sh >/dev/null 2>&1 || LOSSD_PRODUCT=lossd-bench bash scripts/build-release.sh
bin="$(swift build -c release --show-bin-path)/lossd-bench"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" | tee "$out"
numpy_line=$(python3 bench/kernels/numpy_ce.py 1)
echo "$numpy_line"
ours=$(grep 'two-pass float32, 1 thread' "$out" | sed -E 's/.*: ([0-9.]+) ms.*/\1/')
theirs=$(echo "$numpy_line" | sed -E 's/.*: ([0-9.]+) ms.*/\1/')
python3 -c "print(f'ratio (lossd 1 thread vs NumPy): {float($theirs) / float($ours):.2f}x faster (target >= 3x)')"
nce_line=$(python3 bench/kernels/numpy_info_nce.py 1)
echo "$nce_line"
ours_nce=$(grep 'lossd info_nce float64, 1 thread' "$out" | sed -E 's/.*, ([0-9.]+) GFLOP\/s.*/\1/')
theirs_nce=$(echo "$nce_line" | sed -E 's/.*, ([0-9.]+) GFLOP\/s.*/\1/')
python3 -c "print(f'info_nce GFLOP/s ratio (lossd 1 thread vs NumPy 1 thread): {float($ours_nce) / float($theirs_nce):.2f}x')"
cm_line=$(python3 bench/kernels/numpy_crossmax.py 1)
echo "$cm_line"
ours_cm=$(grep 'lossd crossmax float64, 1 thread' "$out" | sed -E 's/.*: ([0-9.]+) ms.*/\1/')
theirs_cm=$(echo "$cm_line" | sed -E 's/.*: ([0-9.]+) ms.*/\1/')
python3 -c "print(f'crossmax ratio (lossd 1 thread vs NumPy): {float($theirs_cm) / float($ours_cm):.2f}x faster')"
ds_line=$(python3 bench/kernels/numpy_dawid_skene.py 1)
echo "$ds_line"
ours_ds=$(grep 'lossd dawid_skene, 1 thread' "$out" | sed -E 's/.*: ([0-9.]+) s,.*/\1/')
theirs_ds=$(echo "$ds_line" | sed -E 's/.*: ([0-9.]+) s,.*/\1/')
python3 -c "print(f'dawid_skene ratio (lossd 1 thread vs NumPy): {float($theirs_ds) / float($ours_ds):.2f}x faster')"
temp_line=$(python3 bench/kernels/scipy_temperature.py 1)
echo "$temp_line"
ours_tfit=$(grep 'lossd temperature fit float64, 1 thread' "$out" | sed -E 's/.*: ([0-9.]+) ms.*/\1/')
theirs_tfit=$(echo "$temp_line" | sed -E 's/.* thread\(s\): ([0-9.]+) ms.*/\1/')
ours_tapp=$(grep 'lossd temperature apply float64, 1 thread' "$out" | sed -E 's/.*: ([0-9.]+) ms.*/\1/')
theirs_tapp=$(echo "$temp_line" | sed -E 's/.*apply [0-9x]+: ([0-9.]+) ms.*/\1/')
python3 -c "print(f'temperature ratio (lossd 1 thread vs NumPy/SciPy): fit {float($theirs_tfit) / float($ours_tfit):.2f}x faster, apply {float($theirs_tapp) / float($ours_tapp):.2f}x faster')"
