#!/usr/bin/env python3
"""The SciPy side of bench/scaling: the scaling-law fit of docs/scaling.md done the way
scripts/scaling-vectors.py does it (the procedure the Swift kernels are tested against),
copied here so that the benchmark times exactly that procedure in-process.

It mirrors docs/scaling.md: residuals between logarithms, r = log L-hat - log L, the
objective sum_i w_i huber_delta(r_i) with delta = 1e-3 (section 2), the unconstrained
parameterisation of section 2.1, the learning-rate areas S1, S2 of section 1.1, and the
multi-start grids of section 2.2 (chinchilla 432 starts, lr_annealing 24), each start run
to the end by scipy.optimize.minimize(method="L-BFGS-B") with numerical gradients,
maxiter 500, gtol 1e-12, ftol 1e-15, bounds [1e-3, 5] on the chinchilla and nmt
exponents; the lowest f wins, the first in grid order on ties.

    fit(law, data, opts) -> (params by name, report, theta at the optimum, echoed options)

`data` is the `data` array of a POST /v1/scaling/fit body and `opts` its `params`.
Unlike scripts/scaling-vectors.py, `fit` also counts the starts run and the objective
evaluations (report["starts"], report["nfev"]).
"""
import itertools
import math

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

HUBER_DELTA = 1e-3


def huber(r, delta):
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_grad(r, delta):
    return np.where(np.abs(r) <= delta, r, delta * np.sign(r))


# --- learning-rate areas (docs/scaling.md 1.1) ---------------------------------------------
def lr_areas(lr, decay=0.999, warmup=0):
    """S1, S2 for steps W+1..S (arrays of length S-W)."""
    eta = np.asarray(lr, dtype=np.float64)
    S = len(eta)
    s1 = np.empty(S - warmup)
    s2 = np.empty(S - warmup)
    a1 = a2 = m = 0.0
    prev = eta[warmup] if warmup < S else 0.0
    for k, i in enumerate(range(warmup, S)):
        m = decay * m + (prev - eta[i])
        prev = eta[i]
        a1 += eta[i]
        a2 += m
        s1[k], s2[k] = a1, a2
    return s1, s2


# --- laws: log-prediction from the unconstrained vector theta --------------------------------
def unpack(law, th, opts):
    if law == "power_law":
        if opts.get("irreducible", True):
            e, a, u = th
            return {"L_inf": math.exp(e), "x0": math.exp(a), "alpha": math.exp(u)}
        a, u = th
        return {"L_inf": 0.0, "x0": math.exp(a), "alpha": math.exp(u)}
    if law == "chinchilla":
        e, a, b, al, be = th
        return {"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": al, "beta": be}
    if law == "nmt":
        l, k, pe, pd = th
        return {"L_inf": math.exp(l), "beta": math.exp(k), "pe": pe, "pd": pd}
    if law == "lr_annealing":
        L0, a, u, c = th
        return {"L0": L0, "A": math.exp(a), "alpha": math.exp(u), "C": math.exp(c)}
    raise ValueError(law)


def predict(law, p, X, opts):
    """Predicted loss for design X (see design())."""
    if law == "power_law":
        x = X
        return p["L_inf"] + (p["x0"] / x) ** p["alpha"]
    if law == "chinchilla":
        n, d = X
        return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]
    if law == "nmt":
        ne, nd = X
        return p["beta"] * (opts["n_encoder_ref"] / ne) ** p["pe"] * (opts["n_decoder_ref"] / nd) ** p["pd"] + p["L_inf"]
    if law == "lr_annealing":
        s1, s2 = X
        return p["L0"] + p["A"] * s1 ** (-p["alpha"]) - p["C"] * s2
    raise ValueError(law)


def design(law, data, opts):
    """(X, L) from posted data; also fills option defaults."""
    if law == "power_law":
        return np.array([q["x"] for q in data], float), np.array([q["loss"] for q in data], float)
    if law == "chinchilla":
        return (np.array([q["n"] for q in data], float), np.array([q["d"] for q in data], float)), \
            np.array([q["loss"] for q in data], float)
    if law == "nmt":
        ne = np.array([q["n_encoder"] for q in data], float)
        nd = np.array([q["n_decoder"] for q in data], float)
        opts.setdefault("n_encoder_ref", float(np.exp(np.mean(np.log(ne)))))
        opts.setdefault("n_decoder_ref", float(np.exp(np.mean(np.log(nd)))))
        return (ne, nd), np.array([q["loss"] for q in data], float)
    if law == "lr_annealing":
        lam, W = opts.get("decay", 0.999), opts.get("warmup_steps", 0)
        s1s, s2s, ls = [], [], []
        for c in data:
            s1, s2 = lr_areas(c["lr"], lam, W)
            if "steps" in c:  # sparse, 1-based steps in [W+1, S]
                idx = np.array(c["steps"], int) - W - 1
                s1s.append(s1[idx]); s2s.append(s2[idx]); ls.append(np.array(c["loss"], float))
            else:
                s1s.append(s1); s2s.append(s2); ls.append(np.array(c["loss"], float)[W:])
        return (np.concatenate(s1s), np.concatenate(s2s)), np.concatenate(ls)
    raise ValueError(law)


