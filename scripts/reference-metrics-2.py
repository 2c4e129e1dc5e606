#!/usr/bin/env python3
"""Independent NumPy float64 reference for lossd's second wave of metrics.

Run from the repository root:

    .venv-bench/bin/python scripts/reference-metrics-2.py

It writes Tests/LossdServiceTests/Vectors/metrics_vectors_2.json, byte-for-byte the
same on every run (fixed seeds, no clock, no environment lookups; only the NumPy
version recorded in `meta` can differ between machines). Needs numpy and scipy
(scipy only for cross-checks). Nothing here imports or reads lossd's Swift code; the
one file of the repository it reads, if present, is
Tests/LossdServiceTests/Vectors/calib_vectors.json, to check that the hard-label
metrics and the temperature fit below agree with the earlier vectors (a failed check
stops the script; a missing file skips it).

File layout
-----------
`meta` (generator, conventions, the choices listed below) and three lists of cases:
`embedding_metrics` (POST /v1/embedding-metrics), `metrics` (POST /v1/metrics) and
`calibrators_select` (POST /v1/calibrators/select). A case has a `name`, an `input`
that is the complete request body (fields named exactly as the API names them; POST
it as it is), and either `expected` (a subset of the response: every key listed must
be present and match; nested objects and lists compare element-wise; `null` must be
`null`) with `tol` (absolute: |got - expected| <= tol), or `expected_error`
(`status`, `code`, `field` as a JSON pointer; the detail text is not pinned).
`basis` says whether the case follows directly from the written contract ("contract") or
from a choice made here where the contract is silent ("choice", each one listed in
`meta.choices`). Some cases carry more: `input_hard`/`expected_hard` (the same request
with hard labels), `input_equivalent` (an equivalent request in another form),
`splits`/`per_split` (calibrated NLL), `informative` (numbers that are not part of the
contract, e.g. what an alternative definition would give).

Embedding metrics (POST /v1/embedding-metrics)
----------------------------------------------
Request: `embeddings` [N][D] with optional `labels` [N] (any integers; a label is a
class id, classes are the distinct values present), or `queries` [N][D] and `keys`
[N][D] where row i of the two is a positive pair. `metrics` lists the wanted names;
without it, every metric the inputs allow (see below). `params`: `normalize`
(default true), `alignment_alpha` (default 2, > 0), `uniformity_t` (default 2, > 0).

With `normalize` each row x becomes u = x / ||x||_2 (a zero row is a 422
`invalid_input` at `/embeddings/i`, `/queries/i` or `/keys/i`); otherwise u = x.

* alignment (Wang & Isola 2020, "Understanding Contrastive Representation Learning
  through Alignment and Uniformity on the Hypersphere"): the mean of ||u - v||_2^alpha
  over positive pairs. Pairs input: the N pairs (queries_i, keys_i). Labels input:
  the unordered pairs i < j with equal labels.
* uniformity (same paper): log of the mean over unordered pairs i < j of
  exp(-t ||u_i - u_j||^2), evaluated as a log-sum-exp minus log(#pairs) so that it
  never under- or overflows. Pairs input: the average of the uniformity of the
  queries and that of the keys, each over its own N rows -- what Wang & Isola's
  training recipe does with the two views (uniform(x) + uniform(y)) / 2.
* tolerance (Wang & Liu 2021, "Understanding the Behaviour of Contrastive Loss"): the
  mean cosine similarity over same-label pairs i < j. Labels only.
* mean_positive_cosine / mean_negative_cosine: the mean cosine over same-label /
  different-label pairs i < j (labels), or over the N matched pairs (q_i, k_i) / the
  N(N-1) unmatched ordered pairs (q_i, k_j), i != j (pairs).
  A cosine is always the true cosine x.y / (||x|| ||y||), also with normalize false;
  so with labels `tolerance` and `mean_positive_cosine` are the same number.
* nc1 (Papyan, Han & Donoho 2020, "Prevalence of Neural Collapse during the Terminal
  Phase of Deep Learning Training"): on the rows u (normalised unless normalize is
  false), with C = the number of distinct labels, class means m_c, global mean m_G
  (the mean of all N rows, as in Papyan et al.'s definition and in the public code of
  Zhu, Ding, Zhou, Li, You, Sulam & Qu 2021, "A Geometric Analysis of Neural Collapse
  with Unconstrained Features"):
      Sigma_W = (1/N) sum_i (u_i - m_{y_i})(u_i - m_{y_i})^T
      Sigma_B = (1/C) sum_c (m_c - m_G)(m_c - m_G)^T
      nc1     = trace(Sigma_W Sigma_B^+) / C
  Sigma_B^+ is the Moore-Penrose pseudo-inverse, computed here explicitly from the
  symmetric eigen-decomposition Sigma_B = V diag(lambda) V^T: keep the eigenvalues
  lambda > D * eps * lambda_max (eps = 2^-52; the default cut-off of numpy/scipy
  pinv and matrix_rank) and invert those. Sigma_B has rank <= min(C - 1, D); every
  vector here is built so that any relative cut-off between 1e-12 and 1e-6 gives the
  same answer (the script asserts it), so implementations that use an SVD of the
  D x C matrix of centred means, or another cut-off rule, still agree.
  Needs labels with C >= 2.

Needs and defaults: with `embeddings` + `labels`, the default list is alignment,
uniformity, tolerance, nc1 (only when C >= 2), mean_positive_cosine,
mean_negative_cosine; with `embeddings` alone, uniformity; with `queries` + `keys`,
alignment, uniformity, mean_positive_cosine, mean_negative_cosine. Explicitly asking
for a metric the inputs cannot give (tolerance or nc1 with pairs; nc1 with C < 2;
alignment/tolerance/cosines without labels or pairs) is a 422 `invalid_input` at
`/metrics/i`. A metric whose set of pairs is empty (e.g. every label distinct: no
positive pair; one class: no negative pair; N = 1: no pair for uniformity) answers
`null`. N > 16384 is a 413 `content_too_large` at the embeddings field.

Soft targets, rmsce, binary input, calibrated NLL (POST /v1/metrics)
--------------------------------------------------------------------
Hard-label definitions (the existing ones, re-implemented here): with probabilities
p (softmax of logits, or probs as sent), pred_i = argmax (lowest index on ties) of the
scores as sent, conf_i = max_j p_ij; nll = -(1/N) sum log p_{i,y_i} (log-softmax from
logits; probs clipped to [eps, 1 - eps] first); brier = (1/N) sum_i sum_j
(p_ij - [y_i = j])^2, halved when C = 2 under brier_scale_by_half "auto"; accuracy;
top_k_accuracy (ties at the cut to the lower index); ECE (Naeini, Cooper &
Hauskrecht 2015, "Obtaining Well Calibrated Probabilities Using Bayesian
Binning"; Guo et al. 2017) over B equal-width bins with edges e_j = j * (1/B),
e_B = 1, under the bin rules left / right / torchmetrics; MCE; ACE (quantile edges,
numpy "linear" quantiles at the same e_j, outer edges forced to 0 and 1, left rule);
classwise ECE (Kull et al. 2019, "Beyond temperature scaling"); reliability bins.

Soft targets: `targets` [N][C] (rows on the simplex within 1e-6) replace `labels`.
Every hard-label quantity is generalised by replacing the indicator [y_i = j] with
t_ij:
    nll            = -(1/N) sum_i sum_j t_ij log p_ij
    brier          = (1/N) sum_i sum_j (p_ij - t_ij)^2   (same halving rule)
    accuracy       = (1/N) sum_i t_{i, pred_i}           (expected accuracy)
    top_k_accuracy = (1/N) sum_i sum_{j in top-k(i)} t_ij
    ECE/MCE/ACE/rmsce/reliability: the same confidence bins; a bin's accuracy is the
                     mean of t_{i, pred_i} over its rows
    classwise_ece  : per class j the bins of p_ij compare mean p_ij with mean t_ij
    target_entropy = (1/N) sum_i -sum_j t_ij log t_ij    (0 log 0 = 0)
    kl             = nll - target_entropy                (mean KL(t_i || p_i); with
                     probs input, of the clipped p)
With one-hot targets every one of these equals its hard-label value: the extra terms
are exact zeros (0 * log p), so one implementation summing in the same order gives
the same bits; the script checks its soft-target code against a separate, loop-based
hard-label implementation (on these vectors the two agree exactly) and that one
against the earlier vectors. target_entropy and kl are accepted with hard labels too (0 and nll).

rmsce (the L2 form of the ECE, torchmetrics' norm="l2"): sqrt(sum_b (n_b/N)
(acc_b - conf_b)^2), same bins, bin rule and soft-target rule as ece.

Binary input: `probs` [N] or `scores` [N] (each the probability of class 1, in
[0, 1]) with `labels` [N] in {0, 1} is the request with probs [N][2] = [1 - s, s]
(1 - s rounded in float64). A row with s = 0.5 predicts class 0 (lowest index).

calibrated_nll (Ashukha, Lyzhov, Molchanov & Vetrov 2020, "Pitfalls of In-Domain
Uncertainty Estimation and Ensembling in Deep Learning"; also reported by Wright &
Augenstein 2024, "Aggregating Soft Labels from Crowd Annotations Improves
Uncertainty Estimation Under Distribution Shift"): logits and hard labels only. For each of
`repeats` (param, default 5) random halvings of the rows: first half = the first
floor(N/2) entries of a random permutation, second half = the rest (the crowd study's
code does the same); fit a temperature on one half (lossd's temperature scaling:
the mean NLL is convex in beta = 1/T, minimised by a safeguarded Newton iteration on
[e^-10, e^10]), take the mean NLL of the other half at that temperature, and swap.
calibrated_nll is the mean of the 2*repeats NLLs and calibrated_nll_std their
population standard deviation (divide by 2*repeats, numpy's default ddof=0).
The permutation stream is not pinned by the contract (only "same seed, same build,
same answer"), so every case records its halves explicitly (`splits`) and the
per-half temperatures and NLLs (`per_split`); `expected` is what a build gets when
it draws the halves with the rule this script uses (a proposal, stated in
meta.choices): master = SplitMix64(seed); repeat r shuffles the identity
permutation with SplitMix64(master.next()) by Fisher-Yates from the top
(for i = N-1 down to 1: j = below(i + 1); swap(i, j)), below(n) being Lemire's
unbiased multiply-and-reject on 64-bit outputs -- exactly lossd's SplitMix64.below.

Calibrator selection (POST /v1/calibrators/select)
--------------------------------------------------
The contract fixes "stratified k-fold, seeded" but not the fold-assignment rule, so
no vector pins folds, per-fold scores or (for more than one method) the ranking.
What is fold-independent is pinned: with `methods: ["temperature"]` the winner is
temperature scaling refitted on all rows, whose temperature is computed here; plus
the request errors.

Everything is float64. Inputs are short decimals (rounded random numbers) so that
they parse to the same doubles everywhere.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

EPS = float(np.finfo(np.float64).eps)  # 2.220446049250313e-16
OUT_PATH = os.path.join("Tests", "LossdServiceTests", "Vectors", "metrics_vectors_2.json")
OLD_VECTORS = os.path.join("Tests", "LossdServiceTests", "Vectors", "calib_vectors.json")
MAX_EMBEDDING_ROWS = 16384


class RequestError(Exception):
    """What the service must answer: status, error code, JSON pointer."""

    def __init__(self, status, code, field):
        super().__init__(f"{status} {code} {field}")
        self.status, self.code, self.field = status, code, field

    def as_json(self):
        return {"status": self.status, "code": self.code, "field": self.field}


def err422(code, field):
    return RequestError(422, code, field)


# --------------------------------------------------------------------------------------
# Small numerical primitives
# --------------------------------------------------------------------------------------

def log_softmax_rows(z):
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    s = z - m
    lse = m + np.log(np.exp(s).sum(axis=1, keepdims=True))
    return z - lse


def softmax_rows(z):
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    return e / e.sum(axis=1, keepdims=True)


def logsumexp_1d(v):
    v = np.asarray(v, dtype=np.float64)
    m = v.max()
    return float(m + math.log(np.exp(v - m).sum()))


def argmax_lowest(row):
    """argmax with the lowest index winning ties (numpy's argmax already does this)."""
    best = 0
    for j in range(1, len(row)):
        if row[j] > row[best]:
            best = j
    return best


def is_int_like(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()


# --------------------------------------------------------------------------------------
# SplitMix64 (Steele, Lea & Flood 2014, "Fast Splittable Pseudorandom Number
# Generators") and Lemire's unbiased bounded draw (Lemire 2019, "Fast Random Integer
# Generation in an Interval").
# --------------------------------------------------------------------------------------

MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        product = self.next() * n
        low = product & MASK64
        if low < n:
            threshold = ((1 << 64) - n) % n
            while low < threshold:
                product = self.next() * n
                low = product & MASK64
        return product >> 64


def proposed_halvings(n, repeats, seed):
    """The split stream proposed for calibrated_nll (see the module docstring)."""
    master = SplitMix64(seed)
    sub_seeds = [master.next() for _ in range(repeats)]
    out = []
    for r in range(repeats):
        rng = SplitMix64(sub_seeds[r])
        perm = list(range(n))
        for i in range(n - 1, 0, -1):
            j = rng.below(i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        half = n // 2
        out.append((perm[:half], perm[half:]))
    return out


# --------------------------------------------------------------------------------------
# Temperature scaling (Guo, Pleiss, Sun & Weinberger 2017, "On Calibration of Modern
# Neural Networks"): minimise the mean NLL of softmax(beta * z) over beta = 1/T. The
# objective f(beta) = mean_i [lse(beta z_i) - beta z_{i,y_i}] is convex;
# f'(beta) = mean_i (E_{p_i}[z_i] - z_{i,y_i}), f''(beta) = mean_i Var_{p_i}(z_i).
# Safeguarded Newton on [e^-10, e^10] starting at beta = 1, bisecting geometrically
# whenever the Newton point leaves the bracket.
# --------------------------------------------------------------------------------------

def _temp_derivs(z, y, beta):
    p = softmax_rows(beta * z)
    ez = (p * z).sum(axis=1)
    zy = z[np.arange(len(y)), y]
    var = (p * (z - ez[:, None]) ** 2).sum(axis=1)
    return float(np.mean(ez - zy)), float(np.mean(var))


def fit_temperature(z, y):
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    lo, hi = math.exp(-10.0), math.exp(10.0)
    if _temp_derivs(z, y, lo)[0] >= 0:
        return 1.0 / lo, "max_temperature", True
    if _temp_derivs(z, y, hi)[0] <= 0:
        return 1.0 / hi, "min_temperature", True
    beta = min(max(1.0, lo), hi)
    for _ in range(100):
        g, h = _temp_derivs(z, y, beta)
        if g == 0:
            return 1.0 / beta, None, True
        if g > 0:
            hi = beta
        else:
            lo = beta
        cand = beta - g / h if h != 0 else float("nan")
        if h == 0 or not (lo < cand < hi):
            cand = math.sqrt(lo * hi)
        if abs(cand - beta) <= 1e-12 * beta:
            return 1.0 / cand, None, True
        beta = cand
    return 1.0 / beta, None, False


def nll_at_temperature(z, y, temperature):
    lp = log_softmax_rows(np.asarray(z, dtype=np.float64) / temperature)
    return float(-np.mean(lp[np.arange(len(y)), y]))


def check_temperature_against_scipy(z, y, temperature, at_bound=None):
    from scipy.optimize import minimize_scalar

    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y)

    def f(logb):
        return nll_at_temperature(z, y, math.exp(-logb))

    res = minimize_scalar(f, bounds=(-10, 10), method="bounded", options={"xatol": 1e-12})
    t_scipy = math.exp(-res.x)
    if at_bound is not None:  # separable data: the optimum is the box's end; scipy stops on the plateau
        assert f(math.log(1 / temperature)) <= res.fun + 1e-12
        return
    assert abs(t_scipy - temperature) <= 1e-6 * temperature, (t_scipy, temperature)
    assert f(math.log(1 / temperature)) <= res.fun + 1e-13


# --------------------------------------------------------------------------------------
# Calibration metrics. Two implementations: a hard-label one written the direct way
# (the existing definitions), and a soft-target one in which the indicator [y_i = j]
# becomes t_ij. The script checks that one-hot targets give identical numbers.
# --------------------------------------------------------------------------------------

def bin_edges(b):
    step = 1.0 / b
    return [j * step for j in range(b)] + [1.0]


def bin_index(c, edges, rule):
    b = len(edges) - 1
    inner = edges[1:b]
    if rule == "left":
        return sum(1 for e in inner if e <= c)
    if rule == "right":
        return sum(1 for e in inner if e < c)
    if rule == "torchmetrics":
        return sum(1 for e in edges if e <= c) - 1
    raise ValueError(rule)


def n_slots(b, rule):
    return b + 1 if rule == "torchmetrics" else b


# ---- hard labels (direct transcription) ----

def hard_nll(logits, probs, labels):
    n = len(labels)
    if logits is not None:
        lp = log_softmax_rows(logits)
        return float(-sum(lp[i, labels[i]] for i in range(n)) / n)
    total = 0.0
    for i in range(n):
        p = min(max(probs[i][labels[i]], EPS), 1 - EPS)
        total += math.log(p)
    return -total / n


def hard_brier(p, labels, halve):
    n, c = p.shape
    s = 0.0
    for i in range(n):
        for j in range(c):
            d = p[i, j] - (1.0 if labels[i] == j else 0.0)
            s += d * d
    s /= n
    if halve is None:
        halve = c == 2
    return s / 2 if halve else s


def hard_accuracy(scores, labels):
    return sum(1 for i, y in enumerate(labels) if argmax_lowest(scores[i]) == y) / len(labels)


def topk_indices(row, k):
    order = sorted(range(len(row)), key=lambda j: (-row[j], j))
    return order[:k]


def hard_topk(scores, labels, k):
    c = len(scores[0])
    if k >= c:
        return 1.0
    return sum(1 for i, y in enumerate(labels) if y in topk_indices(scores[i], k)) / len(labels)


def hard_bins(p, scores, labels, b, rule):
    edges = bin_edges(b)
    slots = n_slots(b, rule)
    cnt = [0] * slots
    sconf = [0.0] * slots
    scor = [0.0] * slots
    for i in range(len(labels)):
        pred = argmax_lowest(scores[i])
        conf = float(np.max(p[i]))
        k = bin_index(conf, edges, rule)
        cnt[k] += 1
        sconf[k] += conf
        scor[k] += 1.0 if pred == labels[i] else 0.0
    return edges, cnt, sconf, scor


def hard_ece_family(p, scores, labels, b, rule):
    edges, cnt, sconf, scor = hard_bins(p, scores, labels, b, rule)
    n = len(labels)
    ece = 0.0
    mce = 0.0
    sq = 0.0
    rel = []
    for k in range(len(cnt)):
        lower = edges[k] if k < b else 1.0
        upper = edges[k + 1] if k < b else 1.0
        if cnt[k] == 0:
            rel.append({"lower": lower, "upper": upper, "count": 0, "confidence": None, "accuracy": None})
            continue
        acc = scor[k] / cnt[k]
        conf = sconf[k] / cnt[k]
        gap = abs(acc - conf)
        ece += cnt[k] / n * gap
        sq += cnt[k] / n * gap * gap
        mce = max(mce, gap)
        rel.append({"lower": lower, "upper": upper, "count": cnt[k], "confidence": conf, "accuracy": acc})
    return {"ece": ece, "mce": mce, "rmsce": math.sqrt(sq), "reliability": rel}


def ace_edges_of(conf_sorted, b):
    n = len(conf_sorted)
    qs = bin_edges(b)
    edges = []
    for q in qs:
        h = (n - 1) * q
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        edges.append(conf_sorted[lo] + (h - lo) * (conf_sorted[hi] - conf_sorted[lo]))
    edges[0] = 0.0
    edges[-1] = 1.0
    return edges


def hard_ace(p, scores, labels, b):
    conf = [float(np.max(p[i])) for i in range(len(labels))]
    edges = ace_edges_of(sorted(conf), b)
    n = len(labels)
    cnt = [0] * b
    sc = [0.0] * b
    sa = [0.0] * b
    for i in range(n):
        k = bin_index(conf[i], edges, "left")
        cnt[k] += 1
        sc[k] += conf[i]
        sa[k] += 1.0 if argmax_lowest(scores[i]) == labels[i] else 0.0
    ace = sum(cnt[k] / n * abs(sa[k] / cnt[k] - sc[k] / cnt[k]) for k in range(b) if cnt[k])
    return ace, edges


def hard_classwise(p, labels, b, rule):
    n, c = p.shape
    edges = bin_edges(b)
    per = []
    for j in range(c):
        slots = n_slots(b, rule)
        cnt = [0] * slots
        sp = [0.0] * slots
        sy = [0.0] * slots
        for i in range(n):
            k = bin_index(p[i, j], edges, rule)
            cnt[k] += 1
            sp[k] += p[i, j]
            sy[k] += 1.0 if labels[i] == j else 0.0
        per.append(sum(cnt[k] / n * abs(sy[k] / cnt[k] - sp[k] / cnt[k]) for k in range(slots) if cnt[k]))
    return sum(per) / c, per


# ---- soft targets (vectorised; indicator replaced by t) ----

def soft_metrics_core(logits, p, scores, t, b, rule, k, halve):
    n, c = p.shape
    rows = np.arange(n)
    pred = np.argmax(scores, axis=1)  # lowest index on ties
    conf = p[rows, pred]
    a = t[rows, pred]  # expected correctness of each row
    if logits is not None:
        logp = log_softmax_rows(logits)
    else:
        logp = np.log(np.clip(p, EPS, 1 - EPS))
    out = {}
    out["nll"] = float(-np.mean((t * logp).sum(axis=1)))
    br = float(np.mean(((p - t) ** 2).sum(axis=1)))
    if halve is None:
        halve = c == 2
    out["brier"] = br / 2 if halve else br
    out["accuracy"] = float(np.mean(a))
    topk = [float(t[i, topk_indices(list(scores[i]), min(k, c))].sum()) for i in range(n)]
    out["top_k_accuracy"] = float(np.mean(topk))
    with np.errstate(divide="ignore", invalid="ignore"):
        tlogt = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
    out["target_entropy"] = float(np.mean(-tlogt.sum(axis=1)))
    out["kl"] = out["nll"] - out["target_entropy"]

    # confidence bins
    edges = bin_edges(b)
    slots = n_slots(b, rule)
    idx = np.array([bin_index(float(cf), edges, rule) for cf in conf])
    ece = mce = sq = 0.0
    rel = []
    for s in range(slots):
        lower = edges[s] if s < b else 1.0
        upper = edges[s + 1] if s < b else 1.0
        m = idx == s
        cnt = int(m.sum())
        if cnt == 0:
            rel.append({"lower": lower, "upper": upper, "count": 0, "confidence": None, "accuracy": None})
            continue
        acc_b = float(a[m].sum() / cnt)
        conf_b = float(conf[m].sum() / cnt)
        gap = abs(acc_b - conf_b)
        ece += cnt / n * gap
        sq += cnt / n * gap * gap
        mce = max(mce, gap)
        rel.append({"lower": lower, "upper": upper, "count": cnt, "confidence": conf_b, "accuracy": acc_b})
    out["ece"] = ece
    out["mce"] = mce
    out["rmsce"] = math.sqrt(sq)
    out["reliability"] = {"bin_rule": rule, "bins": rel}

    # adaptive (equal-mass) bins
    aedges = ace_edges_of(sorted(float(x) for x in conf), b)
    aidx = np.array([bin_index(float(cf), aedges, "left") for cf in conf])
    ace = 0.0
    for s in range(b):
        m = aidx == s
        cnt = int(m.sum())
        if cnt:
            ace += cnt / n * abs(float(a[m].sum() / cnt) - float(conf[m].sum() / cnt))
    out["ace"] = ace
    out["ace_edges"] = aedges

    # classwise
    per = []
    for j in range(c):
        cidx = np.array([bin_index(float(v), edges, rule) for v in p[:, j]])
        tot = 0.0
        for s in range(slots):
            m = cidx == s
            cnt = int(m.sum())
            if cnt:
                tot += cnt / n * abs(float(t[m, j].sum() / cnt) - float(p[m, j].sum() / cnt))
        per.append(tot)
    out["classwise_ece"] = sum(per) / c
    out["classwise_ece_per_class"] = per
    return out


def hard_metrics_core(logits, p, scores, labels, b, rule, k, halve):
    out = {
        "nll": hard_nll(logits, p, labels),
        "brier": hard_brier(p, labels, halve),
        "accuracy": hard_accuracy(scores, labels),
        "top_k_accuracy": hard_topk(scores, labels, k),
        "target_entropy": 0.0,
    }
    out["kl"] = out["nll"]
    fam = hard_ece_family(p, scores, labels, b, rule)
    out["ece"], out["mce"], out["rmsce"] = fam["ece"], fam["mce"], fam["rmsce"]
    out["reliability"] = {"bin_rule": rule, "bins": fam["reliability"]}
    out["ace"], out["ace_edges"] = hard_ace(p, scores, labels, b)
    out["classwise_ece"], out["classwise_ece_per_class"] = hard_classwise(p, labels, b, rule)
    return out


# --------------------------------------------------------------------------------------
# POST /v1/metrics: request handling (validation as the contract and its conventions
# describe, then the numbers).
# --------------------------------------------------------------------------------------

METRIC_NAMES = ["ece", "ace", "mce", "classwise_ece", "brier", "nll", "accuracy", "top_k_accuracy", "opis",
                "rmsce", "target_entropy", "kl", "calibrated_nll"]
DEFAULT_METRICS = ["ece", "nll", "brier", "accuracy"]
METRIC_FIELDS = {"metrics", "reliability", "params", "logits", "probs", "scores", "labels", "targets",
                 "similarity", "distance", "output_encoding", "output_dtype"}
METRIC_PARAMS = {"bins", "bin_rule", "k", "brier_scale_by_half", "d_min", "d_max", "n_thresholds", "utility",
                 "repeats", "seed"}


def _matrix(body, name):
    m = body[name]
    arr = np.asarray(m, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise err422("invalid_shape", f"/{name}")
    return arr


def _labels(body, name="labels"):
    raw = body[name]
    if not isinstance(raw, list):
        raise err422("invalid_shape", f"/{name}")
    out = []
    for i, v in enumerate(raw):
        if isinstance(v, list) or not is_int_like(v):
            if isinstance(v, list):
                raise err422("invalid_shape", f"/{name}")
            raise err422("invalid_label", f"/{name}/{i}")
        out.append(int(v))
    return out


def _metric_list(body, known, default):
    if "metrics" not in body:
        return list(default), False
    items = body["metrics"]
    if not isinstance(items, list) or not items:
        raise err422("invalid_param", "/metrics")
    names = []
    for i, it in enumerate(items):
        if not isinstance(it, str) or it not in known:
            raise err422("invalid_param", f"/metrics/{i}")
        if it not in names:
            names.append(it)
    return names, True


def _int_param(params, name, default, lo, hi):
    if name not in params:
        return default
    v = params[name]
    if isinstance(v, bool) or not is_int_like(v) or not (lo <= v <= hi):
        raise err422("invalid_param", f"/params/{name}")
    return int(v)


def metrics_request(body):
    for key in body:
        if key not in METRIC_FIELDS:
            raise err422("unknown_field", f"/{key}")
    metrics, _ = _metric_list(body, METRIC_NAMES, DEFAULT_METRICS)
    params = body.get("params", {})
    for key in params:
        if key not in METRIC_PARAMS:
            raise err422("unknown_field", f"/params/{key}")
    bins = _int_param(params, "bins", 15, 1, 10000)
    rule = params.get("bin_rule", "left")
    if rule not in ("left", "right", "torchmetrics"):
        raise err422("invalid_param", "/params/bin_rule")
    k = _int_param(params, "k", 5, 1, 2**53 - 1)
    halve = params.get("brier_scale_by_half", "auto")
    halve = None if halve == "auto" else halve
    repeats = _int_param(params, "repeats", 5, 1, 1000)
    seed = _int_param(params, "seed", 0, 0, 2**53 - 1)

    present = [f for f in ("logits", "probs", "scores") if f in body]
    if len(present) > 1:
        raise err422("invalid_input", f"/{present[-1]}")
    if not present:
        raise err422("missing_field", "/logits")
    src = present[0]
    logits = None
    if src == "logits":
        logits = _matrix(body, "logits")
        if logits.shape[1] < 2:
            raise err422("invalid_shape", "/logits")
        p = softmax_rows(logits)
        scores = logits
    else:
        raw = np.asarray(body[src], dtype=np.float64)
        if src == "scores" and raw.ndim != 1:
            raise err422("invalid_shape", "/scores")
        if raw.ndim == 1:
            if raw.shape[0] < 1:
                raise err422("invalid_shape", f"/{src}")
            if np.any(raw < 0) or np.any(raw > 1):
                raise err422("invalid_input", f"/{src}")
            p = np.stack([1.0 - raw, raw], axis=1)
        else:
            p = _matrix(body, "probs")
            if p.shape[1] < 2:
                raise err422("invalid_shape", "/probs")
            if np.any(p < 0) or np.any(p > 1) or np.any(np.abs(p.sum(axis=1) - 1) > 1e-6):
                raise err422("invalid_input", "/probs")
        scores = p
    n, c = p.shape

    has_labels, has_targets = "labels" in body, "targets" in body
    if has_labels == has_targets:
        raise err422("missing_field", "/labels")
    if has_labels:
        labels = _labels(body)
        if len(labels) != n:
            raise err422("invalid_shape", "/labels")
        for i, y in enumerate(labels):
            if not (0 <= y < c):
                raise err422("invalid_label", f"/labels/{i}")
        t = np.zeros((n, c))
        t[np.arange(n), labels] = 1.0
    else:
        labels = None
        t = np.asarray(body["targets"], dtype=np.float64)
        if t.ndim != 2 or t.shape != (n, c):
            raise err422("invalid_shape", "/targets")
        for i in range(n):
            for j in range(c):
                if t[i, j] < 0:
                    raise err422("invalid_target", f"/targets/{i}/{j}")
            if abs(t[i].sum() - 1) > 1e-6:
                raise err422("invalid_target", f"/targets/{i}")

    if "calibrated_nll" in metrics:
        if logits is None:
            raise err422("missing_field", "/logits")
        if labels is None:
            raise err422("invalid_input", "/targets")
        if n < 2:
            raise err422("invalid_shape", "/logits")

    core = soft_metrics_core(logits, p, scores, t, bins, rule, k, halve)
    resp = {"n": n, "classes": c}
    for name in metrics:
        if name == "calibrated_nll":
            cal = calibrated_nll(logits, labels, proposed_halvings(n, repeats, seed))
            resp["calibrated_nll"] = cal["mean"]
            resp["calibrated_nll_std"] = cal["std"]
        elif name == "ace":
            resp["ace"] = core["ace"]
            resp["ace_edges"] = core["ace_edges"]
        elif name == "classwise_ece":
            resp["classwise_ece"] = core["classwise_ece"]
            resp["classwise_ece_per_class"] = core["classwise_ece_per_class"]
        elif name == "opis":
            raise NotImplementedError("opis is not part of these vectors")
        else:
            resp[name] = core[name]
    if body.get("reliability"):
        resp["reliability"] = core["reliability"]
    return resp


def hard_response(body):
    """The same request answered by the direct hard-label implementation (labels only)."""
    params = body.get("params", {})
    b = params.get("bins", 15)
    rule = params.get("bin_rule", "left")
    k = params.get("k", 5)
    halve = params.get("brier_scale_by_half", "auto")
    halve = None if halve == "auto" else halve
    logits = None
    if "logits" in body:
        logits = np.asarray(body["logits"], dtype=np.float64)
        p = softmax_rows(logits)
        scores = logits
    else:
        raw = np.asarray(body["probs"], dtype=np.float64)
        p = np.stack([1.0 - raw, raw], axis=1) if raw.ndim == 1 else raw
        scores = p
    labels = [int(v) for v in body["labels"]]
    core = hard_metrics_core(logits, p, scores, labels, b, rule, k, halve)
    metrics = body.get("metrics", DEFAULT_METRICS)
    resp = {"n": len(labels), "classes": p.shape[1]}
    for name in metrics:
        resp[name] = core[name]
        if name == "ace":
            resp["ace_edges"] = core["ace_edges"]
        if name == "classwise_ece":
            resp["classwise_ece_per_class"] = core["classwise_ece_per_class"]
    if body.get("reliability"):
        resp["reliability"] = core["reliability"]
    return resp


def calibrated_nll(logits, labels, halvings):
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    per = []
    for r, (a, b) in enumerate(halvings):
        for fit_half, eval_half, fit_name in ((a, b, "first_half"), (b, a, "second_half")):
            temp, at_bound, converged = fit_temperature(z[fit_half], y[fit_half])
            assert converged
            check_temperature_against_scipy(z[fit_half], y[fit_half], temp, at_bound)
            per.append({"repeat": r, "fit_on": fit_name, "temperature": temp, "at_bound": at_bound,
                        "nll": nll_at_temperature(z[eval_half], y[eval_half], temp)})
    vals = np.array([e["nll"] for e in per])
    return {"mean": float(vals.mean()), "std": float(vals.std()), "per_split": per}


# --------------------------------------------------------------------------------------
# POST /v1/embedding-metrics
# --------------------------------------------------------------------------------------

EMB_METRICS = ["alignment", "uniformity", "tolerance", "nc1", "mean_positive_cosine", "mean_negative_cosine"]
EMB_FIELDS = {"embeddings", "labels", "queries", "keys", "metrics", "params", "output_encoding", "output_dtype"}
EMB_PARAMS = {"normalize", "alignment_alpha", "uniformity_t"}


def _positive_number(params, name, default):
    if name not in params:
        return default
    v = params[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise err422("invalid_param", f"/params/{name}")
    return float(v)


def unit_rows(x, field):
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        m = np.max(np.abs(x[i]))
        if m == 0:
            raise err422("invalid_input", f"/{field}/{i}")
        s = x[i] / m
        out[i] = s / math.sqrt(float(s @ s))
    return out


def cosine(a, b):
    return float(a @ b) / (math.sqrt(float(a @ a)) * math.sqrt(float(b @ b)))


def uniformity_of(u, t):
    n = u.shape[0]
    if n < 2:
        return None
    vals = []
    for i in range(n):
        for j in range(i + 1, n):
            d = u[i] - u[j]
            vals.append(-t * float(d @ d))
    return logsumexp_1d(vals) - math.log(len(vals))


def pinv_sym(s, rtol=None):
    """Pseudo-inverse of a symmetric PSD matrix from its eigen-decomposition."""
    lam, v = np.linalg.eigh(s)
    lmax = float(np.max(np.abs(lam))) if lam.size else 0.0
    if lmax == 0.0:
        return np.zeros_like(s)
    cut = (s.shape[0] * EPS if rtol is None else rtol) * lmax
    keep = lam > cut
    return (v[:, keep] / lam[keep]) @ v[:, keep].T


def nc1_parts(h, labels):
    h = np.asarray(h, dtype=np.float64)
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    n, d = h.shape
    c = len(classes)
    mu_g = h.mean(axis=0)
    means = {k: h[labels == k].mean(axis=0) for k in classes}
    sw = np.zeros((d, d))
    for i in range(n):
        r = h[i] - means[labels[i]]
        sw += np.outer(r, r)
    sw /= n
    sb = np.zeros((d, d))
    for k in classes:
        r = means[k] - mu_g
        sb += np.outer(r, r)
    sb /= c
    return sw, sb, c, means


def nc1_value(h, labels, centre="global"):
    sw, sb, c, means = nc1_parts(h, labels)
    if centre == "class_means":
        m = np.array([means[k] for k in sorted(means)])
        mm = m.mean(axis=0)
        sb = sum(np.outer(r - mm, r - mm) for r in m) / c
    return float(np.trace(sw @ pinv_sym(sb))) / c, sw, sb, c


def check_nc1(h, labels, value):
    """Other routes to the same number: scipy's SVD pinv, the SVD of the D x C matrix of
    centred class means, and a range of cut-offs."""
    import scipy.linalg

    sw, sb, c, means = nc1_parts(h, labels)
    v2 = float(np.trace(sw @ scipy.linalg.pinv(sb))) / c
    classes = sorted(means)
    mu_g = np.asarray(h).mean(axis=0)
    m = np.stack([means[k] - mu_g for k in classes], axis=1)  # D x C
    uu, ss, _ = np.linalg.svd(m, full_matrices=False)
    keep = ss > ss.max() * max(m.shape) * EPS * 16
    # Sigma_B = M M^T / C  ->  Sigma_B^+ = C * U diag(1/s^2) U^T
    sbp = c * (uu[:, keep] / ss[keep] ** 2) @ uu[:, keep].T
    v3 = float(np.trace(sw @ sbp)) / c
    scale = max(1.0, abs(value))
    assert abs(v2 - value) <= 1e-10 * scale, (v2, value)
    assert abs(v3 - value) <= 1e-10 * scale, (v3, value)
    for rtol in (1e-12, 1e-9, 1e-6):
        v4 = float(np.trace(sw @ pinv_sym(sb, rtol))) / c
        assert abs(v4 - value) <= 1e-10 * scale, ("cut-off sensitive nc1", rtol, v4, value)


def embedding_request(body, checks=True):
    for key in body:
        if key not in EMB_FIELDS:
            raise err422("unknown_field", f"/{key}")
    params = body.get("params", {})
    for key in params:
        if key not in EMB_PARAMS:
            raise err422("unknown_field", f"/params/{key}")
    normalize = params.get("normalize", True)
    if not isinstance(normalize, bool):
        raise err422("invalid_param", "/params/normalize")
    alpha = _positive_number(params, "alignment_alpha", 2.0)
    t = _positive_number(params, "uniformity_t", 2.0)

    has_e = "embeddings" in body
    has_q, has_k = "queries" in body, "keys" in body
    if has_e and (has_q or has_k):
        raise err422("invalid_input", "/queries" if has_q else "/keys")
    if not has_e and not has_q and not has_k:
        raise err422("missing_field", "/embeddings")
    if has_q != has_k:
        raise err422("missing_field", "/keys" if has_q else "/queries")
    pairs = has_q
    if pairs:
        q = _matrix(body, "queries")
        k = _matrix(body, "keys")
        if k.shape[0] != q.shape[0] or k.shape[1] != q.shape[1]:
            raise err422("invalid_shape", "/keys")
        if q.shape[0] > MAX_EMBEDDING_ROWS:
            raise RequestError(413, "content_too_large", "/queries")
        if "labels" in body:
            raise err422("invalid_input", "/labels")
        n = q.shape[0]
        labels = None
    else:
        e = body["embeddings"]
        if isinstance(e, dict):  # {"shape", "data"} form
            e = np.asarray(e["data"], dtype=np.float64).reshape(e["shape"])
        e = np.asarray(e, dtype=np.float64)
        if e.ndim != 2 or e.shape[0] < 1 or e.shape[1] < 1:
            raise err422("invalid_shape", "/embeddings")
        n = e.shape[0]
        if n > MAX_EMBEDDING_ROWS:
            raise RequestError(413, "content_too_large", "/embeddings")
        labels = None
        if "labels" in body:
            raw = body["labels"]
            if isinstance(raw, dict):
                raw = raw["data"]
            labels = _labels({"labels": raw})
            if len(labels) != n:
                raise err422("invalid_shape", "/labels")
    n_classes = len(set(labels)) if labels is not None else 0

    def allowed(name):
        if name == "uniformity":
            return True
        if pairs:
            return name in ("alignment", "mean_positive_cosine", "mean_negative_cosine")
        if labels is None:
            return False
        if name == "nc1":
            return n_classes >= 2
        return True

    if "metrics" in body:
        metrics, _ = _metric_list(body, EMB_METRICS, [])
        for i, name in enumerate(metrics):
            if not allowed(name):
                raise err422("invalid_input", f"/metrics/{i}")
    else:
        metrics = [m for m in EMB_METRICS if allowed(m)]

    uses_cosine = any(m in metrics for m in ("tolerance", "mean_positive_cosine", "mean_negative_cosine"))
    resp = {}
    if pairs:
        if normalize or uses_cosine:
            unit_rows(q, "queries")  # zero-row check (cosines need non-zero rows too)
            unit_rows(k, "keys")
        uq = unit_rows(q, "queries") if normalize else q
        uk = unit_rows(k, "keys") if normalize else k
        for name in metrics:
            if name == "alignment":
                resp[name] = float(np.mean([math.sqrt(float((uq[i] - uk[i]) @ (uq[i] - uk[i]))) ** alpha
                                            for i in range(n)]))
            elif name == "uniformity":
                a, b = uniformity_of(uq, t), uniformity_of(uk, t)
                resp[name] = None if a is None else (a + b) / 2
            elif name == "mean_positive_cosine":
                resp[name] = float(np.mean([cosine(q[i], k[i]) for i in range(n)]))
            elif name == "mean_negative_cosine":
                vals = [cosine(q[i], k[j]) for i in range(n) for j in range(n) if i != j]
                resp[name] = float(np.mean(vals)) if vals else None
    else:
        if normalize or uses_cosine:
            unit_rows(e, "embeddings")
        u = unit_rows(e, "embeddings") if normalize else e
        same = [(i, j) for i in range(n) for j in range(i + 1, n) if labels is not None and labels[i] == labels[j]]
        diff = [(i, j) for i in range(n) for j in range(i + 1, n) if labels is not None and labels[i] != labels[j]]
        for name in metrics:
            if name == "alignment":
                resp[name] = (float(np.mean([math.sqrt(float((u[i] - u[j]) @ (u[i] - u[j]))) ** alpha
                                             for i, j in same])) if same else None)
            elif name == "uniformity":
                resp[name] = uniformity_of(u, t)
            elif name in ("tolerance", "mean_positive_cosine"):
                resp[name] = float(np.mean([cosine(e[i], e[j]) for i, j in same])) if same else None
            elif name == "mean_negative_cosine":
                resp[name] = float(np.mean([cosine(e[i], e[j]) for i, j in diff])) if diff else None
            elif name == "nc1":
                v, _, _, _ = nc1_value(u, labels)
                if checks:
                    check_nc1(u, labels, v)
                resp[name] = v
    if checks:
        cross_check_embedding(body, resp, normalize, alpha, t)
    return resp


def cross_check_embedding(body, resp, normalize, alpha, t):
    """Second route to alignment, uniformity and the cosines: Gram matrices and scipy's
    pdist, as a GEMM-based implementation would compute them."""
    from scipy.spatial.distance import pdist

    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms > 0, norms, 1.0)  # a zero row stays zero (only unnormalised distances use it)

    def unif(x):
        d2 = pdist(x, "sqeuclidean")
        return float(np.log(np.mean(np.exp(-t * d2))))

    if "queries" in body:
        q, k = np.asarray(body["queries"], float), np.asarray(body["keys"], float)
        uq, uk = (unit(q), unit(k)) if normalize else (q, k)
        g = unit(q) @ unit(k).T
        n = q.shape[0]
        checks = {
            "alignment": float(np.mean(np.linalg.norm(uq - uk, axis=1) ** alpha)),
            "uniformity": (unif(uq) + unif(uk)) / 2 if n > 1 else None,
            "mean_positive_cosine": float(np.mean(np.diag(g))),
            "mean_negative_cosine": float((g.sum() - np.trace(g)) / (n * (n - 1))) if n > 1 else None,
        }
    else:
        e = body["embeddings"]
        if isinstance(e, dict):
            return
        e = np.asarray(e, dtype=np.float64)
        u = unit(e) if normalize else e
        n = e.shape[0]
        checks = {"uniformity": unif(u) if n > 1 else None}
        if "labels" in body:
            y = np.asarray(body["labels"])
            iu = np.triu_indices(n, 1)
            same = (y[:, None] == y[None, :])[iu]
            g = (unit(e) @ unit(e).T)[iu]
            dist = np.sqrt(pdist(u, "sqeuclidean"))
            checks["alignment"] = float(np.mean(dist[same] ** alpha)) if same.any() else None
            checks["tolerance"] = float(np.mean(g[same])) if same.any() else None
            checks["mean_positive_cosine"] = checks["tolerance"]
            checks["mean_negative_cosine"] = float(np.mean(g[~same])) if (~same).any() else None
    for key, v in checks.items():
        if key in resp:
            if v is None or resp[key] is None:
                assert v is None and resp[key] is None, (key, v, resp[key])
            else:
                assert abs(v - resp[key]) <= 1e-13 * max(1.0, abs(v)), (key, v, resp[key])


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

def rounded(a, decimals=4):
    return np.round(np.asarray(a, dtype=np.float64), decimals)


def tolist(a):
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return a.tolist()
    return [tolist(x) for x in a] if a.ndim > 1 else [float(x) for x in a]


def make_logits(rng, n, c, signal=2.5, noise=1.2):
    y = rng.integers(0, c, size=n)
    z = rng.normal(0, noise, size=(n, c))
    z[np.arange(n), y] += signal
    return rounded(z), y


def soft_targets_from_votes(rng, z, voters=20, sharpen=1.0):
    p = softmax_rows(np.asarray(z) * sharpen)
    counts = np.array([rng.multinomial(voters, row) for row in p])
    return counts / voters


def clustered_embeddings(rng, labels, d, spread=0.6):
    classes = sorted(set(labels))
    centres = {k: rng.normal(0, 1, size=d) for k in classes}
    return rounded(np.array([centres[k] + rng.normal(0, spread, size=d) for k in labels]))


# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------

def case(name, body, tol, basis="contract", note=None, **extra):
    c = {"name": name}
    if note:
        c["note"] = note
    c["basis"] = basis
    c["input"] = body
    c.update(extra)
    return c


def answered(name, body, fn, tol, basis="contract", note=None, **extra):
    c = case(name, body, tol, basis, note, **extra)
    c["expected"] = fn(body)
    c["tol"] = tol
    return c


def rejected(name, body, fn, status, code, field, basis="contract", note=None):
    try:
        fn(body)
    except RequestError as e:
        got = e.as_json()
        want = {"status": status, "code": code, "field": field}
        assert got == want, (name, got, want)
    else:
        raise AssertionError(f"{name}: the reference accepted an invalid request")
    c = case(name, body, None, basis, note)
    c["expected_error"] = {"status": status, "code": code, "field": field}
    return c


def embedding_cases():
    rng = np.random.default_rng(20240601)
    out = []
    E = embedding_request

    # 12 rows, D = 5, three imbalanced classes (5, 4, 3) with arbitrary integer ids.
    labels = [3, 3, 7, 3, 7, -1, 3, 7, -1, 7, 3, -1]
    emb = clustered_embeddings(rng, labels, 5)
    body = {"embeddings": tolist(emb), "labels": labels}
    out.append(answered("emb_labels_defaults_N12_D5_C3", body, E, 1e-12,
                        note="no metrics, no params: every metric, normalize true, alpha 2, t 2; labels are "
                             "arbitrary integers (class ids 3, 7, -1; imbalanced 5/4/3, so the global mean "
                             "differs from the mean of the class means)",
                        informative={"nc1_if_Sigma_B_were_centred_on_the_mean_of_class_means":
                                     nc1_value(unit_rows(emb, "embeddings"), labels, "class_means")[0]}))
    relabel = {3: 0, 7: 1, -1: 2}
    body2 = {"embeddings": tolist(emb), "labels": [relabel[v] for v in labels],
             "metrics": ["nc1", "tolerance", "alignment", "uniformity", "mean_positive_cosine",
                         "mean_negative_cosine"],
             "params": {"normalize": True, "alignment_alpha": 2, "uniformity_t": 2}}
    c = answered("emb_labels_relabelled_explicit_defaults", body2, E, 1e-12,
                 note="same data with labels renamed 3->0, 7->1, -1->2 and every default spelled out: "
                      "the same numbers as emb_labels_defaults_N12_D5_C3")
    assert all(abs(c["expected"][k] - out[0]["expected"][k]) <= 1e-15 for k in c["expected"])
    out.append(c)
    out.append(answered("emb_labels_unnormalized_alpha1_t0.5", {
        "embeddings": tolist(emb), "labels": labels,
        "params": {"normalize": False, "alignment_alpha": 1, "uniformity_t": 0.5}}, E, 1e-11,
        note="normalize false: alignment, uniformity and nc1 on the raw rows; the cosines are still true "
             "cosines (unchanged from the normalised case)"))
    out.append(answered("emb_labels_alpha1.5_t3_subset", {
        "embeddings": tolist(emb), "labels": labels,
        "metrics": ["uniformity", "alignment"],
        "params": {"alignment_alpha": 1.5, "uniformity_t": 3}}, E, 1e-12,
        note="only the listed metrics are answered"))

    # nc1 where the pseudo-inverse matters: D = 8 > C - 1 = 2 (Sigma_B has rank 2 of 8).
    labels8 = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 2, 2]
    emb8 = clustered_embeddings(rng, labels8, 8, spread=0.4)
    u8 = unit_rows(emb8, "embeddings")
    _, _, sb8, _ = nc1_value(u8, labels8)
    ev8 = np.linalg.eigvalsh(sb8)
    out.append(answered("emb_nc1_rank_deficient_D8_C3", {
        "embeddings": tolist(emb8), "labels": labels8, "metrics": ["nc1"]}, E, 1e-10,
        note="Sigma_B is 8 x 8 of rank 2: a plain inverse does not exist; the pseudo-inverse keeps the two "
             "non-zero eigenvalues",
        informative={"Sigma_B_eigenvalues": [float(v) for v in ev8],
                     "nc1_if_Sigma_B_were_centred_on_the_mean_of_class_means":
                         nc1_value(u8, labels8, "class_means")[0]}))
    out.append(answered("emb_nc1_rank_deficient_unnormalized", {
        "embeddings": tolist(emb8), "labels": labels8, "metrics": ["nc1"],
        "params": {"normalize": False}}, E, 1e-10))

    # D = 2 < C - 1 = 3: Sigma_B is full rank (4 classes on the unit circle).
    labels2 = [0, 0, 1, 1, 2, 2, 3, 3, 3]
    ang = np.array([0.1, -0.2, 1.6, 1.5, 3.2, 3.0, 4.7, 4.6, 4.9])
    emb2 = rounded(np.stack([np.cos(ang), np.sin(ang)], axis=1) * rng.uniform(0.5, 2.0, size=(9, 1)))
    out.append(answered("emb_nc1_full_rank_D2_C4", {"embeddings": tolist(emb2), "labels": labels2}, E, 1e-10,
                        note="D = 2 < C - 1: Sigma_B is invertible and its pseudo-inverse is its inverse"))

    # Exact neural collapse: every row of a class identical, class means a simplex ETF.
    etf = [[2, -1, -1], [-1, 2, -1], [-1, -1, 2]]
    labels_c = [0, 1, 2, 0, 1, 2]
    emb_c = [[v * s for v in etf[y]] for y, s in zip(labels_c, [1, 1, 1, 3, 0.5, 2])]
    c = answered("emb_neural_collapse_simplex_etf", {"embeddings": emb_c, "labels": labels_c}, E, 1e-12,
                 note="rows of a class are positive multiples of one simplex-ETF vertex: after normalisation "
                      "nc1 = 0, alignment 0, tolerance 1, mean_negative_cosine = -1/(C-1) = -0.5")
    ex = c["expected"]
    assert ex["nc1"] == 0.0 and abs(ex["alignment"]) < 1e-15 and abs(ex["tolerance"] - 1) < 1e-15
    assert abs(ex["mean_negative_cosine"] + 0.5) < 1e-15
    out.append(c)

    # Degenerate pair sets.
    emb_d = tolist(rounded(rng.normal(size=(4, 3))))
    out.append(answered("emb_all_labels_distinct", {"embeddings": emb_d, "labels": [5, 6, 7, 8]}, E, 1e-12,
                        basis="choice",
                        note="no two rows share a label: no positive pair, so alignment, tolerance and "
                             "mean_positive_cosine are null; every class has one row, so Sigma_W = 0 and nc1 = 0"))
    out.append(answered("emb_single_class", {"embeddings": emb_d, "labels": [4, 4, 4, 4]}, E, 1e-12,
                        basis="choice",
                        note="one class: the default list leaves out nc1 (needs C >= 2); no negative pair, so "
                             "mean_negative_cosine is null"))
    out.append(answered("emb_no_labels_uniformity_only", {"embeddings": emb_d}, E, 1e-12, basis="choice",
                        note="embeddings without labels: the only metric they allow is uniformity"))
    out.append(answered("emb_single_row", {"embeddings": [[0.3, -0.4]], "labels": [1]}, E, 1e-12, basis="choice",
                        note="N = 1: no pair of any kind, every default metric is null"))
    zero_row = [[0.5, 0.1], [0.2, -0.3], [0.0, 0.0], [-0.4, 0.25]]
    out.append(answered("emb_zero_row_allowed_without_normalize", {
        "embeddings": zero_row, "labels": [0, 0, 1, 1], "metrics": ["alignment", "uniformity", "nc1"],
        "params": {"normalize": False}}, E, 1e-12, basis="choice",
        note="a zero row is fine when nothing normalises it and no cosine is asked for"))

    # Paired rows.
    nq, dq = 6, 4
    q = rounded(rng.normal(size=(nq, dq)))
    k = rounded(q + rng.normal(0, 0.5, size=(nq, dq)))
    out.append(answered("pairs_defaults_N6_D4", {"queries": tolist(q), "keys": tolist(k)}, E, 1e-12,
                        note="pairs: alignment over (q_i, k_i); uniformity = (U(queries) + U(keys)) / 2; "
                             "positive cosines over matched rows, negative over the N(N-1) unmatched ones"))
    out.append(answered("pairs_unnormalized_alpha1_t1", {
        "queries": tolist(q), "keys": tolist(k),
        "params": {"normalize": False, "alignment_alpha": 1, "uniformity_t": 1}}, E, 1e-11))
    out.append(answered("pairs_single_row", {"queries": [[1.0, 2.0]], "keys": [[2.0, 1.0]]}, E, 1e-12,
                        basis="choice", note="N = 1: uniformity and mean_negative_cosine have no pair: null"))
    return out


def embedding_error_cases():
    E = embedding_request
    emb = [[0.5, 0.1], [0.2, -0.3], [0.9, 0.4], [-0.4, 0.25]]
    lab = [0, 0, 1, 1]
    q = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
    out = []
    out.append(rejected("emb_err_nc1_one_class", {"embeddings": emb, "labels": [2, 2, 2, 2], "metrics": ["nc1"]},
                        E, 422, "invalid_input", "/metrics/0",
                        note="nc1 needs labels with C >= 2 (code and pointer are a choice)"))
    out.append(rejected("emb_err_tolerance_with_pairs", {"queries": q, "keys": q, "metrics": ["alignment", "tolerance"]},
                        E, 422, "invalid_input", "/metrics/1", note="tolerance needs labels"))
    out.append(rejected("emb_err_nc1_with_pairs", {"queries": q, "keys": q, "metrics": ["nc1"]},
                        E, 422, "invalid_input", "/metrics/0", note="nc1 needs labels"))
    out.append(rejected("emb_err_alignment_without_labels", {"embeddings": emb, "metrics": ["alignment"]},
                        E, 422, "invalid_input", "/metrics/0", basis="choice"))
    big = MAX_EMBEDDING_ROWS + 1
    out.append(rejected("emb_err_too_many_rows", {
        "embeddings": {"shape": [big, 1], "data": [1] * big},
        "labels": {"shape": [big], "data": [i % 2 for i in range(big)]}},
        E, 413, "content_too_large", "/embeddings",
        note="N = 16385 > 16384 (shape/data tensor form to keep the file small)"))
    out.append(rejected("emb_err_zero_row_normalized", {"embeddings": [[0.5, 0.1], [0.2, -0.3], [0.0, 0.0], [1.0, 1.0]],
                                                        "labels": lab},
                        E, 422, "invalid_input", "/embeddings/2", basis="choice",
                        note="a zero row cannot be normalised (the losses' rule)"))
    out.append(rejected("emb_err_zero_row_cosine", {"embeddings": [[0.5, 0.1], [0.0, 0.0], [0.9, 0.4], [1.0, 1.0]],
                                                    "labels": lab, "metrics": ["mean_positive_cosine"],
                                                    "params": {"normalize": False}},
                        E, 422, "invalid_input", "/embeddings/1", basis="choice",
                        note="the cosine of a zero row is undefined"))
    out.append(rejected("emb_err_zero_key", {"queries": q, "keys": [[1.0, 0.0], [0.0, 0.0], [0.6, 0.8]]},
                        E, 422, "invalid_input", "/keys/1", basis="choice"))
    out.append(rejected("emb_err_labels_count", {"embeddings": emb, "labels": [0, 1, 1]},
                        E, 422, "invalid_shape", "/labels"))
    out.append(rejected("emb_err_label_not_integer", {"embeddings": emb, "labels": [0, 1.5, 1, 0]},
                        E, 422, "invalid_label", "/labels/1"))
    out.append(rejected("emb_err_keys_rows", {"queries": q, "keys": q[:2]}, E, 422, "invalid_shape", "/keys",
                        note="keys must have the N rows of queries"))
    out.append(rejected("emb_err_keys_width", {"queries": q, "keys": [[1.0, 0.0, 0.0]] * 3},
                        E, 422, "invalid_shape", "/keys", note="keys must have the D columns of queries"))
    out.append(rejected("emb_err_embeddings_and_queries", {"embeddings": emb, "labels": lab, "queries": q, "keys": q},
                        E, 422, "invalid_input", "/queries", basis="choice"))
    out.append(rejected("emb_err_no_inputs", {"metrics": ["uniformity"]}, E, 422, "missing_field", "/embeddings",
                        basis="choice"))
    out.append(rejected("emb_err_queries_without_keys", {"queries": q}, E, 422, "missing_field", "/keys",
                        basis="choice"))
    out.append(rejected("emb_err_labels_with_pairs", {"queries": q, "keys": q, "labels": [0, 1, 2]},
                        E, 422, "invalid_input", "/labels", basis="choice"))
    out.append(rejected("emb_err_unknown_metric", {"embeddings": emb, "labels": lab, "metrics": ["uniformity", "alignmnet"]},
                        E, 422, "invalid_param", "/metrics/1", basis="choice",
                        note="as /v1/metrics answers an unknown metric name"))
    out.append(rejected("emb_err_alpha_zero", {"embeddings": emb, "labels": lab, "params": {"alignment_alpha": 0}},
                        E, 422, "invalid_param", "/params/alignment_alpha", basis="choice",
                        note="alignment_alpha must be > 0"))
    out.append(rejected("emb_err_t_negative", {"embeddings": emb, "labels": lab, "params": {"uniformity_t": -1}},
                        E, 422, "invalid_param", "/params/uniformity_t", basis="choice",
                        note="uniformity_t must be > 0"))
    out.append(rejected("emb_err_normalize_not_bool", {"embeddings": emb, "labels": lab, "params": {"normalize": "yes"}},
                        E, 422, "invalid_param", "/params/normalize"))
    out.append(rejected("emb_err_unknown_param", {"embeddings": emb, "labels": lab, "params": {"temperature": 0.1}},
                        E, 422, "unknown_field", "/params/temperature"))
    out.append(rejected("emb_err_unknown_field", {"embeddings": emb, "labelz": lab}, E, 422, "unknown_field", "/labelz"))
    return out


def metrics_cases():
    rng = np.random.default_rng(20240602)
    M = metrics_request
    out = []
    all_soft = ["nll", "brier", "accuracy", "top_k_accuracy", "ece", "mce", "ace", "classwise_ece", "rmsce",
                "target_entropy", "kl"]

    # ---- soft targets from logits (K = 4, N = 16): annotator-vote fractions k/20 ----
    z, _ = make_logits(rng, 16, 4)
    t = soft_targets_from_votes(rng, z, 20, sharpen=0.8)
    body = {"logits": tolist(z), "targets": tolist(t), "metrics": all_soft,
            "params": {"bins": 5, "k": 2}, "reliability": True}
    out.append(answered("soft_targets_logits_K4_N16", body, M, 1e-12,
                        note="targets are vote fractions of 20 annotators (rows sum to 1 within 1e-15)"))
    body_d = {"logits": tolist(z), "targets": tolist(t)}
    out.append(answered("soft_targets_default_metrics", body_d, M, 1e-12,
                        note="no metrics list: the default ece, nll, brier, accuracy (15 bins, left rule)"))
    out.append(answered("soft_targets_right_rule_torchmetrics_k3", {
        "logits": tolist(z), "targets": tolist(t), "metrics": ["ece", "mce", "rmsce", "classwise_ece", "top_k_accuracy"],
        "params": {"bins": 8, "bin_rule": "torchmetrics", "k": 3}, "reliability": True}, M, 1e-12))

    # ---- soft targets from probs, with a zero probability where the target is > 0 ----
    p3 = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [0.25, 0.25, 0.5], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8],
                   [0.3, 0.3, 0.4]])
    t3 = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [0.0, 0.0, 1.0], [0.75, 0.0, 0.25], [0.1, 0.3, 0.6],
                   [1 / 3, 1 / 3, 1 / 3]])
    out.append(answered("soft_targets_probs_K3_clipping", {
        "probs": tolist(p3), "targets": [[round(v, 17) for v in r] for r in tolist(t3)],
        "metrics": all_soft, "params": {"bins": 4}, "reliability": True}, M, 1e-12,
        note="probs input: log p is clipped to [eps, 1-eps] (rows 1 and 3 put target mass on a zero "
             "probability: -0.2*log(eps) etc.); row 1 ties 0.5/0.5 -> class 1 (first maximum); "
             "row 5 has a target of 1/3 each"))

    # ---- binary soft targets: halving ----
    s2 = np.array([0.9, 0.2, 0.65, 0.4, 0.5, 0.05, 0.8])
    p2 = np.stack([1 - s2, s2], axis=1)
    t2 = np.array([[0.1, 0.9], [0.6, 0.4], [0.5, 0.5], [0.8, 0.2], [0.3, 0.7], [1.0, 0.0], [0.25, 0.75]])
    for flag, nm in (("auto", "auto"), (False, "false"), (True, "true")):
        out.append(answered(f"soft_targets_K2_brier_scale_by_half_{nm}", {
            "probs": tolist(p2), "targets": tolist(t2), "metrics": ["brier", "nll", "accuracy", "kl"],
            "params": {"brier_scale_by_half": flag}}, M, 1e-12,
            note="C = 2: 'auto' and true halve the Brier score, false does not"))

    # ---- one-hot targets == hard labels ----
    z10, y10 = make_logits(rng, 10, 3, signal=1.5)
    z10[3] = [1.25, 1.25, -0.5]  # a tie between classes 0 and 1 -> predicts 0
    onehot = np.zeros((10, 3))
    onehot[np.arange(10), y10] = 1.0
    for rule, bins in (("left", 10), ("right", 10), ("torchmetrics", 5)):
        params = {"bins": bins, "bin_rule": rule, "k": 2}
        soft_body = {"logits": tolist(z10), "targets": tolist(onehot), "metrics": all_soft, "params": params,
                     "reliability": True}
        hard_body = {"logits": tolist(z10), "labels": tolist(y10), "metrics": all_soft, "params": params,
                     "reliability": True}
        c = answered(f"soft_onehot_equals_hard_{rule}", soft_body, M, 1e-12,
                     note="one-hot targets: every metric equals its hard-label value exactly; input_hard is the "
                          "same request with labels, expected_hard the existing hard-label definitions computed "
                          "by a separate implementation (row 3 ties classes 0 and 1 -> class 0)",
                     input_hard=hard_body)
        hard = hard_response(hard_body)
        served_hard = M(hard_body)
        assert_same(c["expected"], hard, 0.0, c["name"])  # exactly equal
        assert_same(served_hard, hard, 0.0, c["name"] + " (labels)")
        c["expected_hard"] = hard
        out.append(c)
    # probs input, one-hot: clipping path
    p_oh = softmax_rows(z10)
    p_oh_r = rounded(p_oh, 6)
    p_oh_r[:, 2] = np.round(1 - p_oh_r[:, 0] - p_oh_r[:, 1], 6)
    soft_body = {"probs": tolist(p_oh_r), "targets": tolist(onehot), "metrics": all_soft, "params": {"bins": 10},
                 "reliability": True}
    hard_body = dict(soft_body)
    del hard_body["targets"]
    hard_body["labels"] = tolist(y10)
    c = answered("soft_onehot_equals_hard_probs", soft_body, M, 1e-12,
                 note="the same with probs input (clipped logs)", input_hard=hard_body)
    hard = hard_response(hard_body)
    assert_same(c["expected"], hard, 0.0, c["name"])
    c["expected_hard"] = hard
    out.append(c)

    # ---- rmsce with hard labels ----
    z40, y40 = make_logits(rng, 40, 4, signal=2.0, noise=1.0)
    out.append(answered("rmsce_hard_logits_K4_N40", {
        "logits": tolist(z40), "labels": tolist(y40), "metrics": ["rmsce", "ece", "mce"]}, M, 1e-12,
        note="rmsce = sqrt(sum_b (n_b/N)(acc_b - conf_b)^2) over the 15 default bins, left rule"))
    edge_p = [[0.5, 0.5], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.0, 1.0], [1.0, 0.0], [0.45, 0.55], [0.9, 0.1]]
    edge_y = [1, 1, 0, 1, 1, 0, 0, 0]
    for rule in ("left", "right", "torchmetrics"):
        out.append(answered(f"rmsce_edges_B10_{rule}", {
            "probs": edge_p, "labels": edge_y, "metrics": ["rmsce", "ece"],
            "params": {"bins": 10, "bin_rule": rule}, "reliability": True}, M, 1e-12,
            note="confidences on bin edges (0.5, 0.8 exactly; 0.6, 0.7 just below e_6, e_7) and at 1.0: the "
                 "three bin rules differ"))

    # ---- binary 1-D input ----
    s = [0.9, 0.2, 0.65, 0.4, 0.5, 0.05, 0.8, 0.0, 1.0, 0.35, 0.7, 0.55]
    ys = [1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1]
    binm = ["nll", "brier", "accuracy", "ece", "ace", "mce", "classwise_ece", "rmsce", "top_k_accuracy"]
    two_d = [[1.0 - v, v] for v in s]
    for field in ("probs", "scores"):
        body = {field: s, "labels": ys, "metrics": binm, "params": {"bins": 5, "k": 1}, "reliability": True}
        eq = {"probs": two_d, "labels": ys, "metrics": binm, "params": {"bins": 5, "k": 1}, "reliability": True}
        c = answered(f"binary_{field}_1d", body, M, 1e-12,
                     note=f"`{field}` [N] = P(class 1) is the probs [N][2] request [1-s, s] in input_equivalent; "
                          "s = 0.5 predicts class 0; s = 0 and 1 are clipped in the NLL; brier is halved (C = 2)",
                     input_equivalent=eq)
        assert_same(c["expected"], M(eq), 0.0, c["name"])
        out.append(c)

    # ---- calibrated NLL ----
    crng = np.random.default_rng(7)  # halves that are not separable: every fit has an interior optimum
    z20, y20 = make_logits(crng, 20, 3, signal=1.5, noise=1.5)
    out.append(calibrated_case("calibrated_nll_K3_N20_defaults", {
        "logits": tolist(z20), "labels": tolist(y20), "metrics": ["calibrated_nll", "nll"]}, 5, 0))
    z15, y15 = make_logits(crng, 15, 4, signal=1.0, noise=1.0)
    out.append(calibrated_case("calibrated_nll_K4_N15_odd_repeats3_seed7", {
        "logits": tolist(z15), "labels": tolist(y15), "metrics": ["calibrated_nll"],
        "params": {"repeats": 3, "seed": 7}}, 3, 7))
    out.append(calibrated_case("calibrated_nll_K4_N15_repeats1_seed42", {
        "logits": tolist(z15), "labels": tolist(y15), "metrics": ["calibrated_nll"],
        "params": {"repeats": 1, "seed": 42}}, 1, 42))
    return out


