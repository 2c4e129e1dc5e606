#!/usr/bin/env python3
"""Writes Tests/LossdKernelsTests/Fixtures/digits_logits.json: logits and labels of a
deliberately miscalibrated classifier on scikit-learn's bundled digits data set (no
download), split into a fit half and a held-out half, plus the temperature SciPy fits on
the fit split.

The classifier is a multinomial logistic regression with almost no regularisation
(C = 1e4) trained on 40% of the data: it separates its training set, so its logits are
far too large and its probabilities overconfident on new samples, which is what
temperature scaling corrects.

    pip install scikit-learn   # numpy and scipy come with it
    python3 scripts/make-digits-fixture.py
"""
import json
import math
import os

import numpy as np
from scipy import optimize, special
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LossdKernelsTests", "Fixtures", "digits_logits.json")


def nll(z, y):
    return float(-np.mean(special.log_softmax(z, axis=1)[np.arange(len(y)), y]))


def ece(z, y, bins=15):
    """Top-label ECE, equal-width bins with the `left` rule (docs/calibration.md §2.5)."""
    p = special.softmax(z, axis=1)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    edges = np.arange(bins + 1) * (1.0 / bins)
    edges[-1] = 1.0
    ids = np.searchsorted(edges[1:-1], conf, side="right")
    total = 0.0
    for b in range(bins):
        m = ids == b
        if m.any():
            total += m.sum() / len(y) * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def fit_temperature(z, y):
    """SciPy: bounded Brent on log T over [-10, 10] (the same box as log β)."""
    def f(log_t):
        return nll(z / math.exp(log_t), y)

    res = optimize.minimize_scalar(f, bounds=(-10.0, 10.0), method="bounded",
                                   options={"xatol": 1e-12, "maxiter": 1000})
    return math.exp(res.x), res


def main():
    digits = load_digits()
    X = digits.data / 16.0
    y = digits.target
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=0.4, random_state=0, stratify=y)
    X_fit, X_test, y_fit, y_test = train_test_split(X_rest, y_rest, train_size=0.5, random_state=1, stratify=y_rest)
    clf = LogisticRegression(C=1e4, max_iter=5000)
    clf.fit(X_train, y_train)
    # Logits rounded to 8 decimals; everything below uses the rounded numbers.
    z_fit = np.round(clf.decision_function(X_fit), 8)
    z_test = np.round(clf.decision_function(X_test), 8)
    t, res = fit_temperature(z_fit, y_fit)
    summary = {
        "temperature_scipy": t,
        "nll_fit_before": nll(z_fit, y_fit),
        "nll_fit_after": nll(z_fit / t, y_fit),
        "nll_test_before": nll(z_test, y_test),
        "nll_test_after": nll(z_test / t, y_test),
        "ece_test_before": ece(z_test, y_test),
        "ece_test_after": ece(z_test / t, y_test),
        "accuracy_test": float((z_test.argmax(axis=1) == y_test).mean()),
    }
    doc = {
        "source": "sklearn.datasets.load_digits; LogisticRegression(C=1e4) on 40% (random_state=0), "
                  "fit/held-out halves of the rest (random_state=1); logits rounded to 8 decimals",
        "classes": 10,
        "fit": {"logits": z_fit.tolist(), "labels": y_fit.tolist()},
        "heldout": {"logits": z_test.tolist(), "labels": y_test.tolist()},
        "scipy": {"method": "optimize.minimize_scalar(bounded, log T in [-10, 10], xatol=1e-12)",
                  "iterations": int(res.nfev), **summary},
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
        fh.write("\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
