#!/usr/bin/env python3
"""The SciPy side of bench/scaling: the scaling-law fit of docs/scaling.md exactly as
scripts/scaling-vectors.py does it (the procedure the Swift kernels are tested against),
loaded from that file so that the benchmark times the same code the vectors come from.

That procedure: residuals between logarithms, the Huber objective with delta = 1e-3, the
unconstrained parameterisation, the learning-rate areas S1, S2 and the multi-start grids
of docs/scaling.md (chinchilla 432 starts, lr_annealing 24), each start run to the end by
scipy.optimize.minimize(method="L-BFGS-B"); the lowest f wins.

    fit(law, data, opts) -> (params by name, report, theta at the optimum, echoed options)

with report["starts"] (starts run) and report["nfev"] (objective evaluations).
"""
import importlib.util
import pathlib

_path = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "scaling-vectors.py"
_spec = importlib.util.spec_from_file_location("scaling_vectors", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

HUBER_DELTA = _module.HUBER_DELTA
lr_areas = _module.lr_areas
design = _module.design
objective = _module.objective
fit = _module.fit