def calibrated_case(name, body, repeats, seed):
    z = np.asarray(body["logits"])
    y = np.asarray(body["labels"])
    halvings = proposed_halvings(len(y), repeats, seed)
    cal = calibrated_nll(z, y, halvings)
    resp = metrics_request(body)
    assert resp["calibrated_nll"] == cal["mean"]
    assert all(e["at_bound"] is None for e in cal["per_split"]), name
    c = case(name, body, None, "choice",
             note="expected holds for a build that draws the halves with the proposed SplitMix64 rule "
                  "(meta.choices); any build can check itself against splits/per_split: per repeat r, the "
                  "temperature fitted on first_half scores second_half and vice versa; calibrated_nll = mean of "
                  "the 2*repeats NLLs, calibrated_nll_std = their population std (ddof 0)")
    c["splits"] = [{"repeat": r, "first_half": a, "second_half": b} for r, (a, b) in enumerate(halvings)]
    c["per_split"] = cal["per_split"]
    c["expected"] = {k: resp[k] for k in resp}
    c["tol"] = 1e-9
    c["invariants"] = {
        "same_request_same_answer": True,
        "calibrated_nll_std_is_population_std": True,
    }
    return c


def metrics_error_cases():
    M = metrics_request
    z = [[1.0, 0.5, -0.5], [0.2, 0.1, 0.9], [0.0, 2.0, 1.0]]
    out = []
    t_ok = [[0.5, 0.5, 0.0], [0.0, 0.2, 0.8], [0.1, 0.8, 0.1]]
    out.append(rejected("soft_err_row_sum", {"logits": z, "targets": [[0.5, 0.5, 0.0], [0.0, 0.2, 0.80001], [0.1, 0.8, 0.1]]},
                        M, 422, "invalid_target", "/targets/1",
                        note="row 1 sums to 1.00001: off the simplex by more than 1e-6 (pointer/code as for the "
                             "losses' targets)"))
    out.append(rejected("soft_err_negative", {"logits": z, "targets": [[0.5, 0.5, 0.0], [-0.1, 0.3, 0.8], [0.1, 0.8, 0.1]]},
                        M, 422, "invalid_target", "/targets/1/0"))
    out.append(rejected("soft_err_shape", {"logits": z, "targets": [[0.5, 0.5], [0.2, 0.8], [0.1, 0.9]]},
                        M, 422, "invalid_shape", "/targets"))
    out.append(rejected("soft_err_labels_and_targets", {"logits": z, "targets": t_ok, "labels": [0, 2, 1]},
                        M, 422, "missing_field", "/labels",
                        note="exactly one of labels or targets (the losses' rule)"))
    out.append(rejected("soft_err_neither", {"logits": z}, M, 422, "missing_field", "/labels"))
    s = [0.2, 0.9, 0.5]
    out.append(rejected("binary_err_label_2", {"probs": s, "labels": [0, 1, 2]}, M, 422, "invalid_label", "/labels/2",
                        note="binary input: labels in {0, 1}"))
    out.append(rejected("binary_err_probs_above_1", {"probs": [0.2, 1.2, 0.5], "labels": [0, 1, 1]},
                        M, 422, "invalid_input", "/probs"))
    out.append(rejected("binary_err_scores_negative", {"scores": [0.2, -0.1, 0.5], "labels": [0, 1, 1]},
                        M, 422, "invalid_input", "/scores", note="scores here are probabilities of class 1"))
    out.append(rejected("binary_err_scores_2d", {"scores": [[0.8, 0.2], [0.1, 0.9]], "labels": [0, 1]},
                        M, 422, "invalid_shape", "/scores"))
    out.append(rejected("binary_err_probs_and_scores", {"probs": s, "scores": s, "labels": [0, 1, 1]},
                        M, 422, "invalid_input", "/scores", basis="choice"))
    out.append(rejected("binary_err_logits_and_scores", {"logits": [[0.0, 1.0]] * 3, "scores": s, "labels": [0, 1, 1]},
                        M, 422, "invalid_input", "/scores", basis="choice"))
    out.append(rejected("calnll_err_probs", {"probs": [[0.8, 0.2], [0.3, 0.7]], "labels": [0, 1],
                                             "metrics": ["calibrated_nll"]},
                        M, 422, "missing_field", "/logits", basis="choice",
                        note="calibrated_nll needs logits (as opis answers a missing similarity)"))
    out.append(rejected("calnll_err_targets", {"logits": z, "targets": t_ok, "metrics": ["calibrated_nll"]},
                        M, 422, "invalid_input", "/targets", basis="choice",
                        note="calibrated_nll is defined for hard labels only"))
    out.append(rejected("calnll_err_one_row", {"logits": [[0.1, 0.9]], "labels": [1], "metrics": ["calibrated_nll"]},
                        M, 422, "invalid_shape", "/logits", basis="choice",
                        note="two halves need N >= 2"))
    out.append(rejected("calnll_err_repeats_zero", {"logits": z, "labels": [0, 2, 1], "metrics": ["calibrated_nll"],
                                                    "params": {"repeats": 0}},
                        M, 422, "invalid_param", "/params/repeats", basis="choice", note="repeats in [1, 1000]"))
    out.append(rejected("calnll_err_seed_negative", {"logits": z, "labels": [0, 2, 1], "metrics": ["calibrated_nll"],
                                                     "params": {"seed": -1}},
                        M, 422, "invalid_param", "/params/seed", basis="choice", note="seed in [0, 2^53 - 1]"))
    out.append(rejected("metrics_err_unknown_metric", {"logits": z, "labels": [0, 2, 1], "metrics": ["rmse"]},
                        M, 422, "invalid_param", "/metrics/0"))
    return out


