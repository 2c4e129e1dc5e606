#!/usr/bin/env python3
"""Reference implementation (NumPy, float64) of lossd's second wave of losses.

Writes Tests/LossdServiceTests/Vectors/loss_vectors_2.json. Run from anywhere:

    python3 scripts/reference-losses-2.py          # needs NumPy; SciPy optional

The output is deterministic (fixed seeds, inputs rounded to short decimals). Every
analytic gradient is checked here against central finite differences, and a few
identities between losses are asserted, before anything is written.

This file is an independent transcription of lossd's loss definitions; it shares no
code with lossd (nor with the generator of the first-wave vectors). The losses, in
this script's own words:

* tcm -- Threshold-Consistent Margin regulariser (Qin Zhang et al., "Threshold-Consistent
  Margin Loss for Open-World Deep Metric Learning", ICLR 2024). Over ordered pairs i != j of
  the batch with cosine S_ij: hard positives (same label, S < m+) and hard negatives
  (different label, S > m-); value = l+ * mean over hard positives of (m+ - S)
  + l- * mean over hard negatives of (S - m-), an empty set adding 0. One number per
  batch (reduction none rejected, no sample weights).
* implicit_prm -- implicit process reward model (Yuan et al., "Free Process
  Rewards without Process Labels", 2024): r = beta * sum_t mask*(log pi - log pi_ref),
  cross-entropy of sigmoid(r) against the 0/1 outcome; cumulative partial sums give
  per-token and per-step rewards.
* kl_div -- T^2 * KL(t || softmax(z/T)) against soft targets, 0*log 0 = 0.
* comp_sum_adversarial -- comp-sum loss of Anqi Mao, Mehryar Mohri, Yutao Zhong,
  "Cross-Entropy Loss Functions: Theoretical Analysis and Applications" (ICML 2023)
  plus nu * || rho(z') - rho(z) ||_2, with rho(z)_k = z_y - z_k (k != y) the margin
  vector and z' the client's adversarial logits.
* normalized_softmax -- cosine classifier with scale s and additive cosine margin
  (CosFace), optionally with in-batch negative pairs and a cosine filter for noisy
  negatives as in Jung et al., "Unified Negative Pair Generation toward
  Well-discriminative Feature Space for Face Recognition" (UNPG), 2022.
* dice -- soft Dice of Fausto Milletari, Nassir Navab, Seyed-Ahmad Ahmadi, "V-Net:
  Fully Convolutional Neural Networks for Volumetric Medical Image Segmentation",
  2016: per class 1 - (2*sum p*g + eps)/(sum p + sum g + eps).
* cldice -- soft clDice of Shit et al., "clDice - a Novel Topology-
  Preserving Loss Function for Tubular Structure Segmentation", CVPR 2021. The soft
  skeleton follows that paper's iterative min/max pooling: erosion = minimum over
  the plus-shaped neighbourhood (min of the 3x1 and 1x3 pools; in 3-D of the three
  axis pools), dilation = maximum over the full 3x3 (3x3x3) window, opening =
  dilation(erosion(x)); skel = relu(x - open(x)); then `iterations` times:
  x = erode(x), delta = relu(x - open(x)), skel = skel + relu(delta - skel*delta).
  Windows are clipped at the border (padding never wins a min or a max).
* skeleton_recall -- Kirchhoff et al., "Skeleton Recall Loss for
  Connectivity Conserving and Resource Efficient Segmentation of Thin Tubular
  Structures", 2024: per class 1 - (sum p*k + eps)/(sum k + eps) over the client's
  skeleton class map k.

Composite requests (`losses: [...]`) add per-entry `weight` and `columns` [lo, hi)
(a slice of the last axis of logits, and of targets when targets has as many
columns as logits; labels are relative to the slice) and answer `total` = sum of
weight_i * value_i with its gradient (sliced columns put back in place). Reduction
`group_mean` with `groups` [N] is the unweighted mean over distinct groups of each
group's `mean` (the multi-task balancing of MFTCoder: Liu et al.,
"MFTCoder: Boosting Code LLMs with Multitask Fine-Tuning", 2023).

Common rules (same as the first wave): float64; LSE with max shift; softplus(x) =
max(x, 0) + log1p(exp(-|x|)); per-row values l_r with mean denominators d_r (1 for
every loss here except binary_cross_entropy, d = C); with sample weights s_r >= 0,
none -> s_r*l_r, sum = sum_r s_r*l_r, mean = sum / sum_r s_r*d_r (0 when that is 0);
gradients of mean are given, grad(sum) = mean_denominator * grad(mean). Rows are
L2-normalised (after dividing by their largest |entry|) where a cosine is taken;
a row with norm < 1e-12 is rejected.
"""

import itertools
import json
import math
import os
import sys

import numpy as np

try:  # optional cross-checks
    import scipy.special as sps
except Exception:  # pragma: no cover
    sps = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "LossdServiceTests", "Vectors", "loss_vectors_2.json")

FD_RTOL = 1e-6      # |analytic - FD| <= FD_RTOL * max(1, max|grad|)
EXP_MAX = 709.78    # exp overflows above this


# ----------------------------------------------------------------------------------
# primitives
# ----------------------------------------------------------------------------------

def lse(v, axis=-1):
    v = np.asarray(v, float)
    m = np.max(v, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m + np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True)), axis)


def log_softmax(v, axis=-1):
    return v - np.expand_dims(lse(v, axis), axis)


def softmax(v, axis=-1):
    return np.exp(log_softmax(v, axis))


def softplus(x):
    x = np.asarray(x, float)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    x = np.asarray(x, float)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def unit_rows(E):
    """Row-normalise E [R][D]: returns (U, norms). Rows are first divided by their
    largest |entry| so that squaring cannot overflow or underflow."""
    M = np.max(np.abs(E), axis=1, keepdims=True)
    Ms = np.where(M > 0, M, 1.0)
    Es = E / Ms
    n = np.sqrt(np.sum(Es * Es, axis=1, keepdims=True))
    norm = M * n
    U = Es / np.where(n > 0, n, 1.0)
    return U, norm


def unit_rows_backward(U, norm, gU):
    """Gradient through u = e/|e|: (g - u (u.g)) / |e|."""
    return (gU - U * np.sum(U * gU, axis=1, keepdims=True)) / norm


# ----------------------------------------------------------------------------------
# validation (what the service must reject; each error case is a single fault)
# ----------------------------------------------------------------------------------

class Reject(Exception):
    def __init__(self, code, field):
        super().__init__(code, field)
        self.code, self.field = code, field


def ptr(name, *idx):
    return "/" + "/".join([name] + [str(int(i)) for i in idx])


def tensor(inputs, name, ranks, required=True):
    if name not in inputs:
        if required:
            raise Reject("missing_field", ptr(name))
        return None
    a = np.asarray(inputs[name], dtype=float)
    if a.ndim not in ranks or a.size == 0:
        raise Reject("invalid_shape", ptr(name))
    bad = np.argwhere(~np.isfinite(a))
    if len(bad):
        raise Reject("non_finite", ptr(name, *bad[0]))
    return a


def int_tensor(inputs, name, ranks, lo=None, hi=None, allowed=(), required=True):
    """Integer field: integral values, optionally in [lo, hi) or in `allowed`."""
    a = tensor(inputs, name, ranks, required)
    if a is None:
        return None
    bad = np.argwhere(a != np.round(a))
    if len(bad):
        raise Reject("invalid_label", ptr(name, *bad[0]))
    ok = np.ones(a.shape, bool)
    if lo is not None:
        ok &= a >= lo
    if hi is not None:
        ok &= a < hi
    for v in allowed:
        ok |= a == v
    bad = np.argwhere(~ok)
    if len(bad):
        raise Reject("invalid_label", ptr(name, *bad[0]))
    return a.astype(np.int64)


def same_shape(a, shape, name):
    if a is not None and tuple(a.shape) != tuple(shape):
        raise Reject("invalid_shape", ptr(name))


def num_param(params, name, default, lo=-math.inf, hi=math.inf, lo_open=False,
              hi_open=False, nullable=False, integer=False, prefix=""):
    field = prefix + "/params/" + name
    if name not in params:
        return default
    v = params[name]
    if v is None:
        if nullable:
            return None
        raise Reject("invalid_input", field)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise Reject("invalid_param", field)
    if integer and v != int(v):
        raise Reject("invalid_param", field)
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        raise Reject("invalid_param", field)
    return float(v) if not integer else int(v)


def bool_param(params, name, default, prefix=""):
    if name not in params:
        return default
    v = params[name]
    if not isinstance(v, bool):
        raise Reject("invalid_param" if v is not None else "invalid_input", prefix + "/params/" + name)
    return v


def sample_weights(inputs, R, allowed=True):
    if "sample_weights" not in inputs:
        return np.ones(R)
    if not allowed:
        raise Reject("invalid_input", "/sample_weights")
    s = tensor(inputs, "sample_weights", (1,))
    if len(s) != R:
        raise Reject("invalid_shape", "/sample_weights")
    bad = np.argwhere(s < 0)
    if len(bad):
        raise Reject("invalid_input", ptr("sample_weights", *bad[0]))
    return s


# ----------------------------------------------------------------------------------
# losses: each `prepare_*` validates and resolves params, each `eval_*` returns
#   ell [R] (per-row values), d [R] (mean denominators), vjp(c) -> {input: grad of
#   sum_r c_r*ell_r}, extras (dict)
# ----------------------------------------------------------------------------------

LOSSES = {}

def register(name, grad_inputs, row_separable=True, weights_ok=True):
    def deco(pair):
        LOSSES[name] = dict(prepare=pair[0], evaluate=pair[1], grad_inputs=grad_inputs,
                            row_separable=row_separable, weights_ok=weights_ok)
        return pair
    return deco


# --- tcm ---------------------------------------------------------------------------

def prepare_tcm(inputs, params, pfx=""):
    P = dict(
        lambda_plus=num_param(params, "lambda_plus", 1.0, 0.0, prefix=pfx),
        lambda_minus=num_param(params, "lambda_minus", 1.0, 0.0, prefix=pfx),
        margin_plus=num_param(params, "margin_plus", 0.9, -1.0, 1.0, prefix=pfx),
        margin_minus=num_param(params, "margin_minus", 0.5, -1.0, 1.0, prefix=pfx),
        normalize=bool_param(params, "normalize", True, prefix=pfx),
    )
    E = tensor(inputs, "embeddings", (2,))
    y = int_tensor(inputs, "labels", (1,))
    if len(y) != E.shape[0]:
        raise Reject("invalid_shape", "/labels")
    _, norm = unit_rows(E)
    bad = np.argwhere(norm[:, 0] < 1e-12)
    if len(bad):  # a cosine needs a direction, with or without `normalize`
        raise Reject("invalid_input", ptr("embeddings", bad[0][0]))
    return dict(embeddings=E, labels=y), P, E.shape[0]


def tcm_pairs(X, P):
    U, norm = unit_rows(X["embeddings"])
    y = X["labels"]
    N = len(y)
    S = U @ U.T
    off = ~np.eye(N, dtype=bool)
    same = (y[:, None] == y[None, :]) & off
    diff = y[:, None] != y[None, :]
    hp = same & (S < P["margin_plus"])
    hn = diff & (S > P["margin_minus"])
    return U, norm, S, same, diff, hp, hn


