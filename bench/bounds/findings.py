#!/usr/bin/env python3
"""Re-runs the resource findings of the bounded-resources review against a lossd binary.

  findings.py --lossd PATH [--cgroup-mib 3072] [--only NAME ...]

Each case starts its own lossd (release build, defaults unless stated) on a free
port, drives it as the finding describes, samples its RSS every 20 ms and prints
one line: what was sent, what came back, peak RSS. With --cgroup-mib (root and a
writable cgroup v1/v2 memory controller), lossd runs in a memory cgroup of that
size, as in a container with a memory limit: its default --max-inflight-bytes is
then a quarter of it, and an out-of-memory kill would show as "killed". Only
127.0.0.1 is contacted; everything stops by itself.
"""

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import threading
import time

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class Lossd:
    """lossd on a free port, optionally inside a memory cgroup, with an RSS sampler."""

    def __init__(self, binary, extra=(), cgroup=None):
        self.cgroup = cgroup
        argv = [binary, "--port", "0", "--data-dir", f"/tmp/lossd-findings-{os.getpid()}", "--log-level", "error", *extra]
        if cgroup:
            argv = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.peak = self.rss()
        self.running = True
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def rss(self):
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _sample(self):
        while self.running and self.process.poll() is None:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def stop(self):
        self.running = False
        alive = self.process.poll() is None
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return "alive" if alive else f"killed (exit {self.process.returncode})"


def mib(n):
    return f"{n / 2**20:,.0f} MiB"


