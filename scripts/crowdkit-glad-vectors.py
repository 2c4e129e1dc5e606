#!/usr/bin/env python3
"""Writes Tests/LossdServiceTests/Vectors/crowd_glad_vectors.json: simulated crowds larger
than the aggregation vectors' (300 items, 15 annotators, 4 classes, 5 labels an item, and
one of 600 items and 25 annotators), with crowd-kit's GLAD soft labels for each.

  pip install crowd-kit==1.4.2 && python3 scripts/crowdkit-glad-vectors.py

The crowds are drawn with NumPy's default_rng(seed): a true class per item, a skill in
[0.3, 0.95] per annotator (the chance to give the true class; otherwise a uniform class).
crowd-kit fits GLAD with its defaults (n_iter 100, tol 1e-5, m_step_max_iter 25,
m_step_tol 1e-2; SciPy's CG, whose line search is MINPACK's Moré–Thuente first and
Nocedal–Wright when that fails). Soft labels are written per item in first-seen order,
class columns 0..K-1.
"""
import json
import os

import numpy as np
import pandas as pd
from crowdkit.aggregation import GLAD


def crowd(items, workers, k, per_item, seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, items)
    skill = rng.uniform(0.3, 0.95, workers)
    rows = []
    for i in range(items):
        for w in rng.choice(workers, per_item, replace=False):
            label = truth[i] if rng.random() < skill[w] else rng.integers(0, k)
            rows.append([f"t{i}", f"w{w}", int(label)])
    return rows


def main():
    cases = []
    for name, items, workers, k, per_item, seed in [
        ("crowd_300x15x4_seed0", 300, 15, 4, 5, 0),
        ("crowd_300x15x4_seed1", 300, 15, 4, 5, 1),
        ("crowd_600x25x5_seed7", 600, 25, 5, 4, 7),
    ]:
        rows = crowd(items, workers, k, per_item, seed)
        df = pd.DataFrame(rows, columns=["task", "worker", "label"])
        probas = GLAD().fit(df).probas_
        order = list(dict.fromkeys(r[0] for r in rows))
        probas = probas.reindex(index=order, columns=range(k)).fillna(0.0)
        cases.append({"name": name, "num_classes": k, "annotations": rows, "glad_soft_labels": probas.values.tolist()})
    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "LossdServiceTests", "Vectors", "crowd_glad_vectors.json")
    with open(out, "w") as f:
        json.dump({"generator": "scripts/crowdkit-glad-vectors.py", "crowd_kit": "1.4.2", "cases": cases}, f)
    print(f"wrote {len(cases)} crowds to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