def eval_tcm(X, P):
    U, norm, S, same, diff, hp, hn = tcm_pairs(X, P)
    nP, nQ = int(hp.sum()), int(hn.sum())
    val, dS = 0.0, np.zeros_like(S)
    if nP:
        val += P["lambda_plus"] * np.sum(P["margin_plus"] - S[hp]) / nP
        dS[hp] = -P["lambda_plus"] / nP
    if nQ:
        val += P["lambda_minus"] * np.sum(S[hn] - P["margin_minus"]) / nQ
        dS[hn] = P["lambda_minus"] / nQ

    def vjp(c):
        gU = c[0] * ((dS + dS.T) @ U)
        return {"embeddings": unit_rows_backward(U, norm, gU)}
    extras = {"hard_positive_pairs": nP, "hard_negative_pairs": nQ}
    return np.array([val]), np.ones(1), vjp, extras


register("tcm", ["embeddings"], row_separable=False, weights_ok=False)((prepare_tcm, eval_tcm))


# --- implicit_prm ------------------------------------------------------------------

def prepare_implicit_prm(inputs, params, pfx=""):
    P = dict(beta=num_param(params, "beta", 0.05, 0.0, lo_open=True, prefix=pfx))
    lp = tensor(inputs, "log_probs", (2,))
    N, T = lp.shape
    ref = tensor(inputs, "ref_log_probs", (2,))
    same_shape(ref, lp.shape, "ref_log_probs")
    y = int_tensor(inputs, "outcomes", (1,), 0, 2)
    if len(y) != N:
        raise Reject("invalid_shape", "/outcomes")
    mask = tensor(inputs, "mask", (2,), required=False)
    if mask is None:
        mask = np.ones_like(lp)
    same_shape(mask, lp.shape, "mask")
    bad = np.argwhere((mask != 0) & (mask != 1))
    if len(bad):
        raise Reject("invalid_input", ptr("mask", *bad[0]))
    for name, a in (("log_probs", lp), ("ref_log_probs", ref)):
        bad = np.argwhere(a > 0)
        if len(bad):
            raise Reject("invalid_input", ptr(name, *bad[0]))
    ends = int_tensor(inputs, "step_ends", (2,), 0, T, allowed=(-1,), required=False)
    if ends is not None:
        if ends.shape[0] != N:
            raise Reject("invalid_shape", "/step_ends")
        for i in range(N):
            prev, padded = -1, False
            for k in range(ends.shape[1]):
                e = ends[i, k]
                if e == -1:
                    padded = True
                    continue
                if padded or e <= prev:  # padding only at the end; strictly increasing
                    raise Reject("invalid_input", ptr("step_ends", i, k))
                prev = e
    X = dict(log_probs=lp, ref_log_probs=ref, outcomes=y, mask=mask)
    if ends is not None:
        X["step_ends"] = ends
    return X, P, N


def eval_implicit_prm(X, P):
    lp, ref, y, mask, beta = X["log_probs"], X["ref_log_probs"], X["outcomes"], X["mask"], P["beta"]
    d = mask * (lp - ref)
    r = beta * np.sum(d, axis=1)
    ell = softplus(np.where(y == 1, -r, r))
    coef = beta * (sigmoid(r) - y)

    def vjp(c):
        return {"log_probs": (c * coef)[:, None] * mask}
    q = beta * np.cumsum(d, axis=1)
    extras = {"rewards": r.tolist(), "process_rewards": q.tolist()}
    if "step_ends" in X:
        ends = X["step_ends"]
        sr = []
        for i in range(len(y)):
            row, prev = [], 0.0
            for e in ends[i]:
                if e < 0:
                    row.append(None)
                else:
                    row.append(float(q[i, e] - prev))
                    prev = q[i, e]
            sr.append(row)
        extras["step_rewards"] = sr
    return ell, np.ones(len(y)), vjp, extras


register("implicit_prm", ["log_probs"])((prepare_implicit_prm, eval_implicit_prm))


# --- kl_div ------------------------------------------------------------------------

def check_prob_rows(t, name="targets"):
    bad = np.argwhere(t < 0)
    if len(bad):
        raise Reject("invalid_target", ptr(name, *bad[0]))
    bad = np.argwhere(np.abs(np.sum(t, axis=1) - 1.0) > 1e-6)
    if len(bad):
        raise Reject("invalid_target", ptr(name, bad[0][0]))


def prepare_kl_div(inputs, params, pfx=""):
    P = dict(temperature=num_param(params, "temperature", 1.0, 0.0, lo_open=True, prefix=pfx))
    z = tensor(inputs, "logits", (2,))
    t = tensor(inputs, "targets", (2,))
    same_shape(t, z.shape, "targets")
    check_prob_rows(t)
    return dict(logits=z, targets=t), P, z.shape[0]


def eval_kl_div(X, P):
    z, t, T = X["logits"], X["targets"], P["temperature"]
    lp = log_softmax(z / T)
    p = np.exp(lp)
    pos = t > 0
    logt = np.log(np.where(pos, t, 1.0))
    ell = T * T * np.sum(np.where(pos, t * (logt - lp), 0.0), axis=1)
    g = T * (p - t)

    def vjp(c):
        return {"logits": c[:, None] * g}
    extras = {"target_entropy": (-np.sum(np.where(pos, t * logt, 0.0), axis=1)).tolist(),
              "cross_entropy": (-np.sum(np.where(pos, t * lp, 0.0), axis=1)).tolist()}
    return ell, np.ones(z.shape[0]), vjp, extras


register("kl_div", ["logits"])((prepare_kl_div, eval_kl_div))


# --- comp_sum (first-wave definition, used by comp_sum_adversarial) -----------------

def comp_sum_rows(z, y, tau):
    """Comp-sum value and gradient per row (Mao, Mohri, Zhong 2023):
    tau = 1: -log p_y; else -expm1((tau-1) log p_y)/(tau-1); gradient
    p_y^(tau-1) * (softmax(z) - e_y)."""
    lp = log_softmax(z)
    p = np.exp(lp)
    N = z.shape[0]
    lpy = lp[np.arange(N), y]
    onehot = np.zeros_like(z)
    onehot[np.arange(N), y] = 1.0
    if tau == 1.0:
        return -lpy, p - onehot
    x = (tau - 1.0) * lpy
    if np.any(x > EXP_MAX):
        raise Reject("value_overflow", None)
    return -np.expm1(x) / (tau - 1.0), np.exp(x)[:, None] * (p - onehot)


def prepare_comp_sum(inputs, params, pfx=""):
    P = dict(tau=num_param(params, "tau", 1.0, 0.0, 2.0, prefix=pfx))
    z = tensor(inputs, "logits", (2,))
    y = int_tensor(inputs, "labels", (1,), 0, z.shape[1])
    if len(y) != z.shape[0]:
        raise Reject("invalid_shape", "/labels")
    return dict(logits=z, labels=y), P, z.shape[0]


def eval_comp_sum(X, P):
    ell, g = comp_sum_rows(X["logits"], X["labels"], P["tau"])

    def vjp(c):
        return {"logits": c[:, None] * g}
    return ell, np.ones(len(ell)), vjp, None


register("comp_sum", ["logits"])((prepare_comp_sum, eval_comp_sum))


# --- comp_sum_adversarial ----------------------------------------------------------

def prepare_csa(inputs, params, pfx=""):
    P = dict(tau=num_param(params, "tau", 1.0, 0.0, 2.0, prefix=pfx),
             nu=num_param(params, "nu", 1.0, 0.0, prefix=pfx))
    z = tensor(inputs, "logits", (2,))
    za = tensor(inputs, "adv_logits", (2,))
    same_shape(za, z.shape, "adv_logits")
    y = int_tensor(inputs, "labels", (1,), 0, z.shape[1])
    if len(y) != z.shape[0]:
        raise Reject("invalid_shape", "/labels")
    return dict(logits=z, adv_logits=za, labels=y), P, z.shape[0]


def eval_csa(X, P):
    z, za, y, nu = X["logits"], X["adv_logits"], X["labels"], P["nu"]
    N, C = z.shape
    cs, gcs = comp_sum_rows(z, y, P["tau"])
    ar = np.arange(N)
    # margin vectors rho(z)_k = z_y - z_k, k != y (the k = y entry is 0 and drops out)
    rho = z[ar, y][:, None] - z
    rho_a = za[ar, y][:, None] - za
    v = rho_a - rho
    v[ar, y] = 0.0
    M = np.max(np.abs(v), axis=1)
    Ms = np.where(M > 0, M, 1.0)
    nrm = M * np.sqrt(np.sum((v / Ms[:, None]) ** 2, axis=1))
    # d||v||/dz'_k = -v_k/||v|| (k != y), d||v||/dz'_y = sum_k v_k/||v||; zero norm -> 0
    u = np.where(nrm[:, None] > 0, v / np.where(nrm > 0, nrm, 1.0)[:, None], 0.0)
    gadv = -u
    gadv[ar, y] = np.sum(u, axis=1)
    ell = cs + nu * nrm
    if not (np.all(np.isfinite(ell)) and np.all(np.isfinite(gcs))):
        raise Reject("value_overflow", None)

    def vjp(c):
        return {"logits": c[:, None] * (gcs - nu * gadv), "adv_logits": c[:, None] * (nu * gadv)}
    return ell, np.ones(N), vjp, None


register("comp_sum_adversarial", ["logits", "adv_logits"])((prepare_csa, eval_csa))


# --- normalized_softmax ------------------------------------------------------------

def prepare_ns(inputs, params, pfx=""):
    P = dict(scale=num_param(params, "scale", 16.0, 0.0, lo_open=True, prefix=pfx),
             margin=num_param(params, "margin", 0.0, 0.0, 1.0, hi_open=True, prefix=pfx),
             batch_negatives=bool_param(params, "batch_negatives", False, prefix=pfx),
             filter_threshold=num_param(params, "filter_threshold", None, -1.0, 1.0,
                                        lo_open=True, nullable=True, prefix=pfx))
    E = tensor(inputs, "embeddings", (2,))
    W = tensor(inputs, "prototypes", (2,))
    if W.shape[1] != E.shape[1]:
        raise Reject("invalid_shape", "/prototypes")
    y = int_tensor(inputs, "labels", (1,), 0, W.shape[0])
    if len(y) != E.shape[0]:
        raise Reject("invalid_shape", "/labels")
    for name, A in (("embeddings", E), ("prototypes", W)):
        _, n = unit_rows(A)
        bad = np.argwhere(n[:, 0] < 1e-12)
        if len(bad):
            raise Reject("invalid_input", ptr(name, bad[0][0]))
    return dict(embeddings=E, prototypes=W, labels=y), P, E.shape[0]


def ns_negatives(X, P):
    """In-batch negatives kept (and filtered) for each anchor."""
    U, _ = unit_rows(X["embeddings"])
    y = X["labels"]
    B = U @ U.T
    neg = y[:, None] != y[None, :]
    if not P["batch_negatives"]:
        z = np.zeros_like(neg)
        return B, z, z
    thr = P["filter_threshold"]
    keep = neg & (B <= thr) if thr is not None else neg.copy()
    return B, keep, neg & ~keep


