"""NumPy's cross-entropy on the same problem as lossd-bench: 4096x1000 float32 logits,
hard labels, mean of max/exp/sum/log. Prints best-of-20 milliseconds per thread setting."""
import os
import sys
import time

threads = sys.argv[1] if len(sys.argv) > 1 else "1"
os.environ["OPENBLAS_NUM_THREADS"] = threads
os.environ["OMP_NUM_THREADS"] = threads
import numpy as np  # noqa: E402

rows, cols = 4096, 1000
rng = np.random.default_rng(42)
x = rng.uniform(-4, 4, size=(rows, cols)).astype(np.float32)
y = rng.integers(0, cols, size=rows)


def ce(x, y):
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return float((lse - x[np.arange(rows), y]).mean())


def best(f, repeats=20):
    t = float("inf")
    for _ in range(repeats):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t * 1000


ms = best(lambda: ce(x, y))
print(f"numpy {np.__version__} max/exp/sum/log float32, {threads} thread(s): {ms:.3f} ms, {x.nbytes / 1e6 / ms:.3f} GB/s")