def log_predict(law, th, X, opts):
    """log L-hat straight from theta, without overflow (log-sum-exp forms); None where L-hat <= 0."""
    if law == "power_law":
        if opts.get("irreducible", True):
            e, a, u = th
            return np.logaddexp(e, math.exp(min(u, 50.0)) * (a - np.log(X)))
        a, u = th
        return math.exp(min(u, 50.0)) * (a - np.log(X))
    if law == "chinchilla":
        e, a, b, al, be = th
        n, d = X
        return logsumexp(np.stack([a - al * np.log(n), b - be * np.log(d), np.full(n.shape, e)]), axis=0)
    if law == "nmt":
        l, k, pe, pd = th
        ne, nd = X
        return np.logaddexp(l, k + pe * (math.log(opts["n_encoder_ref"]) - np.log(ne))
                            + pd * (math.log(opts["n_decoder_ref"]) - np.log(nd)))
    if law == "lr_annealing":
        L0, a, u, c = th
        s1, s2 = X
        with np.errstate(over="ignore", invalid="ignore"):
            Lh = L0 + np.exp(np.minimum(a - math.exp(min(u, 50.0)) * np.log(s1), 700.0)) - math.exp(min(c, 700.0)) * s2
        if np.any(~np.isfinite(Lh)) or np.any(Lh <= 0):
            return None
        return np.log(Lh)
    raise ValueError(law)


def objective(law, th, X, L, opts, w, delta):
    lh = log_predict(law, th, X, opts)
    if lh is None or np.any(~np.isfinite(lh)):
        return 1e30
    r = lh - np.log(L)
    return float(np.sum(w * huber(r, delta)))


def grid(law, X, L, opts):
    lo, hi = float(np.min(L)), float(np.max(L))
    if law == "power_law":
        x = X
        us = [math.log(0.1), math.log(0.3), 0.0]
        as_ = [math.log(np.min(x)), math.log(np.max(x)), math.log(np.max(x)) + 5]
        if opts.get("irreducible", True):
            es = [math.log(0.5 * lo), math.log(0.9 * lo)]
            return [np.array(t) for t in itertools.product(es, as_, us)]
        return [np.array(t) for t in itertools.product(as_, us)]
    if law == "chinchilla":
        return [np.array([e, a, b, al, be]) for al, be, e, a, b in
                itertools.product([0.1, 0.3, 0.6], [0.1, 0.3, 0.6], [-1, 0, 1], [0, 5, 10, 15], [0, 5, 10, 15])]
    if law == "nmt":
        ls = [math.log(0.5 * lo), math.log(0.9 * lo)]
        ks = [math.log(hi - lo + 1e-3), 0.0]
        return [np.array([l, k, pe, pd]) for pe, pd, l, k in
                itertools.product([0.1, 0.3, 0.6], [0.1, 0.3, 0.6], ls, ks)]
    if law == "lr_annealing":
        return [np.array([L0, a, u, c]) for L0, u, a, c in
                itertools.product([0.5 * lo, 0.9 * lo], [math.log(0.3), math.log(0.5), 0.0],
                                  [math.log(hi - lo + 1e-3), 0.0], [math.log(0.01), 0.0])]
    raise ValueError(law)


def bounds(law, n):
    if law == "chinchilla":
        return [(None, None)] * 3 + [(1e-3, 5.0)] * 2
    if law == "nmt":
        return [(None, None)] * 2 + [(1e-3, 5.0)] * 2
    return [(None, None)] * n


def fit(law, data, opts=None, weights=None, starts=None):
    opts = dict(opts or {})
    delta = opts.get("huber_delta", HUBER_DELTA)
    X, L = design(law, data, opts)
    w = np.ones_like(L) if weights is None else np.asarray(weights, float)
    best = None
    runs = nfev = 0
    for th0 in (starts if starts is not None else grid(law, X, L, opts)):
        f0 = objective(law, th0, X, L, opts, w, delta)
        if f0 >= 1e30:
            continue
        runs += 1
        res = minimize(lambda t: objective(law, t, X, L, opts, w, delta), th0, method="L-BFGS-B",
                       bounds=bounds(law, len(th0)), options={"maxiter": 500, "gtol": 1e-12, "ftol": 1e-15})
        nfev += res.nfev
        if best is None or res.fun < best.fun:
            best = res
    p = unpack(law, best.x, opts)
    Lh = predict(law, p, X, opts)
    r = np.log(Lh) - np.log(L)
    report = {"objective": float(best.fun), "rmse_log": float(np.sqrt(np.mean(r * r))),
              "r2": float(1 - np.sum((Lh - L) ** 2) / np.sum((L - L.mean()) ** 2)), "n_points": int(L.size),
              "iterations": int(best.nit), "converged": bool(best.success), "starts": runs, "nfev": int(nfev)}
    echo = {k: opts[k] for k in ("n_encoder_ref", "n_decoder_ref") if k in opts}
    return p, report, best.x, echo