def eval_ns(X, P):
    E, W, y = X["embeddings"], X["prototypes"], X["labels"]
    s, m = P["scale"], P["margin"]
    U, nu = unit_rows(E)
    V, nv = unit_rows(W)
    N, C = len(y), W.shape[0]
    ar = np.arange(N)
    onehot = np.zeros((N, C))
    onehot[ar, y] = 1.0
    A = s * (U @ V.T - m * onehot)
    B, keep, filtered = ns_negatives(X, P)
    Bs = np.where(keep, s * B, -np.inf)
    allv = np.concatenate([A, Bs], axis=1)
    L = lse(allv, axis=1)
    ell = L - A[ar, y]
    Pr = np.exp(allv - L[:, None])
    dA = Pr[:, :C] - onehot            # d ell_i / d a_ic
    dB = np.where(keep, Pr[:, C:], 0.0)  # d ell_i / d b_ik

    def vjp(c):
        gA = s * c[:, None] * dA
        gB = s * c[:, None] * dB
        gU = gA @ V + gB @ U + gB.T @ U
        gV = gA.T @ U
        return {"embeddings": unit_rows_backward(U, nu, gU),
                "prototypes": unit_rows_backward(V, nv, gV)}
    return ell, np.ones(N), vjp, {"filtered_pairs": int(filtered.sum())}


register("normalized_softmax", ["embeddings", "prototypes"])((prepare_ns, eval_ns))


# --- segmentation: soft skeleton by min/max pooling ---------------------------------

def _offsets(nd, shape):
    if shape == "plus":
        out = [(0,) * nd]
        for a in range(nd):
            for s in (-1, 1):
                o = [0] * nd
                o[a] = s
                out.append(tuple(o))
        return out
    return list(itertools.product((-1, 0, 1), repeat=nd))


def pool(x, shape, op):
    """Min or max over a clipped 3-wide window (plus-shaped or full) around each
    point of the trailing spatial axes of x [B, *S]. Returns (out, src) with src the
    flat index in x of the winning element (first in window order on ties)."""
    B, S = x.shape[0], x.shape[1:]
    nd = len(S)
    fill = np.inf if op == "min" else -np.inf
    pad = [(0, 0)] + [(1, 1)] * nd
    xp = np.pad(x, pad, constant_values=fill)
    ip = np.pad(np.arange(x.size).reshape(x.shape), pad, constant_values=-1)
    vals, ids = [], []
    for o in _offsets(nd, shape):
        sl = (slice(None),) + tuple(slice(1 + oi, 1 + oi + n) for oi, n in zip(o, S))
        vals.append(xp[sl])
        ids.append(ip[sl])
    vals, ids = np.stack(vals), np.stack(ids)
    k = (np.argmin if op == "min" else np.argmax)(vals, axis=0)[None]
    return np.take_along_axis(vals, k, 0)[0], np.take_along_axis(ids, k, 0)[0]


def scatter(g, src, shape):
    return np.bincount(src.ravel(), weights=g.ravel(), minlength=int(np.prod(shape))).reshape(shape)


def erode(x):
    return pool(x, "plus", "min")


def soft_open(x):
    e, se = erode(x)
    o, so = pool(e, "full", "max")
    return o, (se, so)


def open_backward(g, srcs, shape):
    se, so = srcs
    return scatter(scatter(g, so, shape), se, shape)


def soft_skeleton(img, iterations):
    """Soft skeleton of img [B, *S]; returns (skel, backward) where backward(gS)
    gives the (sub)gradient with respect to img. relu'(0) = 0."""
    x = img
    o, osrc = soft_open(x)
    dd0 = x - o
    skel = np.maximum(dd0, 0.0)
    steps = []
    for _ in range(iterations):
        xn, sx = erode(x)
        o, os_ = soft_open(xn)
        dd = xn - o
        delta = np.maximum(dd, 0.0)
        t = delta - skel * delta
        steps.append(dict(sx=sx, osrc=os_, dd=dd, delta=delta, skel=skel, t=t))
        skel = skel + np.maximum(t, 0.0)
        x = xn

    def backward(gS):
        shape = img.shape
        g_skel = gS.copy()
        g_next = np.zeros(shape)       # gradient arriving at x_{j+1} from later steps
        for st in reversed(steps):
            gt = g_skel * (st["t"] > 0)
            g_delta = gt * (1.0 - st["skel"])
            g_skel = g_skel - gt * st["delta"]
            g_dd = g_delta * (st["dd"] > 0)
            g_x = g_next + g_dd - open_backward(g_dd, st["osrc"], shape)
            g_next = scatter(g_x, st["sx"], shape)   # x_{j+1} = erode(x_j)
        g0 = g_skel * (dd0 > 0)
        return g_next + g0 - open_backward(g0, osrc, shape)
    return skel, backward


def prepare_seg(loss):
    def prepare(inputs, params, pfx=""):
        P = dict(include_background=bool_param(params, "include_background", False, prefix=pfx),
                 smooth=num_param(params, "smooth", 1.0, 0.0, prefix=pfx))
        if loss == "cldice":
            P["iterations"] = num_param(params, "iterations", 3, 0, integer=True, prefix=pfx)
            P["alpha"] = num_param(params, "alpha", 0.5, 0.0, 1.0, prefix=pfx)
        z = tensor(inputs, "logits", (4, 5))
        N, C = z.shape[:2]
        if C < 2:
            raise Reject("invalid_shape", "/logits")
        sp = z.shape[2:]
        X = dict(logits=z)
        if loss == "skeleton_recall":
            k = int_tensor(inputs, "skeleton", (z.ndim - 1,), 0, C)
            same_shape(k, (N,) + sp, "skeleton")
            X["skeleton"] = k
        else:
            has_l, has_t = "labels" in inputs, "targets" in inputs
            if has_l == has_t:
                raise Reject("missing_field", "/labels")
            if has_l:
                lab = tensor(inputs, "labels", (z.ndim - 1,))
                same_shape(lab, (N,) + sp, "labels")
                X["labels"] = int_tensor(inputs, "labels", (z.ndim - 1,), 0, C)
            else:
                t = tensor(inputs, "targets", (z.ndim,))
                same_shape(t, z.shape, "targets")
                bad = np.argwhere((t < 0) | (t > 1))
                if len(bad):
                    raise Reject("invalid_target", ptr("targets", *bad[0]))
                X["targets"] = t
        return X, P, N
    return prepare


def one_hot_maps(lab, C):
    """[N, *S] class map -> [N, C, *S] 0/1 masks."""
    shp = (1, C) + (1,) * (lab.ndim - 1)
    return (lab[:, None] == np.arange(C).reshape(shp)).astype(float)


def eval_seg(loss):
    def evaluate(X, P):
        z = X["logits"]
        N, C = z.shape[:2]
        sp_axes = tuple(range(2, z.ndim))
        p = softmax(z, axis=1)
        eps = P["smooth"]
        kept = np.arange(C) if P["include_background"] else np.arange(1, C)
        if loss == "skeleton_recall":
            k = one_hot_maps(X["skeleton"], C)
            K = np.sum(k, axis=sp_axes)
            R = (np.sum(p * k, axis=sp_axes) + eps) / (K + eps)
            Lc = 1.0 - R
            dLdp = -k / np.expand_dims(K + eps, sp_axes)
        else:
            g = one_hot_maps(X["labels"], C) if "labels" in X else X["targets"]
            I = np.sum(p * g, axis=sp_axes)
            Sp, Sg = np.sum(p, axis=sp_axes), np.sum(g, axis=sp_axes)
            den = Sp + Sg + eps
            D = (2.0 * I + eps) / den
            dice = 1.0 - D
            ddice = -(2.0 * g - np.expand_dims(D, sp_axes)) / np.expand_dims(den, sp_axes)
            if loss == "dice":
                Lc, dLdp = dice, ddice
            else:
                a, it = P["alpha"], P["iterations"]
                flat = (N * C,) + z.shape[2:]
                skp, skp_back = soft_skeleton(p.reshape(flat), it)
                skg, _ = soft_skeleton(g.reshape(flat), it)
                skp, skg = skp.reshape(z.shape), skg.reshape(z.shape)
                SSp, SSg = np.sum(skp, axis=sp_axes), np.sum(skg, axis=sp_axes)
                Tp = (np.sum(skp * g, axis=sp_axes) + eps) / (SSp + eps)
                Ts = (np.sum(skg * p, axis=sp_axes) + eps) / (SSg + eps)
                H = 2.0 * Tp * Ts / (Tp + Ts)
                Lc = (1.0 - a) * dice + a * (1.0 - H)
                dH_dTp = 2.0 * Ts ** 2 / (Tp + Ts) ** 2
                dH_dTs = 2.0 * Tp ** 2 / (Tp + Ts) ** 2
                ex = lambda v: np.expand_dims(v, sp_axes)
                dTp_dS = (g - ex(Tp)) / ex(SSp + eps)
                dTs_dp = skg / ex(SSg + eps)
                through_skel = skp_back((ex(dH_dTp) * dTp_dS).reshape(flat)).reshape(z.shape)
                dLdp = (1.0 - a) * ddice - a * (through_skel + ex(dH_dTs) * dTs_dp)
        ell = np.mean(Lc[:, kept], axis=1)
        mask = np.zeros(C)
        mask[kept] = 1.0 / len(kept)
        shp = (1, C) + (1,) * len(sp_axes)

        def vjp(c):
            gp = dLdp * mask.reshape(shp) * c.reshape((N,) + (1,) * (z.ndim - 1))
            gz = p * (gp - np.sum(p * gp, axis=1, keepdims=True))
            return {"logits": gz}
        return ell, np.ones(N), vjp, None
    return evaluate


for _name in ("dice", "cldice", "skeleton_recall"):
    register(_name, ["logits"])((prepare_seg(_name), eval_seg(_name)))


# --- first-wave losses used inside composite requests ------------------------------

def prepare_ce(inputs, params, pfx=""):
    z = tensor(inputs, "logits", (2,))
    has_l, has_t = "labels" in inputs, "targets" in inputs
    if has_l == has_t:
        raise Reject("missing_field", "/labels")
    X = dict(logits=z)
    if has_l:
        y = int_tensor(inputs, "labels", (1,), 0, z.shape[1])
        if len(y) != z.shape[0]:
            raise Reject("invalid_shape", "/labels")
        X["labels"] = y
    else:
        t = tensor(inputs, "targets", (2,))
        same_shape(t, z.shape, "targets")
        check_prob_rows(t)
        X["targets"] = t
    return X, {}, z.shape[0]


def eval_ce(X, P):
    """cross_entropy without class weights or smoothing: -sum_c t_c log p_c."""
    z = X["logits"]
    N = z.shape[0]
    lp = log_softmax(z)
    if "labels" in X:
        t = np.zeros_like(z)
        t[np.arange(N), X["labels"]] = 1.0
    else:
        t = X["targets"]
    ell = -np.sum(np.where(t > 0, t * lp, 0.0), axis=1)
    g = np.sum(t, axis=1, keepdims=True) * np.exp(lp) - t

    def vjp(c):
        return {"logits": c[:, None] * g}
    return ell, np.ones(N), vjp, None


register("cross_entropy", ["logits"])((prepare_ce, eval_ce))


def prepare_bce(inputs, params, pfx=""):
    z = tensor(inputs, "logits", (2,))
    t = tensor(inputs, "targets", (2,))
    same_shape(t, z.shape, "targets")
    bad = np.argwhere((t < 0) | (t > 1))
    if len(bad):
        raise Reject("invalid_target", ptr("targets", *bad[0]))
    return dict(logits=z, targets=t), {}, z.shape[0]


