#!/usr/bin/env python3
"""One training step through the Python client, beside the same step in NumPy.

  bench/client/bench.py --url http://127.0.0.1:PORT [--repeats 25]

A step is cross-entropy with its gradient over 256x1000 float32 logits. Printed, as
medians of REPEATS runs in one process:
  - NumPy in-process (log-softmax, mean, gradient, float32 in, float64 math);
  - lossd through the client (float32 logits as a .npy part, the answer as multipart with
    float32 or float64 .npy parts);
  - the plain-JSON answer with `requests` defaults (Accept-Encoding gzip) and with
    Accept-Encoding identity, the body sent as nested JSON lists, as a user without the
    client would;
and the gradient's largest difference from NumPy's. Within each group (the NumPy and
client steps; the two JSON rows) the rows run in blocks of five consecutive runs, in turn,
so that other load on the machine slows the rows compared alike.
"""
import argparse
import json
import statistics
import time

import numpy as np
import requests

import lossd


def numpy_step(logits, labels):
    z = logits.astype(np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = z.shape[0]
    value = -log_probs[np.arange(n), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1
    return value, grad / n


def median_ms(functions, repeats, block=5):
    """Median milliseconds of each function over `repeats` runs, taken in blocks of
    `block` consecutive runs a function, the functions' blocks in turn: each runs warm
    (its own arrays and caches), and a noisy neighbour slows every row alike."""
    for fn in functions:
        fn()  # warm-up: connection, caches
    times = [[] for _ in functions]
    while len(times[0]) < repeats:
        for fn, row in zip(functions, times):
            for _ in range(min(block, repeats - len(row))):
                start = time.perf_counter()
                fn()
                row.append((time.perf_counter() - start) * 1000)
    return [statistics.median(row) for row in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(256, 1000)).astype(np.float32)
    labels = rng.integers(0, 1000, 256)
    reference_value, reference_grad = numpy_step(logits, labels)

    client64 = lossd.Client(args.url)
    client32 = lossd.Client(args.url, output_dtype="float32")
    step64 = lambda: client64.loss("cross_entropy", logits=logits, labels=labels, return_grad=True)  # noqa: E731
    step32 = lambda: client32.loss("cross_entropy", logits=logits, labels=labels, return_grad=True)  # noqa: E731
    diff64 = float(np.max(np.abs(step64().grad["logits"] - reference_grad)))
    diff32 = float(np.max(np.abs(step32().grad["logits"] - reference_grad)))

    plain_body = json.dumps({"loss": "cross_entropy", "logits": logits.tolist(), "labels": labels.tolist(),
                             "return_grad": True})
    session = requests.Session()

    def plain(encoding):
        def run():
            response = session.post(args.url + "/v1/loss", data=plain_body,
                                    headers={"Content-Type": "application/json", "Accept-Encoding": encoding})
            answer = response.json()
            np.asarray(answer["grad"]["logits"])
            return response
        return run

    gzip_response = plain("gzip")()
    names = ["NumPy in-process", "lossd via the client, float64 answers", "lossd via the client, float32 answers",
             "plain JSON, Accept-Encoding: identity", "plain JSON, Accept-Encoding: gzip (requests' default)"]
    # Two groups, each interleaved: the steps to compare with NumPy, then the JSON pair
    # (whose 5.7 MB answers would evict NumPy's working set from the caches).
    medians = (median_ms([lambda: numpy_step(logits, labels), step64, step32], args.repeats)
               + median_ms([plain("identity"), plain("gzip")], args.repeats))
    rows = list(zip(names, medians))
    numpy_ms = medians[0]
    print(f"256x1000 cross-entropy + gradient, median of {args.repeats}; the JSON answer is "
          f"{len(gzip_response.content) / 1e6:.1f} MB, Content-Encoding: {gzip_response.headers.get('Content-Encoding', 'identity')}")
    print("| step | ms | / NumPy |")
    print("|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {ms / numpy_ms:.2f}x |")
    print(f"gradient vs NumPy: max |diff| {diff64:.1e} (float64 answers), {diff32:.1e} (float32 answers)")
    print(f"value vs NumPy: {abs(step64().value - reference_value):.1e}")


if __name__ == "__main__":
    main()
