#!/usr/bin/env python3
"""A light client's latency while heavy clients saturate lossd's workers (stdlib only).

  fairness.py --lossd PATH [--seconds 20] [--heavy 2]

For each configuration it starts lossd on a free port (release build, default
--threads = cores) and measures a light client's POST /v1/loss (64x10
cross-entropy, one keep-alive connection, back to back) for SECONDS:
  - alone;
  - while HEAVY clients loop calibrator fits (matrix scaling, 4000x40 logits,
    a few hundred milliseconds each) on their own connections, which keeps
    every general worker busy;
  - the same with --light-threads 0 (no reserved light lane), to show what the
    lane buys.
Prints one table row per configuration: light requests, p50, p99, max, and the
heavy fits completed. lossd is stopped after each row.
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import threading
import time


def start(lossd, extra):
    process = subprocess.Popen(
        [lossd, "--port", "0", "--data-dir", f"/tmp/lossd-fairness-{os.getpid()}", "--log-level", "warning", *extra],
        stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    return process, int(line.strip().rsplit(":", 1)[1])


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def run(lossd, extra, heavy, seconds):
    process, port = start(lossd, extra)
    rng = random.Random(1)
    light_body = json.dumps({"loss": "cross_entropy",
                             "logits": [[round(rng.gauss(0, 1), 4) for _ in range(10)] for _ in range(64)],
                             "labels": [rng.randrange(10) for _ in range(64)]}).encode()
    rows, classes = 4000, 40
    fit_logits = [[round(rng.gauss(0, 3), 3) for _ in range(classes)] for _ in range(rows)]
    fit_labels = [max(range(classes), key=lambda c: r[c]) if rng.random() < 0.6 else rng.randrange(classes)
                  for r in fit_logits]
    heavy_body = json.dumps({"method": "matrix", "logits": fit_logits, "labels": fit_labels}).encode()
    headers = {"Content-Type": "application/json"}
    stop = threading.Event()
    fits = [0]

    def heavy_client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not stop.is_set():
            conn.request("POST", "/v1/calibrators/fit", body=heavy_body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                fits[0] += 1

    heavies = [threading.Thread(target=heavy_client) for _ in range(heavy)]
    for t in heavies:
        t.start()
    time.sleep(1.0 if heavy else 0)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, statuses = [], {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        conn.request("POST", "/v1/loss", body=light_body, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    stop.set()
    for t in heavies:
        t.join()
    process.terminate()
    process.wait(timeout=15)
    return {"requests": len(latencies), "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "max": max(latencies), "fits": fits[0], "statuses": statuses}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lossd", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--heavy", type=int, default=max(2, os.cpu_count() or 2))
    args = parser.parse_args()
    rows = [
        ("light client alone", [], 0),
        (f"beside {args.heavy} heavy clients (matrix fits)", [], args.heavy),
        (f"beside {args.heavy} heavy clients, --light-threads 0", ["--light-threads", "0"], args.heavy),
    ]
    print(f"| configuration | light requests | p50 ms | p99 ms | max ms | heavy fits | statuses |")
    print("|---|---|---|---|---|---|---|")
    for name, extra, heavy in rows:
        r = run(args.lossd, extra, heavy, args.seconds)
        print(f"| {name} | {r['requests']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.1f} | {r['fits']} | {r['statuses']} |",
              flush=True)


if __name__ == "__main__":
    main()