def eval_bce(X, P):
    """binary_cross_entropy: sum_j t softplus(-x) + (1-t) softplus(x); d = C."""
    x, t = X["logits"], X["targets"]
    ell = np.sum(t * softplus(-x) + (1 - t) * softplus(x), axis=1)
    g = (1 - t) * sigmoid(x) - t * sigmoid(-x)

    def vjp(c):
        return {"logits": c[:, None] * g}
    return ell, np.full(x.shape[0], float(x.shape[1])), vjp, None


register("binary_cross_entropy", ["logits"])((prepare_bce, eval_bce))


# ----------------------------------------------------------------------------------
# reductions and requests
# ----------------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum", "none", "group_mean")


def check_reduction(loss, reduction, inputs, R, field):
    if reduction not in REDUCTIONS:
        raise Reject("invalid_param", field)
    spec = LOSSES[loss]
    if not spec["row_separable"] and reduction in ("none", "group_mean"):
        raise Reject("invalid_input", field)
    if reduction == "group_mean":
        g = int_tensor(inputs, "groups", (1,))
        if len(g) != R:
            raise Reject("invalid_shape", "/groups")
        return g
    return None


def coefficients(reduction, s, d, groups):
    """Per-row coefficients c with reduced value = sum_r c_r * ell_r; and extras."""
    if reduction == "sum":
        return s, None
    if reduction == "mean":
        Dn = float(np.sum(s * d))
        return (s / Dn if Dn > 0 else np.zeros_like(s)), None
    ids = np.unique(groups)
    c = np.zeros_like(s)
    for gid in ids:
        m = groups == gid
        Dn = float(np.sum(s[m] * d[m]))
        if Dn > 0:
            c[m] = s[m] / Dn / len(ids)
    return c, ids


def group_values(ell, s, d, groups):
    out = []
    for gid in np.unique(groups):
        m = groups == gid
        Dn = float(np.sum(s[m] * d[m]))
        out.append(float(np.sum(s[m] * ell[m]) / Dn) if Dn > 0 else 0.0)
    return out


def run_loss(loss, inputs, params, reduction="mean", pfx=""):
    """Validate and evaluate one loss over `inputs`; returns a dict with ell, d, s,
    c, value, vjp, extras."""
    if loss not in LOSSES:
        raise Reject("unknown_loss", pfx + "/loss")
    spec = LOSSES[loss]
    field_red = pfx + "/reduction"
    if reduction not in REDUCTIONS:
        raise Reject("invalid_param", field_red)
    if not spec["row_separable"] and reduction in ("none", "group_mean"):
        raise Reject("invalid_input", field_red)
    X, P, R = spec["prepare"](inputs, params, pfx)
    s = sample_weights(inputs, R, spec["weights_ok"])
    groups = check_reduction(loss, reduction, inputs, R, field_red)
    ell, d, vjp, extras = spec["evaluate"](X, P)
    if not spec["row_separable"]:
        s = np.ones(1)
    c, _ = coefficients(reduction if reduction != "none" else "sum", s, d, groups)
    value = float(np.sum(c * ell))
    if reduction == "group_mean":
        extras = dict(extras or {})
        extras["group_values"] = group_values(ell, s, d, groups)
    return dict(X=X, P=P, ell=ell, d=d, s=s, c=c, value=value, vjp=vjp, extras=extras,
                reduction=reduction)


# ----------------------------------------------------------------------------------
# finite differences
# ----------------------------------------------------------------------------------

def fd_check(f, inputs, analytic, names, absolute=False):
    """Central differences of scalar f(inputs) for every entry of each named input;
    returns max |analytic - FD|, asserting it is below FD_RTOL relative. The step is
    1e-6 relative to the entry, or (absolute=True, for huge logits whose small
    differences matter) 1e-6 * max(1, |f|)^(1/3), balancing rounding of f against
    the truncation error."""
    worst, scale = 0.0, 1.0
    f0 = abs(f(inputs))
    for name in names:
        base = np.asarray(inputs[name], float)
        ga = np.asarray(analytic[name], float)
        scale = max(scale, float(np.max(np.abs(ga))) if ga.size else 0.0)
        fd = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            h = 1e-6 * (max(1.0, f0) ** (1 / 3) if absolute else max(1.0, abs(base[idx])))
            xp, xm = base.copy(), base.copy()
            xp[idx] += h
            xm[idx] -= h
            fp = f(dict(inputs, **{name: xp}))
            fm = f(dict(inputs, **{name: xm}))
            fd[idx] = (fp - fm) / (xp[idx] - xm[idx])
        worst = max(worst, float(np.max(np.abs(fd - ga))))
    assert worst <= FD_RTOL * scale, (worst, scale)
    return worst


# ----------------------------------------------------------------------------------
# JSON helpers
# ----------------------------------------------------------------------------------