def select_cases():
    rng = np.random.default_rng(20240603)
    z, y = make_logits(rng, 24, 3, signal=3.0, noise=1.5)
    out = []
    temp, at_bound, conv = fit_temperature(z, y)
    check_temperature_against_scipy(z, y, temp)
    c = case("select_temperature_only_best_refit_on_all_rows",
             {"logits": tolist(z), "labels": tolist(y), "methods": ["temperature"], "folds": 3}, None, "contract",
             note="the fold assignment is not pinned by the contract, so only fold-independent parts are: the "
                  "single candidate wins and `best` is temperature scaling refitted on all 24 rows; ranking has "
                  "one entry with 3 per-fold values and no fit failures")
    c["expected"] = {"best": {"method": "temperature", "params": {"temperature": temp}}}
    c["expected_structure"] = {"ranking": [{"method": "temperature", "per_fold_length": 3, "fit_failures": 0}]}
    c["tol"] = 1e-9
    out.append(c)

    zs, ys = tolist(z[:6]), tolist(y[:6])
    base = {"logits": zs, "labels": ys}

    def S(body):
        return select_validate(body)

    out.append(rejected("select_err_folds_1", dict(base, folds=1), S, 422, "invalid_param", "/folds",
                        note="2 <= folds <= 20"))
    out.append(rejected("select_err_folds_21", dict(base, folds=21), S, 422, "invalid_param", "/folds"))
    out.append(rejected("select_err_metric", dict(base, metric="accuracy"), S, 422, "invalid_param", "/metric",
                        note="metric is one of nll, ece, brier, rmsce"))
    out.append(rejected("select_err_unknown_method", dict(base, methods=["temperature", "temprature"]), S, 422,
                        "invalid_param", "/methods/1", note="as the fit answers an unknown method"))
    out.append(rejected("select_err_binary_method_multiclass", dict(base, methods=["platt"]), S, 422,
                        "invalid_param", "/methods/0", basis="choice", note="platt is binary and C = 3"))
    out.append(rejected("select_err_correctness_aware_without_views", dict(base, methods=["correctness_aware"]), S,
                        422, "missing_field", "/views_logits", basis="choice",
                        note="correctness_aware applies only when views_logits is sent"))
    out.append(rejected("select_err_seed_negative", dict(base, seed=-3), S, 422, "invalid_param", "/seed",
                        basis="choice"))
    out.append(rejected("select_err_bad_name", dict(base, name="no spaces"), S, 422, "invalid_param", "/name",
                        note="names match [A-Za-z0-9._-]{1,64}"))
    out.append(rejected("select_err_label_range", {"logits": zs, "labels": [0, 1, 2, 3, 0, 1]}, S, 422,
                        "invalid_label", "/labels/3"))
    out.append(rejected("select_err_unknown_method_param", dict(base, params={"temperature": {"bogus": 1}}), S, 422,
                        "unknown_field", "/params/temperature/bogus"))
    return out


