"""NumPy's Dawid-Skene on the same problem as lossd-bench's benchDawidSkene: 100,000 items x
10 annotations (1,000,000), 1,000 annotators, 10 classes, from the same SplitMix64 stream
(see Sources/lossd-bench/AggregationBench.swift). The EM of docs/aggregation.md §3
(crowd-kit DawidSkene: majority-vote init, 1e-10 floor, signed ELBO stop, n_iter 100,
tol 1e-5), vectorised with bincount. Prints best-of-2 seconds and the iteration count."""
import os
import sys
import time

threads = sys.argv[1] if len(sys.argv) > 1 else "1"
os.environ["OPENBLAS_NUM_THREADS"] = threads
os.environ["OMP_NUM_THREADS"] = threads
import numpy as np  # noqa: E402

ITEMS, PER_ITEM, WORKERS, K = 100_000, 10, 1000, 10
A = ITEMS * PER_ITEM
SEED = np.uint64(2024)
EPS = 1e-10


def uniform(idx):
    with np.errstate(over="ignore"):
        z = SEED + np.uint64(0x9E3779B97F4A7C15) * (idx.astype(np.uint64) + np.uint64(1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


a = np.arange(A)
truth = (K * uniform(3 * A + np.arange(ITEMS))).astype(np.int64)
acc = 0.5 + 0.4 * uniform(3 * A + ITEMS + np.arange(WORKERS))
t = a // PER_ITEM
w = (WORKERS * uniform(3 * a)).astype(np.int64)
right = uniform(3 * a + 1) < acc[w]
l = np.where(right, truth[t], (K * uniform(3 * a + 2)).astype(np.int64))


def dawid_skene(t, w, l, n_iter=100, tol=1e-5):
    wl = w * K + l
    present = np.zeros(WORKERS * K, dtype=bool)
    present[wl] = True
    present = present.reshape(WORKERS, K)

    def m_step(q):
        E = np.stack([np.bincount(wl, weights=q[t, c], minlength=WORKERS * K) for c in range(K)], axis=1)
        E = E.reshape(WORKERS, K, K)  # [worker][observed][true]
        E = np.where(present[:, :, None], np.maximum(E, EPS), 0.0)
        return E / E.sum(axis=1, keepdims=True)

    def e_step(pri, E):
        logE = np.log(np.where(E > 0, E, 1.0)).reshape(WORKERS * K, K)[wl]
        logp = np.stack([np.bincount(t, weights=logE[:, c], minlength=ITEMS) for c in range(K)], axis=1)
        logp += np.log(np.maximum(pri, EPS))
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True), logE

    q = np.zeros((ITEMS, K))
    np.add.at(q, (t, l), 1.0)
    q /= q.sum(axis=1, keepdims=True)
    pri = q.mean(axis=0)
    E = m_step(q)
    loss = -np.inf
    it = 0
    for it in range(1, n_iter + 1):
        q, _ = e_step(pri, E)
        pri = q.mean(axis=0)
        E = m_step(q)
        logE = np.log(np.where(E > 0, E, 1.0)).reshape(WORKERS * K, K)[wl]
        qc = np.maximum(q, EPS)
        joint = float(np.sum(q[t] * (logE + np.log(np.maximum(pri, EPS)))))
        new = (joint - float(np.sum(qc * np.log(qc)))) / A
        if new - loss < tol:
            break
        loss = new
    return q, it


best = float("inf")
for _ in range(2):
    start = time.perf_counter()
    q, iterations = dawid_skene(t, w, l)
    best = min(best, time.perf_counter() - start)
print(f"numpy dawid_skene ({threads} thread(s)): {best:.3f} s, {iterations} iterations")