def js(x):
    if isinstance(x, dict):
        return {k: js(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [js(v) for v in x]
    if isinstance(x, np.ndarray):
        return js(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        assert math.isfinite(x), x
        return x
    return x


def dec(a, k=4):
    """Round to k decimals through the decimal string, so the JSON shows it exactly."""
    a = np.asarray(a, float)
    return np.vectorize(lambda v: float(f"{v:.{k}f}"))(a) if a.size else a


def clean_extras(extras):
    def fix(v):
        if isinstance(v, list):
            return [fix(u) for u in v]
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v
    return None if extras is None else {k: fix(js(v)) for k, v in extras.items()}


# ----------------------------------------------------------------------------------
# case builders
# ----------------------------------------------------------------------------------

CASES = []
NAMES = set()


def add(case):
    assert case["name"] not in NAMES, case["name"]
    NAMES.add(case["name"])
    CASES.append(case)
    return case


def case(name, loss, inputs, params=None, note=None, fd=True):
    """A valid single-loss request: values/mean/sum/grad_mean/extras."""
    params = params or {}
    inputs = json.loads(json.dumps(js(inputs)))
    spec = LOSSES[loss]
    rm = run_loss(loss, inputs, params, "mean")
    rs = run_loss(loss, inputs, params, "sum")
    grad = rm["vjp"](rm["c"])
    out = dict(name=name, loss=loss, inputs=inputs, params=params)
    if note:
        out["note"] = note
    if spec["row_separable"]:
        out["values"] = js(rm["s"] * rm["ell"])
        out["mean_denominator"] = float(np.sum(rm["s"] * rm["d"]))
    else:
        out["values"] = None
        out["mean_denominator"] = 1.0
    out["mean"] = rm["value"]
    out["sum"] = rs["value"]
    if spec["row_separable"]:
        assert abs(out["sum"] - float(np.sum(rm["s"] * rm["ell"]))) <= 1e-12 * max(1, abs(out["sum"]))
    out["grad_mean"] = {k: js(grad[k]) for k in spec["grad_inputs"]}
    ex = clean_extras(rm["extras"])
    if ex is not None:
        out["extras"] = ex
    if fd:
        c = rm["c"]

        def f(inp):
            X = dict(rm["X"], **{k: inp[k] for k in spec["grad_inputs"]})
            return float(np.sum(c * spec["evaluate"](X, rm["P"])[0]))
        out["fd_max_abs_err"] = fd_check(f, {k: rm["X"][k] for k in spec["grad_inputs"]}, grad,
                                         spec["grad_inputs"], absolute=(fd == "abs"))
    js(out)  # asserts every number is finite
    return add(out)


def error_case(name, loss, inputs, params, code, field, reduction=None, note=None):
    """A request the service must reject (single fault); the validator above must
    agree with the declared code and field."""
    inputs = json.loads(json.dumps(js(inputs)))
    try:
        run_loss(loss, inputs, params, reduction or "mean")
        raise AssertionError(f"{name}: not rejected")
    except Reject as r:
        assert (r.code, r.field) == (code, field), (name, r.code, r.field)
    out = dict(name=name, loss=loss, inputs=inputs, params=params)
    if reduction is not None:
        out["reduction"] = reduction
    if note:
        out["note"] = note
    out["expected_error"] = {"status": 422, "code": code, "field": field}
    return add(out)


# --- composite requests -------------------------------------------------------------

def run_request(body):
    """Evaluate a POST /v1/loss body with `loss` or `losses` (and reduction
    group_mean); returns (answer, total_fn) where total_fn(inputs) recomputes the
    reduced value (single) or the weighted total (several) for finite differences."""
    inputs = {k: v for k, v in body.items() if k not in ("loss", "losses", "params", "reduction")}
    if "losses" not in body:
        loss, params, red = body["loss"], body.get("params", {}), body.get("reduction", "mean")
        r = run_loss(loss, inputs, params, red)
        grad = r["vjp"](r["c"])
        ans = {"loss": loss, "reduction": red, "value": r["value"],
               "grad": {k: js(grad[k]) for k in LOSSES[loss]["grad_inputs"]}}
        ex = clean_extras(r["extras"])
        if ex is not None:
            ans["extras"] = ex
        names = LOSSES[loss]["grad_inputs"]

        def total(inp):
            X = dict(r["X"], **{k: inp[k] for k in names})
            return float(np.sum(r["c"] * LOSSES[loss]["evaluate"](X, r["P"])[0]))
        return ans, total, {k: r["X"][k] for k in names}, grad

    entries = body["losses"]
    logits_full = np.asarray(inputs["logits"], float) if "logits" in inputs else None
    prepared = []
    for i, e in enumerate(entries):
        pfx = f"/losses/{i}"
        w = e.get("weight", 1)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise Reject("invalid_param", pfx + "/weight")
        cols = e.get("columns")
        sub = dict(inputs)
        if cols is not None:
            if logits_full is None:
                raise Reject("missing_field", "/logits")
            C = logits_full.shape[-1]
            if (not isinstance(cols, list) or len(cols) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in cols)
                    or not (0 <= cols[0] < cols[1] <= C)):
                raise Reject("invalid_param", pfx + "/columns")
            lo, hi = cols
            sub["logits"] = logits_full[..., lo:hi].tolist()
            if "targets" in inputs and np.asarray(inputs["targets"]).shape[-1] == C:
                sub["targets"] = np.asarray(inputs["targets"], float)[..., lo:hi].tolist()
        r = run_loss(e["loss"], sub, e.get("params", {}), e.get("reduction", "mean"), pfx)
        prepared.append((e, float(w), cols, r))

    grad_names = sorted({k for e, _, _, r in prepared for k in LOSSES[e["loss"]]["grad_inputs"]})
    full = {k: np.asarray(inputs[k], float) for k in grad_names}

    def place(k, g, cols):
        out = np.zeros_like(full[k])
        if k == "logits" and cols is not None:
            out[..., cols[0]:cols[1]] = g
        else:
            out += g
        return out

    results, tot, tgrad = [], 0.0, {k: np.zeros_like(v) for k, v in full.items()}
    for e, w, cols, r in prepared:
        g = r["vjp"](r["c"])
        res = {"loss": e["loss"], "reduction": r["reduction"], "value": r["value"]}
        if cols is None:  # per-entry gradients are only given for unsliced entries
            res["grad"] = {k: js(g[k]) for k in LOSSES[e["loss"]]["grad_inputs"]}
        ex = clean_extras(r["extras"])
        if ex is not None:
            res["extras"] = ex
        results.append(res)
        tot += w * r["value"]
        for k in LOSSES[e["loss"]]["grad_inputs"]:
            tgrad[k] += w * place(k, g[k], cols)
    ans = {"results": results, "total": {"value": tot, "grad": {k: js(v) for k, v in tgrad.items()}}}

    def total(inp):
        t = 0.0
        for e, w, cols, r in prepared:
            X = dict(r["X"])
            for k in LOSSES[e["loss"]]["grad_inputs"]:
                v = inp[k]
                X[k] = v[..., cols[0]:cols[1]] if (k == "logits" and cols is not None) else v
            t += w * float(np.sum(r["c"] * LOSSES[e["loss"]]["evaluate"](X, r["P"])[0]))
        return t
    return ans, total, full, tgrad


def composite_case(name, body, note):
    body = json.loads(json.dumps(js(body)))
    body["return_grad"] = True
    ans, total, full, tgrad = run_request(body)
    fd = fd_check(total, full, tgrad, list(full))
    out = dict(name=name, note=note, composite={"request": body, "expected": js(ans)}, fd_max_abs_err=fd)
    return add(out)


def composite_error(name, body, code, field, note=None):
    body = json.loads(json.dumps(js(body)))
    try:
        run_request(body)
        raise AssertionError(f"{name}: not rejected")
    except Reject as r:
        assert (r.code, r.field) == (code, field), (name, r.code, r.field)
    out = dict(name=name)
    if note:
        out["note"] = note
    out["composite"] = {"request": body}
    out["expected_error"] = {"status": 422, "code": code, "field": field}
    return add(out)


# ----------------------------------------------------------------------------------
# the vectors
# ----------------------------------------------------------------------------------

def prob_rows(rng, N, C, zeros=()):
    """Rows of 4-decimal probabilities summing to 1 (last entry absorbs rounding)."""
    T = softmax(rng.normal(size=(N, C)) * 1.2)
    for (i, j) in zeros:
        T[i, j] = 0.0
    T = T / T.sum(1, keepdims=True)
    T = dec(T)
    for i in range(N):
        nz = [j for j in range(C) if T[i, j] > 0]
        last = nz[-1]
        T[i, last] = float(f"{1.0 - (T[i].sum() - T[i, last]):.4f}")
    assert np.all(T >= 0) and np.all(np.abs(T.sum(1) - 1) < 1e-9)
    return T


def build_tcm():
    rng = np.random.default_rng(2024)
    E = dec(rng.normal(size=(6, 4)))
    # pull each same-label pair a little together so some positives are easy
    y = [0, 0, 1, 1, 2, 2]
    E[1] = dec(0.7 * E[0] + 0.5 * E[1])
    E[3] = dec(0.9 * E[2] + 0.3 * E[3])
    P = dict(margin_plus=0.9, margin_minus=0.5)
    _, _, S, same, diff, _, _ = tcm_pairs(dict(embeddings=E, labels=np.array(y)), P)
    gaps = np.concatenate([np.abs(S[same] - 0.9), np.abs(S[diff] - 0.5),
                           np.abs(S[same] - 0.5), np.abs(S[diff] - 0.0)])
    assert gaps.min() > 1e-3, gaps.min()  # no pair near a kink for the FD checks
    b = case("tcm_basic", "tcm", dict(embeddings=E, labels=y))
    assert b["extras"]["hard_positive_pairs"] > 0 and b["extras"]["hard_negative_pairs"] > 0
    case("tcm_params", "tcm", dict(embeddings=E, labels=y),
         dict(lambda_plus=0.5, lambda_minus=2.0, margin_plus=0.5, margin_minus=0.0))
    u = case("tcm_unnormalized", "tcm", dict(embeddings=E, labels=y), dict(normalize=False),
             note="normalize=false still uses the cosine: same as tcm_basic")
    assert u["mean"] == b["mean"]
    case("tcm_large_scale", "tcm", dict(embeddings=E * 1e30, labels=y),
         note="embeddings of tcm_basic times 1e30: same value (cosines are scale invariant), gradient times 1e-30")
    # cosines exactly +-1: same label antipodal (hard, S=-1), different label identical
    # directions (hard, S=+1), same label identical (easy), different label antipodal (easy)
    Ex = [[2.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -2.0]]
    yx = [0, 0, 1, 2, 3, 4]
    c = case("tcm_cosines_pm1", "tcm", dict(embeddings=Ex, labels=yx),
             note="cosines exactly -1, 0 and +1: rows 0,1 same label antipodal (hard positive, S=-1); "
                  "rows 2,3 different labels, same direction (hard negative, S=+1); the rest easy")
    assert c["extras"] == {"hard_positive_pairs": 2, "hard_negative_pairs": 2}
    assert abs(c["mean"] - ((0.9 + 1.0) + (1.0 - 0.5))) < 1e-15
    Ee = [[1.0, 0.2, 0.0], [0.9, 0.25, 0.05], [-1.0, 0.1, 0.3], [-0.8, 0.0, 0.4]]
    e = case("tcm_no_hard_pairs", "tcm", dict(embeddings=Ee, labels=[0, 0, 1, 1]),
             note="every positive pair has S >= 0.9 and every negative pair S <= 0.5: value 0, gradient 0")
    assert e["mean"] == 0.0 and e["extras"] == {"hard_positive_pairs": 0, "hard_negative_pairs": 0}
    case("tcm_single_row", "tcm", dict(embeddings=[[0.3, -0.4]], labels=[7]),
         note="one row, no pairs: 0")
    Eb = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    bb = case("tcm_margin_boundary", "tcm", dict(embeddings=Eb, labels=[0, 0, 1, 1]),
              dict(margin_plus=0.0, margin_minus=0.0), fd=False,
              note="S = margin exactly (orthogonal rows 0,1 with m+ = 0; rows 0,2 and 1,2 with m- = 0) is not hard; "
                   "rows 2,3 (S = 0, same label) not hard either; rows 0,3 and 1,3 (different labels, S = 0.7071) are. "
                   "At a kink: no finite-difference check")
    assert bb["extras"] == {"hard_positive_pairs": 0, "hard_negative_pairs": 4}
    base = dict(embeddings=E, labels=y)
    error_case("tcm_err_reduction_none", "tcm", base, {}, "invalid_input", "/reduction", reduction="none",
               note="tcm is one number per batch: reduction none is rejected")
    error_case("tcm_err_group_mean", "tcm", dict(base, groups=[0, 0, 1, 1, 2, 2]), {}, "invalid_input",
               "/reduction", reduction="group_mean", note="tcm is not row-separable")
    error_case("tcm_err_sample_weights", "tcm", dict(base, sample_weights=[1.0] * 6), {}, "invalid_input",
               "/sample_weights")
    error_case("tcm_err_margin", "tcm", base, dict(margin_plus=1.5), "invalid_param", "/params/margin_plus")
    error_case("tcm_err_margin_minus", "tcm", base, dict(margin_minus=-1.25), "invalid_param",
               "/params/margin_minus")
    error_case("tcm_err_zero_norm", "tcm", dict(embeddings=[[1.0, 0.0], [0.5, 0.5], [0.0, 0.0]], labels=[0, 1, 1]),
               {}, "invalid_input", "/embeddings/2")
    error_case("tcm_err_no_labels", "tcm", dict(embeddings=E), {}, "missing_field", "/labels")
    error_case("tcm_err_labels_count", "tcm", dict(embeddings=E, labels=[0, 0, 1]), {}, "invalid_shape", "/labels")
    error_case("tcm_err_label_float", "tcm", dict(embeddings=E, labels=[0, 0.5, 1, 1, 2, 2]), {}, "invalid_label",
               "/labels/1")


def build_implicit_prm():
    rng = np.random.default_rng(7)
    N, T = 4, 6
    lp = dec(-np.abs(rng.normal(size=(N, T))) * 1.5)
    ref = dec(-np.abs(rng.normal(size=(N, T))) * 1.5)
    y = [1, 0, 1, 0]
    base = dict(log_probs=lp, ref_log_probs=ref, outcomes=y)
    b = case("implicit_prm_basic", "implicit_prm", base)
    # cross-check: value = BCE of sigmoid(r) against the outcome
    r = np.array(b["extras"]["rewards"])
    bce = -(np.array(y) * np.log(sigmoid(r)) + (1 - np.array(y)) * np.log(sigmoid(-r)))
    assert np.allclose(b["values"], bce, rtol=1e-13, atol=0)
    mask = [[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    m = case("implicit_prm_mask_beta0.5", "implicit_prm", dict(base, mask=mask), dict(beta=0.5),
             note="row 2 is fully masked: r = 0, value log 2, zero gradient; process rewards stay flat on padding")
    assert abs(m["values"][2] - math.log(2)) < 1e-15
    ends = [[1, 3, 4], [0, 2, -1], [-1, -1, -1], [5, -1, -1]]
    case("implicit_prm_step_ends", "implicit_prm", dict(base, mask=mask, step_ends=ends), dict(beta=0.2),
         note="step_rewards: q at each step end minus q at the previous one (0 before the first); null for -1 padding")
    case("implicit_prm_sample_weights", "implicit_prm", dict(base, sample_weights=[0.5, 2.0, 0.0, 1.0]))
    lpx = [[-10000.0, -10000.0, -10000.0], [0.0, 0.0, 0.0], [0.0, -0.5, 0.0], [-10000.0, 0.0, 0.0]]
    refx = [[0.0, 0.0, 0.0], [-10000.0, -10000.0, -10000.0], [-10000.0, -10000.0, -10000.0], [0.0, 0.0, 0.0]]
    x = case("implicit_prm_extreme", "implicit_prm", dict(log_probs=lpx, ref_log_probs=refx, outcomes=[1, 0, 1, 0]),
             dict(beta=1.0),
             note="|r| up to 3e4: the wrong-sided rows cost |r| exactly, the right-sided ones 0 (softplus, no overflow)")
    assert x["values"] == [30000.0, 30000.0, 0.0, 0.0]
    error_case("implicit_prm_err_beta", "implicit_prm", base, dict(beta=0.0), "invalid_param", "/params/beta")
    bad = lp.copy(); bad[1, 2] = 0.25
    error_case("implicit_prm_err_log_prob_positive", "implicit_prm", dict(base, log_probs=bad), {}, "invalid_input",
               "/log_probs/1/2")
    badr = ref.copy(); badr[0, 3] = 0.5
    error_case("implicit_prm_err_ref_positive", "implicit_prm", dict(base, ref_log_probs=badr), {}, "invalid_input",
               "/ref_log_probs/0/3")
    error_case("implicit_prm_err_ref_shape", "implicit_prm", dict(base, ref_log_probs=ref[:, :5]), {},
               "invalid_shape", "/ref_log_probs")
    error_case("implicit_prm_err_outcome_range", "implicit_prm", dict(base, outcomes=[1, 0, 2, 0]), {},
               "invalid_label", "/outcomes/2")
    error_case("implicit_prm_err_outcome_float", "implicit_prm", dict(base, outcomes=[1, 0.5, 1, 0]), {},
               "invalid_label", "/outcomes/1")
    error_case("implicit_prm_err_outcomes_count", "implicit_prm", dict(base, outcomes=[1, 0, 1]), {},
               "invalid_shape", "/outcomes")
    error_case("implicit_prm_err_no_outcomes", "implicit_prm", dict(log_probs=lp, ref_log_probs=ref), {},
               "missing_field", "/outcomes")
    badm = [row[:] for row in mask]; badm[1][1] = 0.5
    error_case("implicit_prm_err_mask", "implicit_prm", dict(base, mask=badm), {}, "invalid_input", "/mask/1/1")
    error_case("implicit_prm_err_step_order", "implicit_prm", dict(base, step_ends=[[3, 1, -1], [0, 2, -1],
               [-1, -1, -1], [5, -1, -1]]), {}, "invalid_input", "/step_ends/0/1",
               note="step ends must be strictly increasing")
    error_case("implicit_prm_err_step_gap", "implicit_prm", dict(base, step_ends=[[1, 3, 4], [0, -1, 2],
               [-1, -1, -1], [5, -1, -1]]), {}, "invalid_input", "/step_ends/1/2",
               note="-1 padding only at the end of a row")
    error_case("implicit_prm_err_step_range", "implicit_prm", dict(base, step_ends=[[1, 3, 6], [0, 2, -1],
               [-1, -1, -1], [5, -1, -1]]), {}, "invalid_label", "/step_ends/0/2",
               note="a step end must be a token index in [0, T) (or -1 padding)")


def build_kl_div():
    rng = np.random.default_rng(11)
    N, C = 4, 5
    z = dec(rng.normal(size=(N, C)) * 1.5)
    t = prob_rows(rng, N, C, zeros=[(0, 1), (2, 0), (2, 4)])
    base = dict(logits=z, targets=t)
    b = case("kl_div_basic", "kl_div", base)
    assert np.allclose(b["values"], np.array(b["extras"]["cross_entropy"]) - b["extras"]["target_entropy"],
                       rtol=1e-12, atol=1e-15)
    if sps is not None:
        ref = np.sum(sps.rel_entr(t, sps.softmax(z, axis=1)), axis=1)
        assert np.allclose(b["values"], ref, rtol=1e-12, atol=1e-15)
    t2 = case("kl_div_T2", "kl_div", base, dict(temperature=2.0))
    assert np.allclose(t2["values"], 4.0 * (np.array(t2["extras"]["cross_entropy"]) -
                                            t2["extras"]["target_entropy"]), rtol=1e-12)
    case("kl_div_T0.5_weights", "kl_div", dict(base, sample_weights=[1.0, 0.0, 2.5, 0.5]), dict(temperature=0.5))
    yh = [2, 0, 4, 1]
    oh = np.eye(C)[yh]
    o = case("kl_div_one_hot", "kl_div", dict(logits=z, targets=oh),
             note="one-hot targets: equals cross-entropy (target entropy 0)")
    assert np.allclose(o["values"], -log_softmax(z)[np.arange(N), yh], rtol=1e-13, atol=0)
    zx = [[10000.0, -10000.0, 0.0], [10000.0, -10000.0, 0.0], [10000.0, -10000.0, 0.0], [0.0, 0.0, 0.0]]
    tx = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    x = case("kl_div_extreme", "kl_div", dict(logits=zx, targets=tx),
             note="logits +-1e4: 0, 2e4, 1e4 - log 2 and log 3; zero targets contribute 0 even where p underflows")
    assert x["values"][0] == 0.0 and x["values"][1] == 20000.0
    zw = case("kl_div_zero_weights", "kl_div", dict(base, sample_weights=[0.0] * N),
              note="all sample weights 0: mean 0 (denominator 0), gradient 0")
    assert zw["mean"] == 0.0 and zw["mean_denominator"] == 0.0
    bad = t.copy(); bad[1] = dec(bad[1] * 1.01)
    error_case("kl_div_err_row_sum", "kl_div", dict(logits=z, targets=bad), {}, "invalid_target", "/targets/1")
    bad = t.copy(); bad[0, 2] += 0.1; bad[0, 1] = -0.1
    bad = dec(bad)
    error_case("kl_div_err_negative_target", "kl_div", dict(logits=z, targets=bad), {}, "invalid_target",
               "/targets/0/1", note="row still sums to 1")
    error_case("kl_div_err_temperature", "kl_div", base, dict(temperature=0.0), "invalid_param", "/params/temperature")
    error_case("kl_div_err_targets_shape", "kl_div", dict(logits=z, targets=t[:, :4]), {}, "invalid_shape", "/targets")
    error_case("kl_div_err_no_targets", "kl_div", dict(logits=z), {}, "missing_field", "/targets")
    error_case("kl_div_err_negative_weight", "kl_div", dict(base, sample_weights=[1.0, -1.0, 1.0, 1.0]), {},
               "invalid_input", "/sample_weights/1")


def build_csa():
    rng = np.random.default_rng(23)
    N, C = 4, 4
    z = dec(rng.normal(size=(N, C)) * 1.5)
    za = dec(z + rng.normal(size=(N, C)) * 0.4)
    y = [0, 3, 1, 2]
    base = dict(logits=z, adv_logits=za, labels=y)
    b = case("comp_sum_adversarial_basic", "comp_sum_adversarial", base)
    # identity: nu = 0 is plain comp_sum (cross-entropy at tau = 1)
    n0 = case("comp_sum_adversarial_nu0", "comp_sum_adversarial", base, dict(nu=0.0),
              note="nu = 0: plain comp_sum (here cross-entropy); adv_logits get a zero gradient")
    assert np.allclose(n0["values"], -log_softmax(z)[np.arange(N), y], rtol=1e-13)
    case("comp_sum_adversarial_tau0.5_nu0.3", "comp_sum_adversarial", base, dict(tau=0.5, nu=0.3))
    case("comp_sum_adversarial_tau2_nu2", "comp_sum_adversarial", base, dict(tau=2.0, nu=2.0))
    case("comp_sum_adversarial_tau0", "comp_sum_adversarial", base, dict(tau=0.0))
    case("comp_sum_adversarial_tau1.5_weights", "comp_sum_adversarial", dict(base, sample_weights=[2.0, 0.0, 1.0, 0.5]),
         dict(tau=1.5, nu=0.5))
    # zero perturbation norms: identical rows, and a whole-row shift (margins unchanged);
    # dyadic values keep every difference exact
    zz = [[0.5, -1.25, 2.0, 0.0], [1.5, 0.25, -0.75, 3.0], [-2.0, 1.0, 0.5, 0.125]]
    za2 = [[0.5, -1.25, 2.0, 0.0], [3.5, 2.25, 1.25, 5.0], [-2.0, 1.5, 0.5, 0.125]]
    zc = case("comp_sum_adversarial_zero_norm", "comp_sum_adversarial", dict(logits=zz, adv_logits=za2, labels=[2, 3, 1]),
              dict(nu=1.5), fd=False,
              note="rows 0 and 1: margin vectors unchanged (identical row; row shifted by 2), norm 0, subgradient 0; "
                   "row 2: one non-label logit moved by 0.5. No finite differences (the norm has a kink at 0)")
    cs, _ = comp_sum_rows(np.array(zz), np.array([2, 3, 1]), 1.0)
    assert zc["values"][0] == cs[0] and zc["values"][1] == cs[1]   # norm term exactly 0
    zx = [[10000.0, -10000.0, 0.0], [-10000.0, 10000.0, 0.0], [0.0, 0.0, 10000.0]]
    zax = [[-10000.0, 10000.0, 0.0], [-10000.0, 10000.0, 1.0], [0.0, 0.5, 10000.0]]
    x = case("comp_sum_adversarial_extreme", "comp_sum_adversarial", dict(logits=zx, adv_logits=zax, labels=[0, 0, 2]),
             fd="abs", note="logits +-1e4: cross-entropy 0 or 2e4; row 0's adversary swaps classes 0 and 1 (norm 2e4*sqrt(5))")
    assert x["values"][1] == 20001.0 and x["values"][2] == 0.5
    error_case("comp_sum_adversarial_overflow", "comp_sum_adversarial", dict(logits=zx, adv_logits=zx, labels=[1, 0, 2]),
               dict(tau=0.0), "value_overflow", None,
               note="tau = 0 with a 2e4 margin against the label: e^(2e4) is not representable")
    error_case("comp_sum_adversarial_err_tau", "comp_sum_adversarial", base, dict(tau=2.5), "invalid_param", "/params/tau")
    error_case("comp_sum_adversarial_err_nu", "comp_sum_adversarial", base, dict(nu=-1.0), "invalid_param", "/params/nu")
    error_case("comp_sum_adversarial_err_adv_shape", "comp_sum_adversarial", dict(base, adv_logits=za[:3]), {},
               "invalid_shape", "/adv_logits")
    error_case("comp_sum_adversarial_err_no_adv", "comp_sum_adversarial", dict(logits=z, labels=y), {},
               "missing_field", "/adv_logits")
    error_case("comp_sum_adversarial_err_label", "comp_sum_adversarial", dict(base, labels=[0, 4, 1, 2]), {},
               "invalid_label", "/labels/1")
    return b


def build_ns():
    rng = np.random.default_rng(31)
    N, D, C = 6, 4, 3
    W = dec(rng.normal(size=(C, D)))
    y = [0, 1, 2, 0, 1, 2]
    E = dec(0.8 * W[y] + rng.normal(size=(N, D)) * 0.8)
    base = dict(embeddings=E, prototypes=W, labels=y)
    U, _ = unit_rows(E)
    B = U @ U.T
    neg = np.array(y)[:, None] != np.array(y)[None, :]
    thr = 0.2
    assert np.min(np.abs(B[neg] - thr)) > 1e-3
    assert np.any(B[neg] > thr) and np.any(B[neg] <= thr)
    b = case("normalized_softmax_basic", "normalized_softmax", base)
    # identity: the same as cross-entropy on s * cosine logits
    V, _ = unit_rows(W)
    assert np.allclose(b["values"], -log_softmax(16 * U @ V.T)[np.arange(N), y], rtol=1e-13)
    case("normalized_softmax_cosface", "normalized_softmax", base, dict(scale=30.0, margin=0.2))
    case("normalized_softmax_batch_negatives", "normalized_softmax", base, dict(batch_negatives=True))
    f = case("normalized_softmax_filtered", "normalized_softmax", base,
             dict(batch_negatives=True, filter_threshold=thr, margin=0.1),
             note="in-batch negatives with cosine > 0.2 are dropped (filtered_pairs counts ordered pairs)")
    assert f["extras"]["filtered_pairs"] == int(np.sum(neg & (B > thr)))
    case("normalized_softmax_weights", "normalized_softmax", dict(base, sample_weights=[1.0, 2.0, 0.0, 0.5, 1.0, 3.0]),
         dict(batch_negatives=True, scale=8.0))
    f1 = case("normalized_softmax_threshold_1", "normalized_softmax", base, dict(batch_negatives=True, filter_threshold=1.0),
              note="threshold 1 keeps every negative: same as normalized_softmax_batch_negatives")
    assert f1["extras"]["filtered_pairs"] == 0
    Wx = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    Ex = [[3.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [5.0, 0.0]]
    x = case("normalized_softmax_extreme", "normalized_softmax", dict(embeddings=Ex, prototypes=Wx, labels=[0, 0, 0, 1]),
             dict(scale=10000.0, batch_negatives=True, filter_threshold=0.9),
             note="scale 1e4 with cosines exactly 1, 0, -1: class logits +-1e4; rows 0 and 3 (different labels, "
                  "same direction, cosine 1) are noisy negatives of each other and are filtered (2 ordered pairs)")
    assert x["extras"]["filtered_pairs"] == 2
    assert x["values"][0] == 0.0 and x["values"][2] == 20000.0
    error_case("normalized_softmax_err_scale", "normalized_softmax", base, dict(scale=0.0), "invalid_param", "/params/scale")
    error_case("normalized_softmax_err_margin", "normalized_softmax", base, dict(margin=1.0), "invalid_param",
               "/params/margin")
    error_case("normalized_softmax_err_threshold", "normalized_softmax", base,
               dict(batch_negatives=True, filter_threshold=-1.0), "invalid_param", "/params/filter_threshold",
               note="filter_threshold is in (-1, 1]")
    error_case("normalized_softmax_err_batch_negatives", "normalized_softmax", base, dict(batch_negatives="yes"),
               "invalid_param", "/params/batch_negatives")
    error_case("normalized_softmax_err_prototype_width", "normalized_softmax", dict(base, prototypes=W[:, :3]), {},
               "invalid_shape", "/prototypes")
    error_case("normalized_softmax_err_label", "normalized_softmax", dict(base, labels=[0, 1, 3, 0, 1, 2]), {},
               "invalid_label", "/labels/2")
    Wz = W.copy(); Wz[1] = 0.0
    error_case("normalized_softmax_err_zero_prototype", "normalized_softmax", dict(base, prototypes=Wz), {},
               "invalid_input", "/prototypes/1")
    Ez = E.copy(); Ez[4] = 0.0
    error_case("normalized_softmax_err_zero_embedding", "normalized_softmax", dict(base, embeddings=Ez), {},
               "invalid_input", "/embeddings/4")
    error_case("normalized_softmax_err_no_prototypes", "normalized_softmax", dict(embeddings=E, labels=y), {},
               "missing_field", "/prototypes")


def blur(x):
    """3-wide box blur over the trailing spatial axes (edges replicated)."""
    for ax in range(1, x.ndim):
        xp = np.pad(x, [(0, 0)] * ax + [(1, 1)] + [(0, 0)] * (x.ndim - ax - 1), mode="edge")
        n = x.shape[ax]
        x = (np.take(xp, range(0, n), axis=ax) + np.take(xp, range(1, n + 1), axis=ax)
             + np.take(xp, range(2, n + 2), axis=ax)) / 3.0
    return x


def seg_sample(seed, N, C, sp, fg=0.45, decimals=4):
    """Blobby integer class maps [N, *sp] and logits [N, C, *sp] that roughly agree
    with them; regenerated until the softmax probabilities of every (sample, class)
    map are pairwise distinct (no ties inside a pooling window, so the skeleton is
    differentiable at the point)."""
    while True:
        rng = np.random.default_rng(seed)
        f = blur(blur(rng.normal(size=(N,) + sp)))
        lab = np.zeros((N,) + sp, dtype=np.int64)
        for n in range(N):
            q = np.quantile(f[n], np.linspace(1 - fg, 1, C)[:-1])
            lab[n] = np.digitize(f[n], q)
        z = dec(2.0 * one_hot_maps(lab, C) + rng.normal(size=(N, C) + sp) * 1.2, decimals)
        p = softmax(z, axis=1).reshape(N * C, -1)
        if all(len(np.unique(row)) == row.size for row in p):
            return z, lab
        seed += 1000


def gt_skeleton(lab, C):
    """A thin class map of the ground truth: the (binary) soft skeleton of each
    class's mask, labelled with its class (0 elsewhere)."""
    N = lab.shape[0]
    g = one_hot_maps(lab, C)
    sk, _ = soft_skeleton(g.reshape((N * C,) + lab.shape[1:]), 3)
    sk = sk.reshape(g.shape)
    out = np.zeros_like(lab)
    for c in range(1, C):
        out[sk[:, c] > 0.5] = c
    return out


def build_seg():
    z3, lab3 = seg_sample(101, 2, 3, (6, 6))
    z2, lab2 = seg_sample(202, 2, 2, (8, 8))
    zv, labv = seg_sample(303, 1, 2, (4, 4, 4), fg=0.5)
    rng = np.random.default_rng(404)
    soft3 = dec(np.clip(0.8 * one_hot_maps(lab3, 3) + rng.uniform(0, 0.2, size=z3.shape), 0, 1))
    soft2 = dec(np.clip(0.85 * one_hot_maps(lab2, 2) + rng.uniform(0, 0.15, size=z2.shape), 0, 1))
    bg = np.zeros_like(lab2)
    one = np.ones_like(lab2)
    zx = np.where(one_hot_maps(lab2, 2) > 0, 10000.0, -10000.0)
    zx[1, :, :4, :] = -zx[1, :, :4, :]  # top half of sample 1 confidently wrong

    # --- dice
    b = case("dice_basic", "dice", dict(logits=z3, labels=lab3),
             note="[2][3][6][6]; classes 1 and 2 averaged (background dropped)")
    case("dice_include_background", "dice", dict(logits=z3, labels=lab3), dict(include_background=True))
    case("dice_smooth_1e-3", "dice", dict(logits=z2, labels=lab2), dict(smooth=0.001))
    case("dice_targets", "dice", dict(logits=z3, targets=soft3), note="soft targets in [0, 1]")
    case("dice_sample_weights", "dice", dict(logits=z2, labels=lab2, sample_weights=[0.25, 2.0]))
    case("dice_3d", "dice", dict(logits=zv, labels=labv), note="rank-5 logits [1][2][4][4][4]")
    e = case("dice_all_background", "dice", dict(logits=z2, labels=bg),
             note="no foreground anywhere: class 1 value = 1 - eps/(sum p + eps), finite")
    assert all(0 < v < 1 for v in e["values"])
    case("dice_single_class", "dice", dict(logits=z2, labels=one), dict(include_background=True),
         note="every pixel is class 1: the background class is empty in the ground truth")
    x = case("dice_extreme", "dice", dict(logits=zx, labels=lab2), dict(include_background=True),
             note="logits +-1e4: probabilities exactly 0/1, gradient exactly 0; sample 0 is a perfect prediction")
    assert x["values"][0] == 0.0
    # --- cldice
    a0 = case("cldice_alpha0", "cldice", dict(logits=z3, labels=lab3), dict(alpha=0.0),
              note="alpha = 0 is dice: same as dice_basic")
    assert np.allclose(a0["values"], b["values"], rtol=1e-14)
    case("cldice_basic", "cldice", dict(logits=z2, labels=lab2),
         note="[2][2][8][8], iterations 3, alpha 0.5")
    case("cldice_three_classes", "cldice", dict(logits=z3, labels=lab3))
    case("cldice_iter1_alpha0.3", "cldice", dict(logits=z2, labels=lab2), dict(iterations=1, alpha=0.3))
    case("cldice_iter5_alpha1", "cldice", dict(logits=z2, labels=lab2), dict(iterations=5, alpha=1.0),
         note="alpha = 1: the clDice term alone")
    case("cldice_targets_background", "cldice", dict(logits=z2, targets=soft2),
         dict(include_background=True, smooth=0.5), note="soft targets: their soft skeleton is taken as well")
    case("cldice_sample_weights", "cldice", dict(logits=z3, labels=lab3, sample_weights=[3.0, 0.5]), dict(iterations=2))
    case("cldice_3d", "cldice", dict(logits=zv, labels=labv),
         note="rank 5: erosion over the 6-neighbour cross, dilation over the 3x3x3 cube")
    case("cldice_all_background", "cldice", dict(logits=z2, labels=bg),
         note="empty foreground: skeleton of the ground truth is 0, Tsens = 1 (eps/eps)")
    case("cldice_single_class", "cldice", dict(logits=z2, labels=one), dict(include_background=True))
    case("cldice_extreme", "cldice", dict(logits=zx, labels=lab2),
         note="logits +-1e4: hard 0/1 probabilities; gradient exactly 0")
    # --- skeleton_recall
    sk3, sk2, skv = gt_skeleton(lab3, 3), gt_skeleton(lab2, 2), gt_skeleton(labv, 2)
    assert sk3.any() and sk2.any() and skv.any()
    case("skeleton_recall_basic", "skeleton_recall", dict(logits=z3, skeleton=sk3),
         note="skeleton: the ground truth's skeleton as a class map (0 = background); no labels needed")
    case("skeleton_recall_include_background", "skeleton_recall", dict(logits=z2, skeleton=sk2),
         dict(include_background=True), note="class 0's mask is every pixel that is not on a skeleton")
    case("skeleton_recall_smooth_weights", "skeleton_recall", dict(logits=z2, skeleton=sk2, sample_weights=[1.0, 0.5]),
         dict(smooth=0.1))
    case("skeleton_recall_3d", "skeleton_recall", dict(logits=zv, skeleton=skv))
    es = case("skeleton_recall_empty", "skeleton_recall", dict(logits=z2, skeleton=bg),
              note="no skeleton pixels: every kept class is 1 - eps/eps = 0, gradient 0")
    assert es["values"] == [0.0, 0.0]
    case("skeleton_recall_extreme", "skeleton_recall", dict(logits=zx, skeleton=sk2),
         note="logits +-1e4: hard probabilities")
    # --- errors
    base = dict(logits=z2, labels=lab2)
    error_case("dice_err_one_class", "dice", dict(logits=z2[:, :1], labels=bg), {}, "invalid_shape", "/logits",
               note="segmentation needs C >= 2 (softmax over C)")
    error_case("dice_err_rank", "dice", dict(logits=z2[:, :, :, 0], labels=lab2[:, :, 0]), {}, "invalid_shape",
               "/logits", note="logits must be [N][C][H][W] or [N][C][H][W][Z]")
    error_case("dice_err_labels_shape", "dice", dict(logits=z2, labels=lab2[:, :, :7]), {}, "invalid_shape", "/labels")
    badl = lab2.copy(); badl[0, 2, 3] = 2
    error_case("dice_err_label_range", "dice", dict(logits=z2, labels=badl), {}, "invalid_label", "/labels/0/2/3")
    badf = lab2.astype(float).tolist(); badf[1][0][5] = 0.5
    error_case("dice_err_label_float", "dice", dict(logits=z2, labels=badf), {}, "invalid_label", "/labels/1/0/5")
    error_case("dice_err_both", "dice", dict(logits=z2, labels=lab2, targets=soft2), {}, "missing_field", "/labels",
               note="exactly one of labels or targets")
    error_case("dice_err_neither", "dice", dict(logits=z2), {}, "missing_field", "/labels")
    badt = soft2.copy(); badt[0, 1, 2, 3] = 1.5
    error_case("dice_err_target_range", "dice", dict(logits=z2, targets=badt), {}, "invalid_target", "/targets/0/1/2/3")
    error_case("dice_err_targets_shape", "dice", dict(logits=z2, targets=soft2[:, :, :, :7]), {}, "invalid_shape",
               "/targets")
    error_case("dice_err_smooth", "dice", base, dict(smooth=-1.0), "invalid_param", "/params/smooth")
    error_case("dice_err_include_background", "dice", base, dict(include_background="no"), "invalid_param",
               "/params/include_background")
    error_case("cldice_err_iterations_negative", "cldice", base, dict(iterations=-1), "invalid_param",
               "/params/iterations")
    error_case("cldice_err_iterations_fraction", "cldice", base, dict(iterations=1.5), "invalid_param",
               "/params/iterations")
    error_case("cldice_err_alpha", "cldice", base, dict(alpha=1.5), "invalid_param", "/params/alpha")
    error_case("cldice_err_no_labels", "cldice", dict(logits=z2), {}, "missing_field", "/labels")
    error_case("skeleton_recall_err_no_skeleton", "skeleton_recall", dict(logits=z2), {}, "missing_field", "/skeleton")
    error_case("skeleton_recall_err_shape", "skeleton_recall", dict(logits=z2, skeleton=sk2[:1]), {}, "invalid_shape",
               "/skeleton")
    bads = sk2.copy(); bads[1, 4, 4] = 5
    error_case("skeleton_recall_err_range", "skeleton_recall", dict(logits=z2, skeleton=bads), {}, "invalid_label",
               "/skeleton/1/4/4")
    return z3, lab3


def build_composite(z3, lab3):
    rng = np.random.default_rng(55)
    # 1. one head: 3 class columns (cross-entropy on soft targets) + 2 aspect columns (BCE)
    N = 4
    z = dec(rng.normal(size=(N, 5)) * 1.5)
    tcls = prob_rows(rng, N, 3)
    tasp = dec(rng.uniform(0, 1, size=(N, 2)))
    t = np.concatenate([tcls, tasp], axis=1)
    composite_case("composite_multi_aspect", dict(
        losses=[dict(loss="cross_entropy", columns=[0, 3]),
                dict(loss="binary_cross_entropy", columns=[3, 5], weight=0.5)],
        logits=z, targets=t, sample_weights=[1.0, 2.0, 0.5, 1.0]),
        note="targets has as many columns as logits, so it is sliced like logits: columns 0-2 are class "
             "probabilities (rows sum to 1), 3-4 aspect targets in [0, 1]. total = CE + 0.5*BCE; BCE's mean "
             "divides by sum(s)*2 (its 2 columns)")
    # 2. overlapping slices, labels relative to each slice, a negative weight
    z6 = dec(rng.normal(size=(N, 6)) * 1.5)
    lab = [0, 3, 2, 1]
    composite_case("composite_overlapping_columns", dict(
        losses=[dict(loss="cross_entropy", columns=[0, 4], weight=2.0),
                dict(loss="cross_entropy", columns=[2, 6], weight=-0.5, reduction="sum"),
                dict(loss="comp_sum", params=dict(tau=0.5))],
        logits=z6, labels=lab),
        note="label 3 is column 3 for the first entry, column 5 for the second and column 3 for the unsliced "
             "comp_sum entry; columns 2-3 get gradient from all three entries; weights may be any finite number")
    # 3. tcm beside its base loss
    W = dec(rng.normal(size=(3, 4)))
    yb = [0, 1, 2, 0, 1, 2]
    E = dec(0.8 * W[yb] + rng.normal(size=(6, 4)) * 0.8)
    composite_case("composite_tcm_with_base", dict(
        losses=[dict(loss="normalized_softmax", params=dict(scale=16.0, margin=0.1)),
                dict(loss="tcm", weight=0.5)],
        embeddings=E, prototypes=W, labels=yb),
        note="TCM as a regulariser beside a cosine-softmax base loss: total = base + 0.5*tcm; embeddings get "
             "gradient from both entries, prototypes from the base only")
    # 4. defaults: no weight, no columns
    zk = dec(rng.normal(size=(3, 4)))
    tk = prob_rows(rng, 3, 4)
    composite_case("composite_defaults", dict(
        losses=[dict(loss="kl_div", reduction="sum"), dict(loss="cross_entropy")],
        logits=zk, targets=tk, sample_weights=[1.0, 0.0, 2.0]),
        note="weight defaults to 1 and columns to all of them: total = kl_div(sum) + cross_entropy(mean)")
    # 5. group_mean, single-loss requests
    zg = dec(rng.normal(size=(6, 4)) * 1.5)
    tg = prob_rows(rng, 6, 4)
    groups = [3, 0, 3, 7, 3, 0]
    composite_case("group_mean_kl_div", dict(loss="kl_div", reduction="group_mean", logits=zg, targets=tg,
                                             groups=groups),
                   note="groups 0 (2 rows), 3 (3 rows), 7 (1 row): value = mean of the three group means; "
                        "extras.group_values in ascending group id")
    lp = dec(-np.abs(rng.normal(size=(5, 4))))
    ref = dec(-np.abs(rng.normal(size=(5, 4))))
    composite_case("group_mean_implicit_prm_weights", dict(
        loss="implicit_prm", reduction="group_mean", log_probs=lp, ref_log_probs=ref, outcomes=[1, 0, 0, 1, 1],
        groups=[1, 1, 2, 2, 5], sample_weights=[1.0, 3.0, 0.0, 0.0, 2.0], params=dict(beta=0.3)),
        note="each group's mean is the weighted mean of its rows (sum s*l / sum s); group 2 has weight 0: its "
             "mean is 0 and it still counts as a group")
    composite_case("group_mean_dice", dict(loss="dice", reduction="group_mean", logits=np.concatenate([z3, z3[:1]]),
                                           labels=np.concatenate([lab3, lab3[1:]]), groups=[0, 0, 1]),
                   note="rows are samples of [3][3][6][6] logits")
    # 6. group_mean inside losses
    zc = dec(rng.normal(size=(5, 3)) * 1.5)
    zac = dec(zc + rng.normal(size=(5, 3)) * 0.5)
    composite_case("composite_group_mean", dict(
        losses=[dict(loss="comp_sum_adversarial", reduction="group_mean"),
                dict(loss="comp_sum_adversarial", params=dict(tau=0.5, nu=0.2), weight=0.25)],
        logits=zc, adv_logits=zac, labels=[0, 2, 1, 1, 0], groups=[0, 0, 0, 0, 1]),
        note="the group_mean entry weighs the lone row of group 1 as much as the four rows of group 0")
    # errors
    ok = dict(losses=[dict(loss="cross_entropy", columns=[0, 4]), dict(loss="cross_entropy", columns=[2, 6])],
              logits=z6, labels=lab)
    composite_error("composite_err_columns_range", dict(ok, losses=[ok["losses"][0], dict(loss="cross_entropy",
                    columns=[2, 7])]), "invalid_param", "/losses/1/columns", note="hi > C")
    composite_error("composite_err_columns_empty", dict(ok, losses=[dict(loss="cross_entropy", columns=[3, 3]),
                    ok["losses"][1]]), "invalid_param", "/losses/0/columns", note="lo < hi is required")
    composite_error("composite_err_weight", dict(ok, losses=[dict(loss="cross_entropy", weight="heavy"),
                    ok["losses"][1]]), "invalid_param", "/losses/0/weight")
    composite_error("composite_err_label_outside_slice", dict(ok, labels=[0, 3, 4, 1]), "invalid_label", "/labels/2",
                    note="labels are relative to the slice: 4 is outside the 4 columns of the first entry")
    composite_error("composite_err_tcm_group_mean", dict(
        losses=[dict(loss="normalized_softmax"), dict(loss="tcm", reduction="group_mean")],
        embeddings=E, prototypes=W, labels=yb, groups=[0, 0, 0, 1, 1, 1]),
        "invalid_input", "/losses/1/reduction", note="tcm is not row-separable")
    composite_error("group_mean_err_no_groups", dict(loss="kl_div", reduction="group_mean", logits=zg, targets=tg),
                    "missing_field", "/groups")
    composite_error("group_mean_err_groups_count", dict(loss="kl_div", reduction="group_mean", logits=zg, targets=tg,
                                                        groups=[0, 1, 2]), "invalid_shape", "/groups")
    composite_error("group_mean_err_group_float", dict(loss="kl_div", reduction="group_mean", logits=zg, targets=tg,
                                                       groups=[0, 1.5, 0, 1, 1, 0]), "invalid_label", "/groups/1")


# ----------------------------------------------------------------------------------

DESCRIPTION = (
    "Worked test vectors for the second wave of losses (tcm, implicit_prm, kl_div, comp_sum_adversarial, "
    "normalized_softmax, dice, cldice, skeleton_recall) and for composite requests (per-entry weight and "
    "columns, total, reduction group_mean), produced by scripts/reference-losses-2.py, an independent NumPy "
    "float64 reference implementation (see docs/test-vectors.md).")

CONVENTIONS = {
    "inputs": "request tensor fields, named as the API names them; params go in the request's params object. "
              "Segmentation logits are [N][C][H][W] or [N][C][H][W][Z]",
    "values": "reduction='none' result (per-sample values, sample_weights applied); null for tcm, which "
              "rejects reduction none (422 invalid_input, field /reduction)",
    "mean": "reduction='mean' result",
    "sum": "reduction='sum' result (tcm: the same number as mean)",
    "mean_denominator": "the divisor used by 'mean' (mean = sum / mean_denominator); gradient of 'sum' (and of "
                        "'none') = grad_mean * mean_denominator (tcm: 1)",
    "grad_mean": "gradient of the 'mean' value with respect to each named input",
    "extras": "loss-specific outputs of the 'mean' answer; null = not a finite number, except "
              "implicit_prm's step_rewards where null marks -1 padding",
    "expected_error": "request must be rejected: HTTP 422 problem+json with this code (type "
                      "urn:lossd:error:<code>) and field (JSON pointer; null for value_overflow). No detail text: "
                      "the wording of the new messages is not fixed by these vectors",
    "reduction": "present only on error cases: the reduction sent with the request",
    "composite": "cases without 'loss': composite.request is the complete POST /v1/loss body (with 'losses' "
                 "and/or reduction group_mean and 'groups'; return_grad true). composite.expected mirrors the "
                 "answer: for 'losses', results[i] = {loss, reduction, value, grad (only for entries without "
                 "columns), extras} unweighted, and total = {value: sum_i weight_i*value_i, grad: gradient of that "
                 "sum for every differentiable input, sliced columns placed back, zeros elsewhere}; for a single "
                 "loss, {loss, reduction, value, grad, extras}. Compare every number present in expected with the "
                 "same path of the answer. With expected_error instead, the request must be rejected",
    "fd_max_abs_err": "max |analytic - central finite difference| observed when generating (the script asserts "
                      "it is <= 1e-6 * max(1, max|gradient|)); absent where the point is on a kink",
}


def crosscheck_soft_skeleton():
    """The soft skeleton again, written as the clDice paper's pooling recipe with
    SciPy's separable filters (edge replication = clipped windows for min and max),
    compared with the index-tracking version used for the vectors."""
    try:
        import scipy.ndimage as ndi
    except Exception:  # pragma: no cover
        return
    rng = np.random.default_rng(9)
    for shape in ((3, 8, 8), (2, 5, 4, 6)):
        x = rng.uniform(size=shape)
        nd = len(shape) - 1

        def er(v):
            return np.min([ndi.minimum_filter1d(v, 3, axis=a, mode="nearest") for a in range(1, nd + 1)], axis=0)

        def op(v):
            return ndi.maximum_filter(er(v), size=(1,) + (3,) * nd, mode="nearest")
        for it in (0, 1, 3, 6):
            v = x
            skel = np.maximum(v - op(v), 0)
            for _ in range(it):
                v = er(v)
                delta = np.maximum(v - op(v), 0)
                skel = skel + np.maximum(delta - skel * delta, 0)
            mine, _ = soft_skeleton(x, it)
            assert np.array_equal(mine, skel), (shape, it)


def main():
    crosscheck_soft_skeleton()
    build_tcm()
    build_implicit_prm()
    build_kl_div()
    build_csa()
    build_ns()
    z3, lab3 = build_seg()
    build_composite(z3, lab3)
    doc = {"description": DESCRIPTION,
           "tolerance": {"rtol": 1e-09, "atol": 1e-12,
                         "rule": "|got - expected| <= atol + rtol * |expected|, elementwise"},
           "conventions": CONVENTIONS,
           "cases": CASES}
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    with open(OUT, "w") as fh:
        fh.write(text)
    counts = {}
    for c in CASES:
        key = c.get("loss", "composite")
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(CASES)} cases, {len(text)} bytes")
    for k, v in counts.items():
        print(f"  {k}: {v}")


if __name__ == "__main__":
    sys.exit(main())
