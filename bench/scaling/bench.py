#!/usr/bin/env python3
"""lossd's scaling-law fits (POST /v1/scaling/fit) beside SciPy doing the same fit in-process.

  bench/scaling/bench.py --url http://127.0.0.1:PORT [--log LOSSD_JSON_LOG]
                         [--repeats 5] [--budget 25] [--scipy-repeats 3] [--scipy-budget 50]

Two problems, drawn from known laws with 1% multiplicative log-normal noise
(NumPy default_rng(--seed)):
  - chinchilla: 1000 points L = E + A/N^alpha + B/D^beta, N log-uniform in [1e8, 1e10] and
    D in [1e9, 1e11] (two decades each), truth E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28;
  - lr_annealing: one 100,000-step curve, 500 warm-up steps then cosine from 3e-4 to 3e-5,
    a loss at every step (dense; the warm-up losses are posted and ignored), truth
    L0 2.1, A 0.45, alpha 0.51, C 0.35, decay 0.999 (docs/scaling.md 1.1).

lossd: the JSON body is serialised once beforehand and POSTed through urllib3 (one kept-alive
connection, Accept-Encoding identity); the wall time is the median of --repeats POSTs after
one warm-up POST (fewer when they would pass --budget seconds), and, given lossd's JSON log
(--log-format json), the server's own time (the access line's `ms`, from the request's
arrival to the answer queued, JSON parsing and the answer's `fitted` array included),
matched by X-Request-Id.
SciPy: bench/scaling/scipy_fit.py (docs/scaling.md's procedure: every start of the grid run
to the end by L-BFGS-B with numerical gradients) on the same points, in this process, one
thread; the median of --scipy-repeats fits, fewer when they would pass --scipy-budget
seconds (the 432-start chinchilla fit alone takes minutes: one fit). The areas S1, S2 are
computed inside the timed fit on both sides.

Printed as a markdown table: times per fit, SciPy / lossd, both objectives (lossd's
fit.objective and SciPy's f at its optimum), SciPy's objective evaluated at lossd's
parameters (a check that both sides compute the same f), and the largest relative
difference between the two parameter sets.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lossd_log import server_ms  # noqa: E402
import urllib3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scipy_fit  # noqa: E402

CHINCHILLA_TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
LR_TRUTH = {"L0": 2.1, "A": 0.45, "alpha": 0.51, "C": 0.35}


def cosine(steps, peak, warm, final):
    s = np.arange(1, steps + 1)
    return np.where(s <= warm, peak * s / max(warm, 1),
                    final + 0.5 * (peak - final) * (1 + np.cos(np.pi * (s - warm) / (steps - warm))))


def chinchilla_case(rng, points, noise):
    n = np.exp(rng.uniform(math.log(1e8), math.log(1e10), points))
    d = np.exp(rng.uniform(math.log(1e9), math.log(1e11), points))
    t = CHINCHILLA_TRUTH
    loss = (t["E"] + t["A"] / n ** t["alpha"] + t["B"] / d ** t["beta"]) * np.exp(noise * rng.standard_normal(points))
    data = [{"n": float(a), "d": float(b), "loss": float(c)} for a, b, c in zip(n, d, loss)]
    return {"law": "chinchilla", "data": data}, {}, f"{points} points"


def lr_annealing_case(rng, steps, warmup, noise):
    opts = {"decay": 0.999, "warmup_steps": warmup}
    lr = cosine(steps, 3e-4, warmup, 3e-5)
    s1, s2 = scipy_fit.lr_areas(lr, opts["decay"], warmup)
    t = LR_TRUTH
    fitted = (t["L0"] + t["A"] * s1 ** (-t["alpha"]) - t["C"] * s2) * np.exp(noise * rng.standard_normal(s1.size))
    # Dense: one loss a step; the warm-up steps' losses are posted but never fitted.
    loss = np.concatenate([np.full(warmup, fitted[0]), fitted])
    data = [{"lr": lr.tolist(), "loss": loss.tolist()}]
    return {"law": "lr_annealing", "data": data, "params": opts}, opts, f"{steps:,} steps (W {warmup})"



def time_lossd(http, url, body, repeats, budget, log_path):
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}

    def post():
        start = time.perf_counter()
        response = http.request("POST", url + "/v1/scaling/fit", body=body, headers=headers)
        elapsed = time.perf_counter() - start
        if response.status != 200:
            sys.exit(f"lossd answered {response.status}: {response.data[:500]!r}")
        return elapsed, response.headers.get("X-Request-Id"), json.loads(response.data)

    post()  # warm-up: connection, first touch of the pages
    walls, ids, answer = [], [], None
    for _ in range(repeats):
        elapsed, rid, answer = post()
        walls.append(elapsed)
        ids.append(rid)
        if sum(walls) + walls[-1] > budget:
            break
    time.sleep(0.2)  # the access line is written after the answer
    server = server_ms(log_path, ids)
    server_med = statistics.median(server[i] for i in ids if i in server) / 1000 if server else None
    return statistics.median(walls), len(walls), server_med, answer


def time_scipy(request, opts, repeats, budget):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = scipy_fit.fit(request["law"], request["data"], opts)
        times.append(time.perf_counter() - start)
        if sum(times) + times[-1] > budget:
            break
    return statistics.median(times), len(times), result


def fmt_s(seconds):
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--log", help="lossd's stderr in --log-format json, for the server-side time")
    parser.add_argument("--repeats", type=int, default=5, help="lossd POSTs a case (after one warm-up)")
    parser.add_argument("--budget", type=float, default=25.0,
                        help="seconds of timed lossd POSTs a case: no further POST once another would pass it")
    parser.add_argument("--scipy-repeats", type=int, default=3)
    parser.add_argument("--scipy-budget", type=float, default=50.0,
                        help="seconds of SciPy fits a case: no further fit once another would pass it "
                             "(the first always runs)")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--cases", default="chinchilla,lr_annealing")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    makers = {"chinchilla": lambda: chinchilla_case(rng, 1000, 0.01),
              "lr_annealing": lambda: lr_annealing_case(rng, 100_000, 500, 0.01)}
    http = urllib3.PoolManager(maxsize=1, timeout=urllib3.Timeout(connect=5, read=600))
    rows, notes = [], []
    for name in args.cases.split(","):
        request, opts, size = makers[name]()
        body = json.dumps(request).encode()
        wall, runs, server, answer = time_lossd(http, args.url, body, args.repeats, args.budget, args.log)
        sp_time, sp_runs, (sp_params, sp_report, _, _) = time_scipy(request, opts, args.scipy_repeats,
                                                                    args.scipy_budget)
        lp = answer["params"]
        diff = max(abs(lp[k] - sp_params[k]) / max(abs(sp_params[k]), 1e-300) for k in sp_params)
        worst = max(sp_params, key=lambda k: abs(lp[k] - sp_params[k]) / max(abs(sp_params[k]), 1e-300))
        # SciPy's objective at lossd's parameters: the same f on both sides?
        X, L = scipy_fit.design(name, request["data"], dict(opts))
        theta = {"chinchilla": lambda p: [math.log(p["E"]), math.log(p["A"]), math.log(p["B"]), p["alpha"], p["beta"]],
                 "lr_annealing": lambda p: [p["L0"], math.log(p["A"]), math.log(p["alpha"]), math.log(p["C"])]}[name](lp)
        f_at_lossd = scipy_fit.objective(name, np.array(theta), X, L, opts, np.ones_like(L), scipy_fit.HUBER_DELTA)
        fit = answer["fit"]
        rows.append([f"{name}, {size}", f"{len(body) / 1e6:.1f} MB", f"{fmt_s(wall)} (x{runs})", fmt_s(server),
                     f"{fmt_s(sp_time)} (x{sp_runs})", f"{sp_time / wall:.1f}x",
                     f"{fit['objective']:.10e}", f"{sp_report['objective']:.10e}", f"{f_at_lossd:.10e}",
                     f"{diff:.1e} ({worst})"])
        notes.append(f"{name}: lossd {fit['starts']} starts, best run {fit['iterations']} iterations, "
                     f"converged {str(fit['converged']).lower()}; SciPy {sp_report['starts']} starts, "
                     f"{sp_report['nfev']:,} objective evaluations a fit, best run {sp_report['iterations']} "
                     f"iterations, converged {str(sp_report['converged']).lower()}")
        notes.append(f"{name}: lossd " + ", ".join(f"{k} {v:.6g}" for k, v in lp.items())
                     + "; SciPy " + ", ".join(f"{k} {v:.6g}" for k, v in sp_params.items()))
        print(f"bench: {name} done: lossd {fmt_s(wall)}, SciPy {fmt_s(sp_time)}", file=sys.stderr, flush=True)

    header = ["fit", "body", "lossd wall (POSTs)", "lossd server", "SciPy (fits)", "SciPy / lossd",
              "lossd objective", "SciPy objective", "SciPy f at lossd params", "max rel param diff"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("lossd wall: median of the POSTs (urllib3, body prepared, keep-alive) after one warm-up; lossd "
          "server: median access-log `ms` of the same POSTs; lossd uses every core (--threads default). "
          "SciPy: median of the fits, one thread in-process, scipy.optimize.minimize L-BFGS-B, numerical "
          "gradients, every start run to the end. SciPy / lossd: SciPy time over lossd wall. "
          "Max rel param diff: max over parameters of |lossd - SciPy| / |SciPy|.")
    for note in notes:
        print(f"- {note}")
    import numpy, scipy  # noqa: E401
    print(f"- numpy {numpy.__version__}, scipy {scipy.__version__}, urllib3 {urllib3.__version__}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