def post(port, path, body, headers=None, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def loss_body(rows=256, classes=1000, label_offset=0, seed=0):
    rng = random.Random(seed)
    return json.dumps({"loss": "cross_entropy",
                       "logits": [[round(rng.gauss(0, 2), 6) for _ in range(classes)] for _ in range(rows)],
                       "labels": [i % classes + label_offset for i in range(rows)]}).encode()


def raw_post(port, path, body, headers=""):
    """Sends a request on a raw socket without reading; returns the socket."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
              f"Content-Length: {len(body)}\r\n\r\n".encode())
    return s


def read_status(s, timeout=60):
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return "closed"


@case
def rss_table(args):
    """The RSS table: 2.7 MB bodies on keep-alive and new connections, 422s, small requests, 404s."""
    lossd = Lossd(args.lossd, cgroup=args.cgroup)
    body = loss_body()
    bad = loss_body(label_offset=5000)
    rows = []
    conn = http.client.HTTPConnection("127.0.0.1", lossd.port, timeout=120)

    def measure(name, fn):
        before = lossd.rss()
        statuses = fn()
        rows.append((name, before, lossd.rss(), statuses))

    def keep_alive():
        seen = {}
        for _ in range(300):
            conn.request("POST", "/v1/loss", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            seen[r.status] = seen.get(r.status, 0) + 1
        return seen

    def fresh(payload, path="/v1/loss"):
        def run():
            seen = {}
            for _ in range(100):
                status, _ = post(lossd.port, path, payload)
                seen[status] = seen.get(status, 0) + 1
            return seen
        return run

    def small():
        lua = f"/tmp/lossd-findings-{os.getpid()}.lua"
        small_body = loss_body(rows=64, classes=10).decode()
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    f"wrk.body = {json.dumps(small_body)}\n")
        out = subprocess.run(["wrk", "-t2", "-c8", "-d10s", "-s", lua, f"http://127.0.0.1:{lossd.port}"],
                             capture_output=True, text=True).stdout
        os.remove(lua)
        line = next((l for l in out.splitlines() if "requests in" in l), "? requests")
        return {"wrk": line.strip().split(" requests")[0] + " requests"}

    measure("300 x 2.7 MB POST /v1/loss, one keep-alive connection", keep_alive)
    measure("100 more, a new connection each", fresh(body))
    measure("100 more answered 422", fresh(bad))
    measure("64x10 bodies with wrk, 10 s", small)
    measure("100 x 2.7 MB to an unknown path (404)", fresh(body, "/v1/nope"))
    state = lossd.stop()
    for name, before, after, statuses in rows:
        print(f"| {name} | {mib(before)} -> {mib(after)} | {statuses} |")
    print(f"| (peak over the table) | {mib(lossd.peak)} | lossd {state} |")


@case
def unauthenticated(args):
    """Finding 1: --api-key, 40 requests without the key and 60 MB bodies."""
    lossd = Lossd(args.lossd, ["--api-key", "secret"], cgroup=args.cgroup)
    start = lossd.rss()
    chunk = b" " * (1 << 20)
    statuses = []

    def client():
        s = raw_post(lossd.port, "/v1/loss", b"x" * (60 << 20))
        try:
            for _ in range(60):
                s.sendall(chunk)
        except OSError:
            pass
        statuses.append(read_status(s))
        s.close()

    threads = [threading.Thread(target=client) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = lossd.stop()
    print(f"| 1. 40 x 60 MB bodies without the API key | statuses {sorted(set(map(str, statuses)))} x{len(statuses)} |"
          f" RSS {mib(start)} -> peak {mib(lossd.peak)} | lossd {state} |")


@case
def tiny_body_big_work(args):
    """Finding 2: a matrix fit with C = 4000 (296 KB); info_nce symmetric, N = 8192, D = 4, with the gradient."""
    lossd = Lossd(args.lossd, cgroup=args.cgroup)
    rng = random.Random(2)
    c = 4000
    logits = [[round(rng.gauss(0, 1), 2) if j < 4 else 0 for j in range(c)] for _ in range(9)]
    body = json.dumps({"method": "matrix", "logits": logits, "labels": list(range(9))}).encode()
    started = time.monotonic()
    status, data = post(lossd.port, "/v1/calibrators/fit", body)
    elapsed = time.monotonic() - started
    print(f"| 2a. matrix fit, C = {c}, {len(body) // 1000} KB body | {status} in {elapsed:.2f} s |"
          f" peak {mib(lossd.peak)} | {json.loads(data).get('detail', '')[:90]} |")
    n, d = 8192, 4
    vectors = [[round(rng.gauss(0, 1), 3) for _ in range(d)] for _ in range(n)]
    body = json.dumps({"loss": "info_nce", "params": {"symmetric": True}, "queries": vectors, "keys": vectors,
                       "return_grad": True}).encode()
    started = time.monotonic()
    status, data = post(lossd.port, "/v1/loss", body)
    elapsed = time.monotonic() - started
    detail = json.loads(data).get("detail", "") if status != 200 else "answered"
    state = lossd.stop()
    print(f"| 2b. info_nce symmetric + gradient, N = {n}, D = {d}, {len(body) // 1000} KB | {status} in {elapsed:.2f} s |"
          f" peak {mib(lossd.peak)} | {detail[:90]} | lossd {state} |")


@case
def bytes_in_flight(args):
    """Finding 3: 40 connections each sending a 62.9 MB body at once."""
    lossd = Lossd(args.lossd, cgroup=args.cgroup)
    body = loss_body(rows=5900, seed=3)
    statuses = []
    started = time.monotonic()

    def client():
        s = raw_post(lossd.port, "/v1/loss", body)
        try:
            s.sendall(body)
        except OSError:
            pass  # refused early: the answer may still be readable
        statuses.append(read_status(s, timeout=120))
        s.close()

    threads = [threading.Thread(target=client) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    state = lossd.stop()
    counts = {str(s): statuses.count(s) for s in set(statuses)}
    print(f"| 3. 40 x {len(body) / 1e6:.1f} MB bodies at once | {counts} in {elapsed:.1f} s | peak {mib(lossd.peak)} |"
          f" lossd {state} |")


def big_answer_body():
    """An aggregation whose answer is about 33 MB: softmax soft labels, 10 classes, 160k items."""
    annotations = [[i, "w", i % 10] for i in range(160_000)]
    return json.dumps({"method": "softmax", "num_classes": 10, "annotations": annotations}).encode()


@case
def clients_that_do_not_read(args):
    """Finding 4: 40 sockets asking for a ~33 MB /v1/aggregate answer and never reading it."""
    lossd = Lossd(args.lossd, cgroup=args.cgroup)
    body = big_answer_body()
    status, data = post(lossd.port, "/v1/aggregate", body)
    answer = len(data)
    start = lossd.rss()
    sockets = []
    for _ in range(40):
        s = raw_post(lossd.port, "/v1/aggregate", body)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(body)
        sockets.append(s)
    time.sleep(20)
    during = lossd.peak
    probe = post(lossd.port, "/v1/loss", loss_body(rows=4, classes=3))[0]
    for s in sockets:
        s.close()
    state = lossd.stop()
    print(f"| 4. 40 x {answer / 1e6:.1f} MB aggregate answers never read | first answer {status} | RSS {mib(start)} ->"
          f" peak {mib(during)} over 20 s | a small loss meanwhile: {probe} | lossd {state} |")


@case
def time_and_fairness(args):
    """Finding 5: an expensive aggregation (average over 32 x mace, n_iter 10000) and a light client beside it."""
    for extra in ([], ["--request-timeout", "10"]):
        time_and_fairness_with(args, extra)


def time_and_fairness_with(args, extra):
    lossd = Lossd(args.lossd, extra, cgroup=args.cgroup)
    rng = random.Random(5)
    annotations = [[f"i{i}", f"w{w}", rng.randrange(4)] for i in range(300) for w in range(8)]
    params = {"methods": ["mace"] * 32, "mace": {"n_iter": 10000}}
    body = json.dumps({"method": "average", "num_classes": 4, "params": params, "annotations": annotations}).encode()
    results = []

    def heavy():
        started = time.monotonic()
        status, _ = post(lossd.port, "/v1/aggregate", body, timeout=200)
        results.append((status, time.monotonic() - started))

    heavies = [threading.Thread(target=heavy) for _ in range(os.cpu_count() or 2)]
    for t in heavies:
        t.start()
    time.sleep(2)
    ready = post_get(lossd.port, "/readyz")
    light = loss_body(rows=64, classes=10)
    latencies = []
    conn = http.client.HTTPConnection("127.0.0.1", lossd.port, timeout=60)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        conn.request("POST", "/v1/loss", body=light, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        latencies.append((time.perf_counter() - t0) * 1000)
    for t in heavies:
        t.join()
    state = lossd.stop()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(f"| 5. {' '.join(extra) or 'defaults'}: {len(heavies)} x average over 32 mace (n_iter 10000), {len(body) // 1000} KB | "
          f"{[(s, round(t, 1)) for s, t in results]} (status, s) | /readyz while saturated: {ready} |"
          f" light 64x10 loss beside it: p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, {len(latencies)} requests | lossd {state} |")


def post_get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    return r.status


@case
def connection_cap(args):
    """Finding 6: 50 slow-body connections at --max-connections 50; /healthz on new connections."""
    lossd = Lossd(args.lossd, ["--max-connections", "50"], cgroup=args.cgroup)
    slow = []
    for _ in range(50):
        s = raw_post(lossd.port, "/v1/loss", b"x" * 1000)
        s.sendall(b"{")
        slow.append(s)
    time.sleep(0.3)
    statuses = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            status = post_get(lossd.port, "/healthz")
        except OSError as error:
            status = type(error).__name__
        statuses[status] = statuses.get(status, 0) + 1
        time.sleep(0.05)
    for s in slow:
        s.close()
    state = lossd.stop()
    print(f"| 6. 50 slow bodies hold --max-connections 50; /healthz on new connections for 10 s | {statuses} | lossd {state} |")


@case
def slow_reader(args):
    """Finding 7: a client reading a ~33 MB answer at 500 KB/s."""
    lossd = Lossd(args.lossd, cgroup=args.cgroup)
    body = big_answer_body()
    s = raw_post(lossd.port, "/v1/aggregate", body)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(body)
    s.settimeout(60)
    received, started = 0, time.monotonic()
    head = b""
    total = None
    while True:
        try:
            chunk = s.recv(50_000)
        except OSError:
            break
        if not chunk:
            break
        received += len(chunk)
        if total is None:
            head += chunk
            if b"\r\n\r\n" in head:
                header, _, _ = head.partition(b"\r\n\r\n")
                for line in header.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        total = int(line.split(b":")[1]) + len(header) + 4
        if total is not None and received >= total:
            break
        time.sleep(0.1)  # 50 KB per 0.1 s: 500 KB/s
    elapsed = time.monotonic() - started
    state = lossd.stop()
    print(f"| 7. a {((total or 0) / 1e6):.1f} MB answer read at 500 KB/s | received {received / 1e6:.1f} MB of "
          f"{(total or 0) / 1e6:.1f} MB in {elapsed:.0f} s | lossd {state} |")


def make_cgroup(limit_mib):
    for root, limit_file in (("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max")):
        if not os.path.exists(os.path.join(root, "cgroup.procs")):
            continue
        path = os.path.join(root, f"lossd-findings-{os.getpid()}")
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, limit_file), "w") as f:
                f.write(str(limit_mib << 20))
            return path
        except OSError:
            continue
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lossd", required=True)
    parser.add_argument("--cgroup-mib", type=int, default=0)
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    args.cgroup = make_cgroup(args.cgroup_mib) if args.cgroup_mib else None
    if args.cgroup_mib:
        print(f"memory cgroup: {args.cgroup or 'not available; running without one'} ({args.cgroup_mib} MiB)")
    try:
        for name, fn in CASES.items():
            if args.only and name not in args.only:
                continue
            fn(args)
    finally:
        if args.cgroup:
            time.sleep(0.5)
            try:
                os.rmdir(args.cgroup)
            except OSError:
                pass


if __name__ == "__main__":
    main()
