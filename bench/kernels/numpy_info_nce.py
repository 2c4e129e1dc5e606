"""NumPy's info_nce on the same problem as lossd-bench's benchInfoNCE: N = M = 4096, D = 256
float64, tau 0.07: normalise rows, S = q @ k.T / tau, row log-softmax, loss, G = softmax - I,
dQ = G @ k / tau and dK = G.T @ q / tau (through the normalisation). Prints best-of-3 ms and
GFLOP/s of the three matmuls (2*N*M*D + 2*2*N*M*D) for the given thread count."""
import os
import sys
import time

threads = sys.argv[1] if len(sys.argv) > 1 else "1"
os.environ["OPENBLAS_NUM_THREADS"] = threads
os.environ["OMP_NUM_THREADS"] = threads
os.environ["MKL_NUM_THREADS"] = threads
import numpy as np  # noqa: E402

N = M = 4096
D = 256
TAU = 0.07
rng = np.random.default_rng(7)
q = rng.uniform(-1, 1, size=(N, D))
k = rng.uniform(-1, 1, size=(M, D))


def info_nce(q, k):
    qn = np.linalg.norm(q, axis=1, keepdims=True)
    kn = np.linalg.norm(k, axis=1, keepdims=True)
    u, v = q / qn, k / kn
    s = u @ v.T / TAU
    m = s.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(s - m).sum(axis=1, keepdims=True))
    idx = np.arange(N)
    loss = float((lse[:, 0] - s[idx, idx]).mean())
    g = np.exp(s - lse)
    g[idx, idx] -= 1.0
    gu = g @ v / TAU
    gv = g.T @ u / TAU
    dq = (gu - u * (u * gu).sum(axis=1, keepdims=True)) / qn
    dk = (gv - v * (v * gv).sum(axis=1, keepdims=True)) / kn
    return loss, dq, dk


def best(f, repeats=3):
    t = float("inf")
    for _ in range(repeats):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t * 1000


ms = best(lambda: info_nce(q, k))
gflops = 3 * 2 * N * M * D / (ms * 1e6)
print(f"numpy {np.__version__} info_nce float64, {threads} thread(s): {ms:.3f} ms, {gflops:.3f} GFLOP/s")