SELECT_FIELDS = {"logits", "scores", "labels", "views_logits", "methods", "folds", "seed", "metric", "params",
                 "name"}
MULTICLASS_METHODS = ["temperature", "histogram", "isotonic", "vector", "ensemble_temperature", "matrix", "dirichlet",
                      "correctness_aware"]
BINARY_ONLY = ["platt", "beta"]
METHOD_PARAMS = {"temperature": {"log_beta_bounds"}}


def select_validate(body):
    """Only the request checks of /v1/calibrators/select (the fits themselves are not
    reproduced here beyond temperature scaling)."""
    import re

    for key in body:
        if key not in SELECT_FIELDS:
            raise err422("unknown_field", f"/{key}")
    z = _matrix(body, "logits")
    labels = _labels(body)
    if len(labels) != z.shape[0]:
        raise err422("invalid_shape", "/labels")
    for i, v in enumerate(labels):
        if not (0 <= v < z.shape[1]):
            raise err422("invalid_label", f"/labels/{i}")
    folds = body.get("folds", 5)
    if isinstance(folds, bool) or not is_int_like(folds) or not (2 <= folds <= 20):
        raise err422("invalid_param", "/folds")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not is_int_like(seed) or not (0 <= seed <= 2**53 - 1):
        raise err422("invalid_param", "/seed")
    if body.get("metric", "nll") not in ("nll", "ece", "brier", "rmsce"):
        raise err422("invalid_param", "/metric")
    for i, m in enumerate(body.get("methods", [])):
        if m not in MULTICLASS_METHODS + BINARY_ONLY:
            raise err422("invalid_param", f"/methods/{i}")
        if m in BINARY_ONLY and z.shape[1] != 2:
            raise err422("invalid_param", f"/methods/{i}")
        if m == "correctness_aware" and "views_logits" not in body:
            raise err422("missing_field", "/views_logits")
    for m, ps in body.get("params", {}).items():
        for p in ps:
            if p not in METHOD_PARAMS.get(m, set()):
                raise err422("unknown_field", f"/params/{m}/{p}")
    if "name" in body and not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", body["name"]):
        raise err422("invalid_param", "/name")
    return {}


