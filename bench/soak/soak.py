#!/usr/bin/env python3
"""Side loads of bench/soak/run.sh (standard library only).

  soak.py idle  --port P --seconds S [--connections 300]
      Holds CONNECTIONS connections to 127.0.0.1:P open for S seconds. Each
      one, in a loop: sends GET /healthz slowly, in 4 pieces 2 s apart (6 s
      in all, under lossd's 10 s header timeout), reads the answer, then sits
      idle on the keep-alive connection for 15-25 s (under the 60 s
      keep-alive timeout) and starts over. No connection should ever be
      closed by lossd or see anything but 200.
  soak.py probe --port P --seconds S [--interval 0.5]
      GET /healthz on a fresh connection every INTERVAL seconds (2 s
      timeout); a failure is an error, a timeout or a status other than 200.
  soak.py real  --port P --seconds S [--workers 3]
      What training and evaluation jobs send: WORKERS threads, each looping
      over 256x1000 POST /v1/loss bodies (2.7 MB of JSON) with and without
      the gradient, the same gzip-encoded and as multipart with an .npy part,
      a temperature and a matrix calibrator fit with its apply, and a
      Dawid-Skene aggregation; mostly on one keep-alive connection, every
      tenth request on a new one. Anything but 200/201 is an error.
  soak.py rss   --pid PID --seconds S [--samples FILE] [--warmup 60]
      Samples VmRSS of PID from /proc every second; reports it at the start,
      after WARMUP seconds, at its peak and at the end.

Each prints one JSON object on stdout when it ends; everything stops by itself
after S seconds (plus at most a few seconds to finish what is in flight).
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import ssl
import sys
import time

HOST = "127.0.0.1"


def tls_context():
    """A client TLS context trusting SOAK_CAFILE when the soak runs over TLS, else None."""
    cafile = os.environ.get("SOAK_CAFILE", "")
    return ssl.create_default_context(cafile=cafile) if cafile else None


def auth_header():
    key = os.environ.get("SOAK_API_KEY", "")
    return f"Authorization: Bearer {key}\r\n" if key else ""


# --- idle / slow connections -------------------------------------------------

async def read_response(reader):
    """Reads one HTTP/1.1 response; returns its status (raises on EOF)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("closed by server")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("closed inside headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def idle_connection(index, port, deadline, stats, piece_gap, idle_range):
    request = (f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{port}\r\n" + auth_header() + "\r\n").encode()
    # 4 pieces: "G", the rest of the request line, the headers, the blank line.
    first_line_end = request.index(b"\r\n") + 2
    pieces = [request[:1], request[1:first_line_end], request[first_line_end:-2], request[-2:]]
    # Spread the connects over the first 3 s.
    await asyncio.sleep(3.0 * index / max(stats["target"], 1))
    writer = None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                context = tls_context()
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, port, ssl=context, server_hostname=HOST if context else None), 5)
                stats["opened"] += 1
                stats["open"] += 1
                stats["max_open"] = max(stats["max_open"], stats["open"])
            for i, piece in enumerate(pieces):
                if i:
                    await asyncio.sleep(piece_gap)
                writer.write(piece)
                await writer.drain()
            status = await asyncio.wait_for(read_response(reader), 10)
            if status == 200:
                stats["ok"] += 1
            else:
                stats["non_200"] += 1
                stats["statuses"][str(status)] = stats["statuses"].get(str(status), 0) + 1
            # Idle on the keep-alive connection, never past the deadline.
            idle = random.uniform(*idle_range)
            await asyncio.sleep(max(0.0, min(idle, deadline - time.monotonic())))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
            stats["errors"] += 1
            kind = type(e).__name__
            stats["error_kinds"][kind] = stats["error_kinds"].get(kind, 0) + 1
            if writer is not None:
                writer.close()
                stats["open"] -= 1
                writer = None
            await asyncio.sleep(0.5)
    if writer is not None:
        writer.close()
        stats["open"] -= 1
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def idle_main(args):
    stats = {"target": args.connections, "opened": 0, "open": 0, "max_open": 0, "ok": 0,
             "non_200": 0, "statuses": {}, "errors": 0, "error_kinds": {}}
    deadline = time.monotonic() + args.seconds
    tasks = [asyncio.create_task(idle_connection(i, args.port, deadline, stats, args.piece_gap,
                                                 (args.idle_min, args.idle_max)))
             for i in range(args.connections)]
    # Each connection is at most one slow request (about 3 x piece_gap plus a
    # 10 s read timeout) past the deadline; cancel whatever is still running.
    done, pending = await asyncio.wait(tasks, timeout=args.seconds + 3 * args.piece_gap + 15)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            stats["errors"] += 1
            kind = type(task.exception()).__name__
            stats["error_kinds"][kind] = stats["error_kinds"].get(kind, 0) + 1
    stats["unfinished"] = len(pending)
    del stats["open"]
    print(json.dumps(stats), flush=True)


