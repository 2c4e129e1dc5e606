#!/usr/bin/env python3
"""lossd's `cldice` (POST /v1/loss, value and gradient) beside NumPy computing the same formula.

  bench/cldice/bench.py --url http://127.0.0.1:PORT [--log LOSSD_JSON_LOG] [--repeats 7]
                        [--numpy-repeats 3] [--shape 4 2 256 256] [--iterations 3]

The batch: logits [N][C][H][W] (default 4x2x256x256) and a class map [N][H][W] of blobs
(box-blurred noise thresholded at a quantile per class, NumPy default_rng(--seed)); the logits
agree with the map (+2 on the true class) plus N(0, 1.2^2) noise. Parameters are cldice's
defaults (iterations 3, alpha 0.5, smooth 1, include_background false) unless given.

lossd: the body is serialised once — logits as float32 base64 (`{shape, dtype, base64}`),
labels as a float32 base64 class map — and POSTed with `return_grad: true` and
`output_encoding: base64` (the gradient comes back as float64 base64) through urllib3 (one
kept-alive connection, Accept-Encoding identity). Wall time: median of --repeats POSTs after
a warm-up; server time: the access log's `ms` of the same requests (--log, lossd's JSON log),
matched by X-Request-Id.
NumPy: bench/cldice/numpy_cldice.py (the same soft skeleton, vectorised over the maps, with
argmin/argmax routing and np.bincount scatters for the gradient) on the same float32-rounded
logits, in this process; median of --numpy-repeats runs. The two answers are compared
(largest absolute differences of the mean and of the gradient).
"""
import argparse
import base64
import json
import os
import statistics
import sys
import time

import numpy as np
import urllib3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import numpy_cldice  # noqa: E402
from lossd_log import server_ms  # noqa: E402


def blobs(rng, N, C, H, W):
    f = rng.normal(size=(N, H, W))
    for _ in range(3):  # 5-wide box blur, twice per axis, edges wrapped
        for ax in (1, 2):
            f = sum(np.roll(f, s, axis=ax) for s in range(-2, 3)) / 5
    lab = np.zeros((N, H, W), dtype=np.int64)
    for n in range(N):
        q = np.quantile(f[n], np.linspace(0.55, 1, C)[:-1])
        lab[n] = np.digitize(f[n], q)
    return lab



def b64(array, dtype):
    return {"shape": list(array.shape), "dtype": dtype,
            "base64": base64.b64encode(np.ascontiguousarray(array, dtype="<f4" if dtype == "float32" else "<f8").tobytes()).decode()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--log")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--numpy-repeats", type=int, default=3)
    ap.add_argument("--shape", type=int, nargs=4, default=[4, 2, 256, 256])
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    N, C, H, W = args.shape
    rng = np.random.default_rng(args.seed)
    labels = blobs(rng, N, C, H, W)
    onehot = (labels[:, None] == np.arange(C)[None, :, None, None])
    logits = (2.0 * onehot + 1.2 * rng.normal(size=(N, C, H, W))).astype(np.float32)

    body = json.dumps({
        "loss": "cldice", "params": {"iterations": args.iterations}, "return_grad": True,
        "output_encoding": "base64", "logits": b64(logits, "float32"), "labels": b64(labels, "float32"),
    }).encode()
    http = urllib3.PoolManager(maxsize=1)
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}

    def post():
        start = time.perf_counter()
        response = http.request("POST", args.url + "/v1/loss", body=body, headers=headers)
        elapsed = time.perf_counter() - start
        if response.status != 200:
            sys.exit(f"lossd answered {response.status}: {response.data[:500]!r}")
        return elapsed, response.headers.get("X-Request-Id"), json.loads(response.data)

    post()
    walls, ids, answer = [], [], None
    for _ in range(args.repeats):
        elapsed, rid, answer = post()
        walls.append(elapsed)
        ids.append(rid)
    time.sleep(0.2)
    server = server_ms(args.log, ids)
    server_med = statistics.median(server[i] for i in ids if i in server) if server else None
    grad_b64 = answer["grad"]["logits"]
    lossd_grad = np.frombuffer(base64.b64decode(grad_b64["base64"]), "<f8" if grad_b64["dtype"] == "float64" else "<f4")
    lossd_grad = lossd_grad.reshape(grad_b64["shape"])

    z = logits.astype(np.float64)
    times, values, grad = [], None, None
    for _ in range(args.numpy_repeats):
        start = time.perf_counter()
        values, grad = numpy_cldice.cldice(z, labels, iterations=args.iterations)
        times.append(time.perf_counter() - start)
    numpy_med = statistics.median(times)

    lossd_wall = statistics.median(walls)
    print(f"cldice value + gradient, logits {N}x{C}x{H}x{W} (float32 in, float64 math), iterations {args.iterations}, alpha 0.5")
    print()
    print("| implementation | time per call | NumPy / this |")
    print("|---|---|---|")
    print(f"| lossd, HTTP wall (median of {len(walls)}) | {lossd_wall * 1000:.1f} ms | {numpy_med / lossd_wall:.1f}x |")
    if server_med is not None:
        print(f"| lossd, server time (access log) | {server_med:.1f} ms | {numpy_med / (server_med / 1000):.1f}x |")
    print(f"| NumPy {np.__version__}, in-process (median of {len(times)}) | {numpy_med * 1000:.1f} ms | 1.0x |")
    print()
    print(f"mean: lossd {answer['value']:.12f}, NumPy {values.mean():.12f}, |diff| {abs(answer['value'] - values.mean()):.2e}; "
          f"max |grad diff| {np.max(np.abs(lossd_grad - grad)):.2e} (max |grad| {np.max(np.abs(grad)):.2e})")


if __name__ == "__main__":
    main()