# --------------------------------------------------------------------------------------
# Checks against the earlier vectors, and helpers
# --------------------------------------------------------------------------------------

def assert_same(a, b, tol, what):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (what, sorted(a), sorted(b) if isinstance(b, dict) else b)
        for k in a:
            assert_same(a[k], b[k], tol, f"{what}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), what
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, tol, f"{what}[{i}]")
    elif a is None or b is None or isinstance(a, str) or isinstance(b, str):
        assert a == b, (what, a, b)
    else:
        assert abs(a - b) <= tol, (what, a, b, a - b)


def check_against_old_vectors():
    if not os.path.exists(OLD_VECTORS):
        print("note: earlier calibration vectors not found; skipping that cross-check", file=sys.stderr)
        return
    with open(OLD_VECTORS) as f:
        old = json.load(f)
    cases = {c["name"]: c for c in old.get("metrics", [])}
    c = cases.get("metrics_basic_K4_N40")
    if c:
        body = {"logits": c["input"]["logits"], "labels": c["input"]["labels"]}
        ex = c["expected"]
        tol = 1e-9
        z = np.asarray(body["logits"])
        p = softmax_rows(z)
        y = body["labels"]
        h = hard_metrics_core(z, p, z, y, 15, "left", 2, None)
        assert abs(h["accuracy"] - ex["accuracy"]) <= tol
        assert abs(h["top_k_accuracy"] - ex["top_k_accuracy_k2"]) <= tol
        assert abs(h["nll"] - ex["nll"]) <= tol
        assert abs(h["brier"] - ex["brier"]) <= tol
        assert abs(h["ece"] - ex["ece_15_left"]) <= tol
        assert abs(h["mce"] - ex["mce_15"]) <= tol
        assert abs(h["ace"] - ex["ace_15"]) <= tol
        assert max(abs(a - b) for a, b in zip(h["ace_edges"], ex["ace_15_edges"])) <= tol
        assert abs(h["classwise_ece"] - ex["classwise_ece_15"]) <= tol
        for rule in ("right", "torchmetrics"):
            assert abs(hard_ece_family(p, z, y, 15, rule)["ece"] - ex[f"ece_15_{rule}"]) <= tol
        assert abs(hard_ece_family(p, z, y, 10, "left")["ece"] - ex["ece_10_left"]) <= tol
        s = soft_metrics_core(z, p, z, np.eye(4)[y], 15, "left", 2, None)
        assert abs(s["ece"] - ex["ece_15_left"]) <= tol and abs(s["nll"] - ex["nll"]) <= tol
    c = cases.get("metrics_bin_edges_and_conf_1")
    if c:
        p = np.asarray(c["input"]["probs"])
        y = c["input"]["labels"]
        for rule in ("left", "right", "torchmetrics"):
            assert abs(hard_ece_family(p, p, y, 10, rule)["ece"] - c["expected"][f"ece_10_{rule}"]) <= 1e-9
    cal = {c["name"]: c for c in old.get("calibrators", [])}
    c = cal.get("temperature_K3")
    if c:
        temp, _, _ = fit_temperature(np.asarray(c["input"]["fit_logits"]), np.asarray(c["input"]["fit_labels"]))
        assert abs(temp - c["expected"]["temperature"]) <= 1e-9, temp
    for nm, bound in (("temperature_all_correct_hits_bound", "min_temperature"),
                      ("temperature_anti_correlated_hits_upper_bound", "max_temperature")):
        c = cal.get(nm)
        if c:
            temp, at, _ = fit_temperature(np.asarray(c["input"]["fit_logits"]), np.asarray(c["input"]["fit_labels"]))
            assert at == bound and abs(temp - c["expected"]["temperature"]) <= 1e-6 * temp, (nm, temp, at)