# --- probe ------------------------------------------------------------------

def probe_main(args):
    headers = {}
    key = os.environ.get("SOAK_API_KEY", "")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    latencies = []
    failures = 0
    failure_kinds = {}
    start = time.monotonic()
    deadline = start + args.seconds
    n = 0
    while True:
        next_at = start + n * args.interval
        now = time.monotonic()
        if next_at >= deadline:
            break
        if next_at > now:
            time.sleep(next_at - now)
        n += 1
        t0 = time.monotonic()
        try:
            context = tls_context()
            if context:
                conn = http.client.HTTPSConnection(HOST, args.port, timeout=args.timeout, context=context)
            else:
                conn = http.client.HTTPConnection(HOST, args.port, timeout=args.timeout)
            conn.request("GET", "/healthz", headers=headers)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            ok = resp.status == 200
            kind = f"status {resp.status}"
        except (OSError, http.client.HTTPException) as e:
            ok = False
            kind = type(e).__name__
        latency_ms = (time.monotonic() - t0) * 1000
        latencies.append(latency_ms)
        if not ok:
            failures += 1
            failure_kinds[kind] = failure_kinds.get(kind, 0) + 1
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3) if latencies else None

    print(json.dumps({"probes": len(latencies), "failures": failures, "failure_kinds": failure_kinds,
                      "max_ms": round(latencies[-1], 3) if latencies else None,
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99)}), flush=True)


# --- realistic bodies -------------------------------------------------------

def realistic_bodies():
    """(name, path, headers, body) of the requests real users send, built once."""
    import gzip
    import struct
    rng = random.Random(7)
    rows, classes = 256, 1000
    logits = [[round(rng.gauss(0, 2), 6) for _ in range(classes)] for _ in range(rows)]
    labels = [rng.randrange(classes) for _ in range(rows)]
    plain = json.dumps({"loss": "cross_entropy", "logits": logits, "labels": labels}).encode()
    with_grad = json.dumps({"loss": "cross_entropy", "logits": logits, "labels": labels, "return_grad": True}).encode()
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, classes)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    npy += struct.pack("<%df" % (rows * classes), *[v for row in logits for v in row])
    boundary = "soak-boundary-1f2e"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"request\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode()
    form += json.dumps({"loss": "cross_entropy", "labels": labels, "return_grad": True}).encode()
    form += (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"logits\"; filename=\"l.npy\"\r\n"
             f"Content-Type: application/octet-stream\r\n\r\n").encode() + npy + f"\r\n--{boundary}--\r\n".encode()
    fit_rows, fit_classes = 2000, 10
    fit_logits = [[round(rng.gauss(0, 3), 4) for _ in range(fit_classes)] for _ in range(fit_rows)]
    fit_labels = [max(range(fit_classes), key=lambda c: row[c]) if rng.random() < 0.7 else rng.randrange(fit_classes)
                  for row in fit_logits]
    annotations = [[f"item-{i}", f"w{w}", (i + (w if rng.random() < 0.3 else 0)) % 5] for i in range(2000) for w in range(5)]
    json_headers = {"Content-Type": "application/json"}
    return [
        ("loss", "/v1/loss", json_headers, plain),
        ("loss+grad", "/v1/loss", json_headers, with_grad),
        ("loss+grad gzip", "/v1/loss", {**json_headers, "Content-Encoding": "gzip", "Accept-Encoding": "gzip"},
         gzip.compress(with_grad, 1)),
        ("loss+grad multipart", "/v1/loss", {"Content-Type": f"multipart/form-data; boundary={boundary}"}, form),
        ("fit temperature", "/v1/calibrators/fit", json_headers,
         json.dumps({"method": "temperature", "logits": fit_logits, "labels": fit_labels, "name": "soak-t"}).encode()),
        ("fit matrix", "/v1/calibrators/fit", json_headers,
         json.dumps({"method": "matrix", "logits": fit_logits, "labels": fit_labels}).encode()),
        ("apply", "/v1/calibrators/soak-t/apply", json_headers, json.dumps({"logits": fit_logits}).encode()),
        ("aggregate", "/v1/aggregate", json_headers,
         json.dumps({"method": "dawid_skene", "num_classes": 5, "annotations": annotations}).encode()),
    ]


