"""The FastAPI baseline for bench/loss/run.sh: POST /v1/loss, cross_entropy only.

    POST /v1/loss  {"loss": "cross_entropy", "logits": [[...], ...], "labels": [...],
                    "reduction": "mean", "return_grad": false}
      -> {"loss": "cross_entropy", "reduction": "mean", "n": N, "value": v}
         (+ "grad": {"logits": [[...], ...]} when return_grad is true)

The body is read raw and parsed with orjson (the fastest common Python JSON
library; the stdlib json module is the fallback when orjson is missing, and
JSON_LIBRARY says which one is in use). logits [N][C] and labels [N] become
NumPy arrays (float64, int64); the loss is the mean softmax cross-entropy with
a max-shifted log-sum-exp, and the gradient is (softmax - onehot) / N. The
response is written with orjson as well; with OPT_SERIALIZE_NUMPY the gradient
is serialised straight from the ndarray, which is the same JSON (nested arrays)
as .tolist() would give, only faster.

Only what this benchmark sends is supported: loss cross_entropy, reduction mean
(or absent), nested-array tensors, no sample_weights or params. Anything else
answers 400, so a mismatch with lossd's request shows up in the curl check.

Run directly, it binds 127.0.0.1 on a free port (or BENCH_FASTAPI_PORT),
prints `fastapi listening on http://127.0.0.1:PORT` on stdout and serves with
uvicorn: one worker process, uvloop + httptools, log level warning, access
log off. The app object also works with the uvicorn CLI:

    uvicorn fastapi_loss_app:app --app-dir bench/loss --port 8081
"""

import os
import sys

import numpy as np
# bench/ holds the shared server start-up (fastapi_serve.py).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from fastapi_serve import serve  # noqa: E402

from fastapi import FastAPI, Request
from fastapi.responses import Response

try:
    import orjson

    JSON_LIBRARY = f"orjson {orjson.__version__}"
    _loads = orjson.loads

    def _dumps(obj) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover - the benchmark's venv pins orjson
    import json

    JSON_LIBRARY = "json (stdlib)"
    _loads = json.loads

    def _dumps(obj) -> bytes:
        if "grad" in obj:
            obj = dict(obj, grad={"logits": obj["grad"]["logits"].tolist()})
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


# FastAPI's own /docs, /redoc and /openapi.json are switched off.
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def _error(status: int, detail: str) -> Response:
    return Response(content=_dumps({"detail": detail}), status_code=status, media_type="application/json")


def cross_entropy(logits: np.ndarray, labels: np.ndarray, want_grad: bool):
    """Mean softmax cross-entropy over the rows of logits, and its gradient."""
    n = logits.shape[0]
    rows = np.arange(n)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1)
    lse = m[:, 0] + np.log(s)
    value = float((lse - logits[rows, labels]).mean())
    if not want_grad:
        return value, None
    grad = e / s[:, None]
    grad[rows, labels] -= 1.0
    grad /= n
    return value, grad


@app.post("/v1/loss")
async def loss(request: Request):
    try:
        body = _loads(await request.body())
    except ValueError as exc:  # orjson.JSONDecodeError and json.JSONDecodeError both are
        return _error(400, f"malformed JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    if body.get("loss") != "cross_entropy":
        return _error(400, "only loss cross_entropy is supported")
    if body.get("reduction", "mean") not in (None, "mean"):
        return _error(400, "only reduction mean is supported")
    want_grad = body.get("return_grad", False)
    if want_grad is None:
        want_grad = False
    if not isinstance(want_grad, bool):
        return _error(400, "return_grad must be true or false")
    try:
        logits = np.asarray(body["logits"], dtype=np.float64)
        labels = np.asarray(body["labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        return _error(400, f"logits [N][C] and labels [N] are required: {exc}")
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        return _error(400, "logits must be a non-empty [N][C] array")
    n, c = logits.shape
    if labels.shape != (n,):
        return _error(400, f"labels must have {n} entries")
    if labels.min() < 0 or labels.max() >= c:
        return _error(400, f"labels must lie in [0, {c})")
    if not np.isfinite(logits).all():
        return _error(400, "logits must be finite")

    value, grad = cross_entropy(logits, labels, want_grad)
    result = {"loss": "cross_entropy", "reduction": "mean", "n": n, "value": value}
    if grad is not None:
        result["grad"] = {"logits": grad}
    return Response(content=_dumps(result), media_type="application/json")


def main() -> None:
    serve(app)


if __name__ == "__main__":
    sys.exit(main())
