"""NumPy/SciPy temperature scaling on the same problem as lossd-bench's benchCalibration:
fit T on 100,000 x 1000 float64 logits (uniform(-4, 4) x 3, label = argmax 70% of the
time) and apply it to 4096 x 1000. The fit is the safeguarded Newton on beta = 1/T
(docs/calibration.md §3.1) with scipy.special.log_softmax;
`brent` uses scipy.optimize.minimize_scalar on log T instead. Prints one line."""
import math
import os
import sys
import time

threads = sys.argv[1] if len(sys.argv) > 1 else "1"
mode = sys.argv[2] if len(sys.argv) > 2 else "newton"
os.environ["OPENBLAS_NUM_THREADS"] = threads
os.environ["OMP_NUM_THREADS"] = threads
import numpy as np  # noqa: E402
from scipy import optimize, special  # noqa: E402

rows, cols, apply_rows = 100_000, 1000, 4096
rng = np.random.default_rng(23)
z = rng.uniform(-4, 4, size=(rows, cols)) * 3
best = z.argmax(axis=1)
y = np.where(rng.random(rows) < 0.7, best, rng.integers(0, cols, size=rows))
zy = z[np.arange(rows), y]


def fgh(beta):
    lp = special.log_softmax(beta * z, axis=1)
    p = np.exp(lp)
    f = float(np.mean(-lp[np.arange(rows), y]))
    ez = np.einsum("ij,ij->i", p, z)
    g = float(np.mean(ez - zy))
    h = float(np.mean(np.einsum("ij,ij->i", p, z * z) - ez * ez))
    return f, g, max(h, 0.0)


def fit_newton():
    lo, hi = math.exp(-10), math.exp(10)
    if fgh(lo)[1] >= 0:
        return 1 / lo, 0
    if fgh(hi)[1] <= 0:
        return 1 / hi, 0
    beta = 1.0
    for it in range(1, 101):
        _, g, h = fgh(beta)
        if g > 0:
            hi = beta
        else:
            lo = beta
        if g == 0:
            break
        cand = beta - g / h if h > 0 else float("nan")
        if not (lo < cand < hi):
            cand = math.sqrt(lo * hi)
        if abs(cand - beta) <= 1e-12 * beta:
            beta = cand
            break
        beta = cand
    return 1 / beta, it


def fit_brent():
    def f(log_t):
        lp = special.log_softmax(z / math.exp(log_t), axis=1)
        return float(np.mean(-lp[np.arange(rows), y]))
    res = optimize.minimize_scalar(f, bounds=(-10, 10), method="bounded", options={"xatol": 1e-10})
    return math.exp(res.x), res.nfev


start = time.perf_counter()
t, steps = fit_newton() if mode == "newton" else fit_brent()
fit_ms = (time.perf_counter() - start) * 1000
za = z[:apply_rows]
apply_ms = float("inf")
for _ in range(10):
    s = time.perf_counter()
    special.softmax(za / t, axis=1)
    apply_ms = min(apply_ms, (time.perf_counter() - s) * 1000)
print(f"numpy/scipy temperature ({mode}) fit {rows}x{cols} float64, {threads} thread(s): {fit_ms:.3f} ms "
      f"(T = {t:.3f}, {steps} steps); apply {apply_rows}x{cols}: {apply_ms:.3f} ms")