def self_tests():
    # SplitMix64 against its published first outputs for seed 0 (Vigna's reference code).
    g = SplitMix64(0)
    assert [g.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    # A permutation is a permutation.
    for a, b in proposed_halvings(11, 4, 3):
        assert sorted(a + b) == list(range(11)) and len(a) == 5


# --------------------------------------------------------------------------------------
# Output: indented JSON with every array of scalars on one line.
# --------------------------------------------------------------------------------------

def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        assert math.isfinite(v)
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    raise TypeError(type(v))


def _is_scalar(v):
    return v is None or isinstance(v, (bool, int, float, str, np.integer, np.floating))


def dump(v, indent=0):
    pad = " " * indent
    if _is_scalar(v):
        return _scalar(v)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {dump(x, indent + 1)}' for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, (list, tuple)):
        if all(_is_scalar(x) for x in v) and not any(isinstance(x, str) and len(x) > 60 for x in v):
            return "[" + ", ".join(_scalar(x) for x in v) + "]"
        if all(_is_scalar(x) for x in v):  # long strings: one per line
            return "[\n" + ",\n".join(pad + " " + _scalar(x) for x in v) + "\n" + pad + "]"
        if all(isinstance(x, list) and all(_is_scalar(y) for y in x) for x in v):
            return "[\n" + ",\n".join(pad + " " + dump(x) for x in v) + "\n" + pad + "]"
        return "[\n" + ",\n".join(pad + " " + dump(x, indent + 1) for x in v) + "\n" + pad + "]"
    raise TypeError(type(v))


CHOICES = [
    "embedding-metrics: options live in `params` (normalize true, alignment_alpha 2, uniformity_t 2; alpha and t "
    "must be > 0); `labels` are any integers and are optional with `embeddings` (then only uniformity is allowed); "
    "`labels` together with queries/keys is a 422 invalid_input at /labels",
    "embedding-metrics: pairs-input uniformity is (U(queries) + U(keys)) / 2, as Wang & Isola's recipe; pairs-input "
    "mean_negative_cosine averages cos(q_i, k_j) over all N(N-1) ordered i != j",
    "embedding-metrics: cosines are true cosines also with normalize false; alignment/uniformity/nc1 use the raw "
    "rows then",
    "embedding-metrics: nc1 centres Sigma_B on the global mean of all rows (Papyan et al.; Zhu et al.'s code), "
    "Sigma_W divides by N, pseudo-inverse cut-off lambda > D * eps * lambda_max (the vectors do not depend on it)",
    "embedding-metrics: an empty pair set answers null (no 422); asking explicitly for a metric the inputs cannot "
    "give is 422 invalid_input at /metrics/i",
    "embedding-metrics: a zero row is 422 invalid_input at /<field>/i when normalize is true or a cosine metric is "
    "asked for; otherwise it is accepted",
    "metrics: classwise_ece with soft targets compares mean p_ij with mean t_ij per bin; target_entropy and kl are "
    "metric names (accepted with labels too: 0 and nll)",
    "metrics: accuracy, top-k and the ECE family rank the scores as sent (logits or probs), lowest index on ties, "
    "as for hard labels",
    "metrics: binary `probs`/`scores` [N] must lie in [0, 1] (422 invalid_input at the field); sending two of "
    "logits/probs/scores is 422 invalid_input at the later one in that order",
    "calibrated_nll: needs logits (else 422 missing_field /logits) and hard labels (targets: 422 invalid_input "
    "/targets) and N >= 2 (422 invalid_shape /logits); params repeats in [1, 1000] (default 5), seed in "
    "[0, 2^53-1] (default 0); response fields calibrated_nll and calibrated_nll_std (population std, ddof 0)",
    "calibrated_nll split stream (proposal; the contract leaves it to the build): master = SplitMix64(seed); for "
    "repeat r, rng = SplitMix64(r-th master output); Fisher-Yates from the top (i = N-1 ... 1, j = rng.below(i+1), "
    "swap); first half = first floor(N/2) entries, second half = the rest",
    "calibrators/select: the fold assignment is not specified deterministically, so no vector pins folds, per-fold "
    "values, `uncalibrated` or a multi-method ranking; select request fields are top level (methods, folds, seed, "
    "metric, name), `params` is keyed by method; an inapplicable method (binary one for C > 2) is 422 invalid_param "
    "at /methods/i, correctness_aware without views_logits 422 missing_field /views_logits",
]


def main():
    self_tests()
    check_against_old_vectors()
    doc = {
        "meta": {
            "generator": "scripts/reference-metrics-2.py: independent NumPy float64 reference (run from the "
                         "repository root with .venv-bench/bin/python)",
            "numpy": np.__version__,
            "note": "All floats float64 at full precision. 'input' is a complete request body. 'expected' is a "
                    "subset of the response: every listed key must be present; numbers compare with |got - "
                    "expected| <= tol (absolute), element-wise through objects and arrays; null must be null. "
                    "'expected_error' gives status, code (the problem's type is urn:lossd:error:<code>) and field "
                    "(JSON pointer); the detail text is not pinned. 'basis' is 'contract' when the case follows from the "
                    "written contract, 'choice' when it pins a decision listed in 'choices'.",
            "choices": CHOICES,
        },
        "embedding_metrics": embedding_cases() + embedding_error_cases(),
        "metrics": metrics_cases() + metrics_error_cases(),
        "calibrators_select": select_cases(),
    }
    text = dump(doc) + "\n"
    json.loads(text)  # well-formed
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, "w", encoding="utf-8") as f:
        f.write(text)
    n = sum(len(v) for k, v in doc.items() if k != "meta")
    print(f"wrote {OUT_PATH}: {n} cases, {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