def real_main(args):
    import threading
    bodies = realistic_bodies()
    deadline = time.monotonic() + args.seconds
    lock = threading.Lock()
    counts, errors, sent_bytes = {}, {}, [0]
    latencies = {}
    key = os.environ.get("SOAK_API_KEY", "")

    def connect():
        context = tls_context()
        if context:
            return http.client.HTTPSConnection("localhost", args.port, timeout=60, context=context)
        return http.client.HTTPConnection(HOST, args.port, timeout=60)

    def worker(index):
        conn = connect()
        n = index
        while time.monotonic() < deadline:
            name, path, headers, body = bodies[n % len(bodies)]
            n += 1
            if n % 10 == 0:
                conn.close()
                conn = connect()
            headers = dict(headers)
            if key:
                headers["Authorization"] = f"Bearer {key}"
            started = time.monotonic()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = connect()
            except Exception as error:  # noqa: BLE001 - every failure is counted
                status = type(error).__name__
                conn.close()
                conn = connect()
            elapsed = (time.monotonic() - started) * 1000
            with lock:
                counts[name] = counts.get(name, 0) + 1
                sent_bytes[0] += len(body)
                latencies.setdefault(name, []).append(elapsed)
                if status not in (200, 201):
                    errors[f"{name}: {status}"] = errors.get(f"{name}: {status}", 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p99 = {name: round(sorted(v)[min(len(v) - 1, int(0.99 * len(v)))], 1) for name, v in latencies.items()}
    print(json.dumps({"requests": sum(counts.values()), "by_kind": counts, "errors": sum(errors.values()),
                      "error_kinds": errors, "sent_mb": round(sent_bytes[0] / 1e6, 1), "p99_ms": p99}), flush=True)


# --- RSS --------------------------------------------------------------------

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def rss_main(args):
    samples = []
    start = time.monotonic()
    out = open(args.samples, "w") if args.samples else None
    n = 0
    while time.monotonic() - start < args.seconds:
        try:
            kib = rss_kib(args.pid)
        except OSError:
            break  # the process is gone
        if kib is not None:
            samples.append(kib)
            if out:
                out.write(f"{time.monotonic() - start:.1f} {kib}\n")
                out.flush()
        n += 1
        time.sleep(max(0.0, start + n - time.monotonic()))
    if out:
        out.close()
    warm = samples[min(len(samples) - 1, int(args.warmup))] if samples else None
    print(json.dumps({"samples": len(samples),
                      "first_kib": samples[0] if samples else None,
                      "warm_kib": warm,
                      "peak_kib": max(samples) if samples else None,
                      "last_kib": samples[-1] if samples else None}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    idle = sub.add_parser("idle")
    idle.add_argument("--port", type=int, required=True)
    idle.add_argument("--seconds", type=float, required=True)
    idle.add_argument("--connections", type=int, default=300)
    idle.add_argument("--piece-gap", type=float, default=2.0)
    idle.add_argument("--idle-min", type=float, default=15.0)
    idle.add_argument("--idle-max", type=float, default=25.0)
    probe = sub.add_parser("probe")
    probe.add_argument("--port", type=int, required=True)
    probe.add_argument("--seconds", type=float, required=True)
    probe.add_argument("--interval", type=float, default=0.5)
    probe.add_argument("--timeout", type=float, default=2.0)
    rss = sub.add_parser("rss")
    rss.add_argument("--pid", type=int, required=True)
    rss.add_argument("--seconds", type=float, required=True)
    rss.add_argument("--samples")
    rss.add_argument("--warmup", type=float, default=60.0)
    real = sub.add_parser("real")
    real.add_argument("--port", type=int, required=True)
    real.add_argument("--seconds", type=float, required=True)
    real.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "idle":
        if 3 * args.piece_gap >= 10:
            sys.exit("soak.py: 3 x --piece-gap must stay under lossd's 10 s header timeout")
        asyncio.run(idle_main(args))
    elif args.mode == "probe":
        probe_main(args)
    elif args.mode == "real":
        real_main(args)
    else:
        rss_main(args)


if __name__ == "__main__":
    main()
