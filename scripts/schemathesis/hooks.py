"""Schemathesis hooks of scripts/api-check.sh: positive test cases made consistent.

openapi.yaml states every rule of the request bodies that JSON Schema can state: members,
types, ranges, enums, which inputs each loss or method takes, which of them are required
and which exclude each other. Some rules relate one value to another and cannot be
stated: tensor sizes agree (`labels` has one entry per row of `logits`, `class_weights`
one per column), nested arrays are rectangular, `data` and `base64` hold exactly what
`shape` asks for, labels lie in [0, C), probability rows sum to 1, a calibrator's vectors
have `classes` entries, `params.items` lists every annotated item, `average`'s `weights`
has one entry per method, CrossMax's `k` <= M, and the input of a stored calibrator has
the method and C it was stored with. With several losses in one request (`losses`), which
inputs the top level must and may hold depends on the entries. The server checks each of
these and answers 422 when one fails, so a schema-valid request drawn at random is
rarely one the server can accept, and the positive-data check would fail on the document
rather than on the server.

So, for a positive case only (one schemathesis expects the server to accept),
`map_case` repairs exactly these relations and keeps what was generated otherwise:

* every tensor the request sends gets consistent numbers (N = 3 rows, C = 3 columns or
  what the parameters force), in the encoding the generator chose for it (nested
  arrays, `{shape, data}` with its unread extra members, `{shape, dtype, base64}` with its
  dtype); inputs a loss takes but does not read are left as generated;
* with `losses`, the inputs the entries need are added and those none of them takes
  are dropped;
* segmentation losses (`dice`, `cldice`, `skeleton_recall`) get a [3][3][4][4] batch
  ([3][3][4][4][4] when the generated logits are 5-D): logits, a class map (`labels`,
  `skeleton`) below C, or one-hot `targets`; a `losses` list that mixes them with other
  losses cannot be made consistent (the server refuses it: the logits' rank differs)
  and is dropped;
* a metrics request gets N rows and C = 3 columns, or C = 2 with binary input (`scores`,
  or `probs` generated 1-D: values P(class 1) in [0, 1]); the one of `labels` and
  `targets` it sends gets labels below C or rows on the simplex;
* calibrator parameters that must match `classes` (vectors, matrices, isotonic maps,
  histogram bins, the correctness-aware network) are rebuilt for it; scalars (`a`, `b`,
  `temperature`, `k`, `t_min`, ...) are kept;
* the input of a stored calibrator (`/v1/calibrate` with `name`, `.../apply`) is made
  for the calibrator the server holds under that name (read with GET; none: the 404
  stands);
* a calibrator selection gets N = max(8, folds) rows of logits (C = 3; C = 2 with a
  binary method or `scores`, which then keep only platt and beta), `views_logits` when
  correctness_aware is listed, distinct `methods`, and `params` only for methods tried;
* aggregation labels are taken modulo `num_classes`, missing annotated items appended
  to `params.items`, `average`'s `weights` resized to its methods, and a chosen method's
  member that is not valid parameters for it dropped;
* scaling fits get points (or curves) of a known law in the generated count and layout,
  enough for the law, `weights` one per fitted point and at most 10 bootstrap samples;
  scaling predictions get parameters that agree with `irreducible`, point lists of one
  length and schedule steps after the warm-up; a stored law PUT gets an `L_inf` that
  agrees with `options.irreducible`; a prediction from a stored law (`name`) keeps only
  the queries of the law the server holds under that name (read with GET; none: the
  404 stands), repaired as an inline one;
* a composite `/v1/loss` entry's `columns` become the whole head `[0, C)` (labels stay in
  range), and `groups` (sent, or needed by a `group_mean` reduction) one id per row;
* a multipart `/v1/loss` case gets a valid `request` part and no other part: the
  generator draws any JSON text for `request`, and schemathesis never counts a body with
  binary data (the `.npy` parts) as positive, so those are left to the integration tests
  (Tests/LossdIntegrationTests/BinaryInputEndpointTests.swift).

Where the generated parameters themselves break a relation (`bins.max` <= `bins.min`,
`d_max` <= `d_min`, `t_max` <= `t_min`, a `log_beta_bounds` with lower >= upper, a
`sigma` the histogram underflows with) or would make the request too large or too slow
for a CI run (soft_topk `k` or `bins.count` over 256, a 10^6-class vector calibrator, a
MACE run of 10^12 steps, an lr_annealing fit with a momentum `decay` below 0.9, whose
annealing term on the CI curve the fit's start grid does not reach, an nmt fit with a
reference size outside (1e-30, 1e30), where its factor overflows at every start), `filter_case` drops
the case rather than change the parameter.
Negative cases are never touched. Every repaired JSON body is validated against the
request schema of openapi.yaml before it is sent, and the run stops with an error if it
does not conform: a repair can never make the document look right.

`filter_failure` drops one kind of failure only: a positive case answered 422
`value_overflow` by an operation whose document lists that 422 — `/v1/loss` (the loss or
its gradient outside the float64 range, e.g. z_loss with `a` = 5e-324, or `reduction:
sum` over values near 1e308), `/v1/calibrate` and apply (a calibrator whose parameters
overflow on the logits, e.g. a matrix with entries near 1e308) and `/v1/aggregate` (a
method diverging at the edge of its learning-rate range), `/v1/scaling/fit` and predict (a
law evaluated far outside the float64 range, e.g. `x0` near 1e308 with a large `alpha`),
and one more of the same kind on `/v1/scaling/fit`: 422 `invalid_input` "no start of the
grid gives a positive predicted loss at every point", which weights near 1e308 also cause
(the weighted objective overflows at every start, and the kernel cannot tell that from a
schedule no law fits).
Whether that happens depends on
the magnitudes of the data and the parameters together, which no request schema can
bound.

Loaded by scripts/schemathesis/config.toml (`hooks`); LOSSD_API_KEY is the API key of the
run (the hooks read stored calibrators and laws with it).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import os
import struct
import urllib.error
import urllib.request
from typing import Any

import schemathesis

# ---------------------------------------------------------------------------------------
# Tensors in the generator's chosen encoding
# ---------------------------------------------------------------------------------------

ENCODED_KEYS = ("shape", "data", "base64", "dtype")


def shape_of(nested: Any) -> list[int]:
    shape = []
    while isinstance(nested, list):
        shape.append(len(nested))
        nested = nested[0]
    return shape


def flatten(nested: Any) -> list[float]:
    if isinstance(nested, list):
        return [x for item in nested for x in flatten(item)]
    return [nested]


def encode_like(like: Any, nested: list, integers: bool = False) -> Any:
    """`nested` (a rectangular nested list) in the encoding of `like`, the generated value:
    the same form, the same dtype, and the same members the server does not read."""
    if isinstance(like, dict):
        extras = {k: v for k, v in like.items() if k not in ENCODED_KEYS}
        shape = shape_of(nested)
        if "base64" in like and not integers:
            dtype = like.get("dtype", "float64")
            fmt = "<%d%s" % (len(flatten(nested)), "f" if dtype == "float32" else "d")
            raw = struct.pack(fmt, *flatten(nested))
            return {**extras, "shape": shape, "dtype": dtype, "base64": base64.b64encode(raw).decode()}
        out = {**extras, "shape": shape, "data": flatten(nested)}
        for key in ("dtype",):
            if key in like:
                out[key] = like[key]
        return out
    return nested


def matrix(rows: int, cols: int, seed: int = 0) -> list[list[float]]:
    """A deterministic rows x cols matrix of small non-zero values (no zero row)."""
    return [[((3 * i + 5 * j + seed) % 9 - 4) / 4 or 0.5 for j in range(cols)] for i in range(rows)]


def one_hot(rows: int, cols: int) -> list[list[float]]:
    return [[1.0 if j == i % cols else 0.0 for j in range(cols)] for i in range(rows)]


def probability_rows(rows: int, cols: int) -> list[list[float]]:
    """Rows summing to exactly 1 in binary floating point (dyadic entries)."""
    out = []
    for i in range(rows):
        row = [1 / (2 ** (cols - 1))] * cols
        row[i % cols] = 1 - (cols - 1) / (2 ** (cols - 1))
        out.append(row)
    return out


def float_vector_like(like: Any, values: list[float]) -> Any:
    """`values` in the form of a generated FloatVector: 1-D, one row, or one column."""
    if isinstance(like, list) and like and all(isinstance(x, list) for x in like):
        if len(like) == 1 and not (len(values) == 1):
            return [list(values)]
        if all(len(x) == 1 for x in like) and len(like) != 1:
            return [[v] for v in values]
        return [list(values)]
    return list(values)


def scalar_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
        return float(value[0])
    return None


class Unrepairable(Exception):
    """The generated parameters break a rule the hook will not bend (see the module doc)."""


# ---------------------------------------------------------------------------------------
# POST /v1/loss
# ---------------------------------------------------------------------------------------

N = 3  # rows of every repaired batch
D = 2  # embedding width

# Per loss, from the catalogue the server serves (`GET /v1/losses`, read once by
# `load_catalogue` before the first /v1/loss case): every input it lists (the strict-field
# rule: `TAKES`), those listed as required (`REQUIRED`), the losses without
# `sample_weights` (`NO_SAMPLE_WEIGHTS`) and each alias's loss (`ALIASES`). `loss_forms`
# turns them into input forms: (required, forbidden, reads), `reads` what the server
# validates.
SW = "sample_weights"
TAKES: dict[str, set] = {}
REQUIRED: dict[str, set] = {}
NO_SAMPLE_WEIGHTS: set = set()
ALIASES: dict[str, str] = {}


def load_catalogue(case: Any) -> None:
    """Fills TAKES, REQUIRED, NO_SAMPLE_WEIGHTS and ALIASES from the server's catalogue."""
    if TAKES:
        return
    catalogue = stored_document(case, "/v1/losses")
    if not isinstance(catalogue, list) or not catalogue:
        raise RuntimeError("hooks: GET /v1/losses gave no catalogue")
    for entry in catalogue:
        name = entry["name"]
        TAKES[name] = {i["name"] for i in entry["inputs"]}
        REQUIRED[name] = {i["name"] for i in entry["inputs"] if i["presence"] == "required"}
        if not entry["sample_weights"]:
            NO_SAMPLE_WEIGHTS.add(name)
        for alias in entry.get("aliases", []):
            ALIASES[alias] = name


# Segmentation losses: logits [N][C][H][W](…), class maps [N][H][W](…); a list holding
# one can hold only these, since their shapes differ from the others'.
SEGMENTATION = {"dice", "cldice", "skeleton_recall"}
SEG_SIZE = 4  # H = W (= Z) of every repaired segmentation batch
# Losses whose `embeddings` are [N][D] (cacr's views form is [N][V][D]).
FLAT_EMBEDDINGS = {"supcon", "tcm", "normalized_softmax"}
T = 4  # tokens per row of implicit_prm's [N][T] inputs


def loss_forms(loss: str, params: dict) -> list[tuple[set, set, set]]:
    """(required, forbidden, reads) alternatives of one entry."""
    sw = set() if loss in NO_SAMPLE_WEIGHTS else {SW}
    if loss in ("dice", "cldice"):
        return [
            ({"logits", "labels"}, {"targets"}, {"logits", "labels", SW}),
            ({"logits", "targets"}, {"labels"}, {"logits", "targets", SW}),
        ]
    if loss in ("cross_entropy", "poly1"):
        extra = {"class_weights"} if loss == "cross_entropy" else set()
        return [
            ({"logits", "labels"}, {"targets"}, {"logits", "labels"} | extra | sw),
            ({"logits", "targets"}, {"labels"}, {"logits", "targets"} | extra | sw),
        ]
    if loss == "focal":
        if params.get("mode") == "sigmoid":
            return [({"logits", "targets"}, set(), {"logits", "targets"} | sw)]
        return [({"logits", "labels"}, set(), {"logits", "labels", "class_weights"} | sw)]
    if loss == "pass_at_n":
        return [
            ({"logits", "labels"}, {"log_probs"}, {"logits", "labels"} | sw),
            ({"log_probs"}, {"logits"}, {"log_probs"} | sw),
        ]
    if loss == "kd_kl":
        need = {"logits", "teacher_logits"} | ({"labels"} if params.get("alpha", 0.9) < 1 else set())
        return [(need, set(), {"logits", "teacher_logits", "labels"} | sw)]
    if loss == "cacr":
        return [({"queries", "keys"}, {"embeddings"}, {"queries", "keys"}), ({"embeddings"}, {"queries", "keys"}, {"embeddings"})]
    # Every other loss has one form: the inputs its catalogue entry lists as required.
    required = REQUIRED[loss]
    return [(required, set(), set(TAKES[loss]) - ({SW} - sw))]


def canonical_loss(name: str) -> str:
    return ALIASES.get(name, name)


def histogram_columns(params: dict, loss: str) -> int | None:
    """C forced by `bins` (hl_gauss, two_hot), after the checks the server makes."""
    bins = params.get("bins")
    if not isinstance(bins, dict):
        raise Unrepairable("bins")
    lo, hi = bins.get("min"), bins.get("max")
    if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float))) or not hi > lo:
        raise Unrepairable("bins.max <= bins.min")
    width = hi - lo
    if not math.isfinite(width):
        raise Unrepairable("bins too wide for float64")
    count = bins.get("count")
    columns = int(count) if isinstance(count, (int, float)) and not isinstance(count, bool) else None
    if columns is not None and columns > 256:
        raise Unrepairable("bins.count too large for a CI request")
    c = columns or 3
    if loss == "hl_gauss":
        sigma = params.get("sigma")
        sigma = sigma if isinstance(sigma, (int, float)) else params.get("sigma_ratio", 0.75) * width / c
        # The target histogram of the midpoint is normalised by P(|Z| < width / (2 sigma)).
        if not sigma > 0 or math.erf(width / (2 * sigma * math.sqrt(2))) <= 1e-290:
            raise Unrepairable("sigma too wide for the bins")
    return columns


def loss_inputs(entries: list[tuple[str, dict]], present: set) -> tuple[set, set, int]:
    """The inputs to send (required + kept), the inputs the server reads, and C."""
    segmentation = {loss in SEGMENTATION for loss, _ in entries}
    if len(segmentation) > 1:
        raise Unrepairable("segmentation and other losses need different logits")
    groups: dict[tuple, list] = {}
    for loss, params in entries:
        key = (loss, params.get("mode") == "sigmoid", params.get("alpha", 0.9) < 1 if loss == "kd_kl" else None)
        groups.setdefault(key, loss_forms(loss, params))
    keys = list(groups)
    takes = set().union(*(TAKES[loss] for loss, _ in entries))
    best = None
    combos = [[]]
    for key in keys:
        combos = [c + [f] for c in combos for f in groups[key]]
    for combo in combos:
        required = set().union(*(f[0] for f in combo))
        forbidden = set().union(*(f[1] for f in combo))
        if any(loss in NO_SAMPLE_WEIGHTS for loss, _ in entries):
            forbidden.add(SW)
        if required & forbidden:
            continue
        if "embeddings" in required and any(l in FLAT_EMBEDDINGS for l, _ in entries) and any(
            l == "cacr" and f[0] == {"embeddings"} for (l, *_), f in zip(keys, combo)
        ):
            continue  # supcon's, tcm's and normalized_softmax's embeddings are 2-D, cacr's 3-D
        if "log_probs" in required and any(l == "pass_at_n" for l, _ in entries) and any(
            l == "implicit_prm" for l, _ in entries
        ):
            continue  # pass_at_n's log_probs are [N], implicit_prm's [N][T]
        send = required | ((present & takes) - forbidden)
        reads = set().union(*(f[2] for f in combo)) & send
        cost = len(send ^ present)
        if best is None or cost < best[0]:
            best = (cost, send, reads)
    if best is None:
        raise Unrepairable("the listed losses need conflicting inputs")
    _, send, reads = best
    # Columns: fixed by `bins.count`, at least 2 for some losses, above soft_topk's k.
    fixed, low = set(), 1
    for loss, params in entries:
        if loss in ("hl_gauss", "two_hot"):
            columns = histogram_columns(params, loss)
            if columns is not None:
                fixed.add(columns)
            low = max(low, 2 if loss == "two_hot" else 1)
        if loss in ("z_loss", "aldr_kl", "soft_topk", "two_hot"):
            low = max(low, 2)
        if loss == "soft_topk":
            k = params.get("k", 5)
            if k > 256:
                raise Unrepairable("soft_topk k too large for a CI request")
            low = max(low, math.floor(k) + 1)
    if len(fixed) > 1:
        raise Unrepairable("two histogram supports with different counts")
    c = fixed.pop() if fixed else max(3, low)
    if c < low:
        raise Unrepairable("bins.count below what the losses need")
    return send, reads, c


def segmentation_values(name: str, c: int, rank: int) -> tuple[list, bool]:
    """Input `name` of a segmentation batch: logits [N][C][S]...[S] of `rank`, class maps
    (labels, skeleton) [N][S]...[S] with classes below C, one-hot targets."""
    spatial = [SEG_SIZE] * (rank - 2)

    def build(shape, leaf):
        def walk(prefix):
            if len(prefix) == len(shape):
                return leaf(prefix)
            return [walk(prefix + [i]) for i in range(shape[len(prefix)])]
        return walk([])

    def cls(ix):  # a blobby class map: the class of pixel (n, spatial...)
        return (ix[0] + sum(ix[1:]) // 2) % c
    if name == "logits":
        return build([N, c] + spatial, lambda ix: (2.0 if cls([ix[0]] + ix[2:]) == ix[1] else 0.0) + ((sum(ix) * 7) % 5 - 2) / 8), False
    if name in ("labels", "skeleton"):
        return build([N] + spatial, cls), True
    if name == "targets":
        return build([N, c] + spatial, lambda ix: 1.0 if cls([ix[0]] + ix[2:]) == ix[1] else 0.0), False
    if name == SW:
        return [1.0, 0.5, 2.0][:N], False
    raise KeyError(name)


def segmentation_rank(body: dict) -> int:
    """5 when the generated logits are 5-D (nested or encoded), else 4."""
    logits = body.get("logits")
    shape = logits.get("shape") if isinstance(logits, dict) else shape_of(logits)
    return 5 if isinstance(shape, list) and len(shape) == 5 else 4


def loss_values(name: str, c: int, entries: list[tuple[str, dict]]) -> tuple[list, bool]:
    """The nested value of input `name` for a batch of N rows and C columns."""
    if name in ("logits", "teacher_logits"):
        return matrix(N, c, seed=1 if name == "teacher_logits" else 0), False
    if name == "labels":
        return [i % c for i in range(N)], True
    if name == "targets":
        return one_hot(N, c), False
    if name in ("class_weights", "pos_weight"):
        return [1.0 + 0.5 * (j % 2) for j in range(c)], False
    if name == SW:
        return [1.0, 0.5, 2.0][:N], False
    if name == "values":
        for loss, params in entries:
            if loss in ("hl_gauss", "two_hot"):
                bins = params["bins"]
                return [bins["min"] / 2 + bins["max"] / 2] * N, False
        return [0.5] * N, False
    if name == "log_probs":
        if any(loss == "implicit_prm" for loss, _ in entries):
            return [[-0.5 - 0.25 * ((i + t) % 3) for t in range(T)] for i in range(N)], False
        return [-0.5, -1.25, -2.0][:N], False
    if name == "ref_log_probs":
        return [[-0.75 - 0.5 * ((i * t) % 2) for t in range(T)] for i in range(N)], False
    if name == "outcomes":
        return [i % 2 for i in range(N)], True
    if name == "mask":
        return [[1.0 if t < T - (i % 2) else 0.0 for t in range(T)] for i in range(N)], False
    if name == "step_ends":
        return [[1, T - 1], [0, -1], [T - 1, -1]][:N], False
    if name == "adv_logits":
        return matrix(N, c, seed=3), False
    if name == "prototypes":
        return matrix(c, D, seed=4), False
    if name == "lambda_prev":
        return [1.0, 2.0, 4.0][:N], False
    if name in ("queries", "keys"):
        return matrix(N, D, seed=2 if name == "keys" else 0), False
    if name == "embeddings":
        if any(loss == "cacr" for loss, _ in entries) and not any(loss in FLAT_EMBEDDINGS for loss, _ in entries):
            return [matrix(2, D, seed=i) for i in range(N)], False
        return matrix(N, D), False
    if name == "predictions":
        return [0.25, 0.5, 1.0][:N], False
    if name == "bags":
        return [0, 0, 1][:N], True
    if name == "bag_responses":
        return [0.4, 0.9], False
    raise KeyError(name)


def repair_loss(body: dict) -> dict:
    body = copy.deepcopy(body)
    if "losses" in body:
        entries = [(canonical_loss(e["loss"]), e.get("params", {})) for e in body["losses"]]
    else:
        entries = [(canonical_loss(body["loss"]), body.get("params", {}))]
    present = {k for k in body if k in set().union(*TAKES.values())}
    send, reads, c = loss_inputs(entries, present)
    rank = segmentation_rank(body) if any(loss in SEGMENTATION for loss, _ in entries) else None
    for name in list(body):
        if name in present and name not in send:
            del body[name]
    for name in sorted(send):
        if name in body and name not in reads:
            continue  # taken but not read: any value passes, keep the generated one
        if rank is not None:
            nested, integers = segmentation_values(name, c, rank)
        else:
            nested, integers = loss_values(name, c, entries)
        body[name] = encode_like(body.get(name), nested, integers=integers)
    # Composite members: a slice is the whole head (labels stay in range), and group_mean
    # gets one group id per row.
    for entry in body.get("losses", []):
        if "columns" in entry:
            if canonical_loss(entry["loss"]) in SEGMENTATION:
                del entry["columns"]  # columns slice 2-D logits only
            else:
                entry["columns"] = [0, c]
    reductions = [e.get("reduction") for e in body.get("losses", [])] + [body.get("reduction")]
    if "group_mean" in reductions or "groups" in body:
        body["groups"] = encode_like(body.get("groups"), [i % 2 for i in range(N)], integers=True)
    return body


# A multipart body: the generator cannot make its `request` part a valid LossRequest (it
# draws any JSON text there), so a positive case gets a valid one, chosen by the generated
# value, and only that part. Schemathesis never counts a body holding binary data as
# positive (it does not validate binary values), so the .npy parts are left to the
# integration tests (Tests/LossdIntegrationTests/BinaryInputEndpointTests.swift).
MULTIPART_LOSSES = ["cross_entropy", "binary_cross_entropy", "focal", "hl_gauss", "info_nce", "cacr", "aggregate_response"]


def repair_loss_multipart(body: dict) -> dict:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
    loss = MULTIPART_LOSSES[digest[0] % len(MULTIPART_LOSSES)]
    request: dict = {"loss": loss}
    if loss == "hl_gauss":
        request["params"] = {"bins": {"min": -1, "max": 1}}
    return {"request": json.dumps(repair_loss(request))}


# ---------------------------------------------------------------------------------------
# POST /v1/metrics, /v1/reliability
# ---------------------------------------------------------------------------------------


def generated_rank(like: Any) -> int:
    """The rank of a generated tensor: a flat list of numbers or a one-extent `shape` is 1-D."""
    if isinstance(like, dict):
        shape = like.get("shape")
        return len(shape) if isinstance(shape, list) else 2
    if isinstance(like, list) and like and not any(isinstance(x, list) for x in like):
        return 1
    return 2


def repair_metrics(body: dict) -> dict:
    body = copy.deepcopy(body)
    opis = "opis" in (body.get("metrics") or [])
    # Binary input: `scores` [N], or `probs` generated 1-D, is P(class 1): C = 2.
    binary = "scores" in body or ("probs" in body and generated_rank(body["probs"]) == 1)
    n, c = (4 if opis else N), (2 if binary else 3)
    if "logits" in body:
        body["logits"] = encode_like(body["logits"], matrix(n, c))
    ones = [0.25, 0.75, 0.5, 1.0][:n]
    if "probs" in body:
        body["probs"] = encode_like(body["probs"], ones if binary else probability_rows(n, c))
    if "scores" in body:
        body["scores"] = encode_like(body["scores"], ones)
    # Exactly one of labels and targets (the schema's oneOf): repair the one sent.
    if "targets" in body:
        body["targets"] = encode_like(body["targets"], probability_rows(n, c))
    else:
        body["labels"] = encode_like(body.get("labels"), [i % c for i in range(n)], integers=True)
    if opis:
        params = body.get("params", {})
        if not params.get("d_min") < params.get("d_max"):
            raise Unrepairable("d_min >= d_max")
        for name in ("similarity", "distance"):
            if name in body:
                body[name] = encode_like(body[name], [[1.0 if i == j else 0.5 * ((i + j) % 2) for j in range(n)] for i in range(n)])
    return body


# ---------------------------------------------------------------------------------------
# POST /v1/embedding-metrics
# ---------------------------------------------------------------------------------------


def repair_embedding_metrics(body: dict) -> dict:
    """N x 3 rows without a zero row (normalisation and cosines need a direction), `keys`
    the shape of `queries`, and N labels of two classes (nc1 needs C >= 2)."""
    body = copy.deepcopy(body)
    for seed, name in enumerate(("embeddings", "queries", "keys")):
        if name in body:
            body[name] = encode_like(body[name], matrix(N, 3, seed))
    if "labels" in body:
        body["labels"] = encode_like(body["labels"], [i % 2 for i in range(N)], integers=True)
    return body


# ---------------------------------------------------------------------------------------
# Calibrators
# ---------------------------------------------------------------------------------------

BINARY = {"platt", "beta"}
FIT_N = 4


def fit_labels(c: int) -> list[int]:
    return [i % c for i in range(FIT_N)]


def repair_fit(body: dict) -> dict:
    body = copy.deepcopy(body)
    method = body["method"]
    c = 2 if method in BINARY else 3
    params = body.get("params", {})
    if method == "temperature" and "log_beta_bounds" in params:
        lower, upper = params["log_beta_bounds"]
        if not lower < upper:
            raise Unrepairable("log_beta_bounds lower >= upper")
    if method == "correctness_aware":
        k, hidden, steps = params.get("k", 4), params.get("hidden", 5), params.get("steps", 500)
        work = FIT_N * (min(k, c) + c) * (hidden + 4) * max(steps, 1)
        if work > 2e8:
            raise Unrepairable("correctness_aware fit too slow for a CI run")
    body["labels"] = encode_like(body.get("labels"), fit_labels(c), integers=True)
    if "logits" in body:
        body["logits"] = encode_like(body["logits"], matrix(FIT_N, c))
    if "scores" in body:
        scores = [0.2, 0.8, 0.4, 0.6] if method == "beta" else [-1.0, 1.5, 0.5, -0.25]
        body["scores"] = encode_like(body["scores"], scores)
    if "views_logits" in body:
        body["views_logits"] = encode_like(body["views_logits"], [matrix(FIT_N, c, seed=v) for v in range(2)])
    return body


SELECT_MULTICLASS = ["temperature", "histogram", "isotonic", "vector", "ensemble_temperature", "matrix", "dirichlet"]


def repair_select(body: dict) -> dict:
    """`/v1/calibrators/select`: consistent inputs for the methods tried (binary ones with
    C = 2, correctness_aware with views), distinct methods, `params` only for methods
    tried, N >= `folds` rows with labels below C, and a correctness_aware fit small enough."""
    body = copy.deepcopy(body)
    if "logits" in body or "views_logits" in body:
        body.pop("scores", None)
    methods = body.get("methods")
    if methods is not None:
        methods = list(dict.fromkeys(methods))
        if "scores" in body:
            methods = [m for m in methods if m in BINARY]
            if not methods:
                raise Unrepairable("scores with no binary method")
        body["methods"] = methods
    binary = "scores" in body or (methods is not None and any(m in BINARY for m in methods))
    c = 2 if binary else 3
    if methods is not None and "correctness_aware" in methods and "views_logits" not in body:
        body["views_logits"] = None
    if "scores" not in body and "logits" not in body and "views_logits" not in body:
        body["logits"] = None
    if methods is None:
        tried = ["platt", "beta"] if "scores" in body else SELECT_MULTICLASS + (["platt", "beta"] if c == 2 else [])
        if "views_logits" in body:
            tried.append("correctness_aware")
    else:
        tried = methods
    params = {k: v for k, v in body.get("params", {}).items() if k in tried}
    if "params" in body:
        body["params"] = params
    bounds = params.get("temperature", {}).get("log_beta_bounds")
    if bounds is not None and not bounds[0] < bounds[1]:
        raise Unrepairable("log_beta_bounds lower >= upper")
    n = max(8, int(body.get("folds", 5)))
    if "correctness_aware" in tried:
        ca = params.get("correctness_aware", {})
        k, hidden, steps = ca.get("k", 4), ca.get("hidden", 5), ca.get("steps", 500)
        if n * (min(k, c) + c) * (hidden + 4) * max(steps, 1) * 6 > 2e8:
            raise Unrepairable("correctness_aware selection too slow for a CI run")
    body["labels"] = encode_like(body.get("labels"), [i % c for i in range(n)], integers=True)
    if "logits" in body:
        body["logits"] = encode_like(body["logits"], matrix(n, c))
    if "scores" in body:
        body["scores"] = encode_like(body["scores"], [[0.2, 0.8, 0.4, 0.6][i % 4] for i in range(n)])
    if "views_logits" in body:
        body["views_logits"] = encode_like(body["views_logits"], [matrix(n, c, seed=v) for v in range(2)])
    return body


# The largest C a repaired calibrator may have, by method (the parameters grow with C or C²).
MAX_CLASSES = {"vector": 64, "matrix": 24, "dirichlet": 24, "isotonic": 64, "histogram": 64, "correctness_aware": 64}


def repair_model(model: dict, classes: int) -> tuple[dict, int]:
    """Parameters consistent with `classes`; returns the model and the number of views its
    input needs (correctness_aware), else 0."""
    model = copy.deepcopy(model)
    method, c = model["method"], classes
    if c > MAX_CLASSES.get(method, 10**7):
        raise Unrepairable("too many classes for a CI request")
    p = model["params"]
    views = 0
    if method == "vector":
        p["w"] = float_vector_like(p["w"], [1.0 + 0.25 * (j % 3) for j in range(c)])
        p["b"] = float_vector_like(p["b"], [0.0] * c)
    elif method in ("matrix", "dirichlet"):
        p["W"] = [[1.0 if i == j else 0.1 for j in range(c)] for i in range(c)]
        p["b"] = float_vector_like(p["b"], [0.0] * c)
    elif method == "ensemble_temperature":
        p["weights"] = float_vector_like(p["weights"], [0.25, 0.25, 0.5])
    elif method == "correctness_aware":
        k = int(scalar_value(p["k"]))
        kk = min(k, c)
        if kk > 256:
            raise Unrepairable("correctness_aware network too wide for a CI request")
        t_min, t_max = scalar_value(p["t_min"]), scalar_value(p["t_max"])
        if not t_max > t_min:
            raise Unrepairable("t_max <= t_min")
        hidden = 2
        p["b1"] = float_vector_like(p["b1"], [0.1, -0.1])
        p["W1"] = [[0.05 * ((i + j) % 3) for j in range(kk)] for i in range(hidden)]
        p["w2"] = float_vector_like(p["w2"], [0.5, -0.5])
        views = 2
    elif method in ("isotonic", "histogram"):
        count = 1 if c == 2 else c

        def rows(like: Any, row: list[float]) -> Any:
            if count == 1 and isinstance(like, list) and like and not isinstance(like[0], list):
                return list(row)
            return [list(row) for _ in range(count)]

        if method == "isotonic":
            p["x"] = rows(p["x"], [-1.0, 0.0, 1.0])
            p["y"] = rows(p["y"], [0.1, 0.5, 0.9])
            p["x_min"] = float_vector_like(p["x_min"], [-1.0] * count)
            p["x_max"] = float_vector_like(p["x_max"], [1.0] * count)
        else:
            p["edges"] = float_vector_like(p["edges"], [0.0, 0.5, 1.0])
            p["theta"] = rows(p["theta"], [0.25, 0.75])
            if "counts" in p:
                p["counts"] = rows(p["counts"], [3.0, 1.0])
    return model, views


def calibrator_inputs(body: dict, method: str, c: int, views: int) -> dict:
    """`logits` / `scores` / `views_logits` for a calibrator of `method` with C classes."""
    if method in BINARY:
        if "logits" not in body and "scores" not in body:
            body["logits"] = None
    elif method == "correctness_aware":
        body.pop("scores", None)
        if "views_logits" not in body:
            body["views_logits"] = None
    else:
        body.pop("scores", None)
        if "logits" not in body:
            body["logits"] = None
    if "logits" in body:
        body["logits"] = encode_like(body["logits"], matrix(N, c))
    if "scores" in body:
        body["scores"] = encode_like(body["scores"], [0.2, 0.8, 0.6] if method == "beta" else [-1.0, 1.5, 0.5])
    if "views_logits" in body:
        body["views_logits"] = encode_like(body["views_logits"], [matrix(N, c, seed=v) for v in range(max(views, 1))])
    return body


def repair_put(body: dict) -> dict:
    body = copy.deepcopy(body)
    model, _ = repair_model(body, int(body["classes"]))
    return model


def repair_inline_calibrate(body: dict) -> dict:
    body = copy.deepcopy(body)
    calibrator = body["calibrator"]
    method = calibrator["method"]
    c = int(calibrator.get("classes", 2 if method in BINARY else 3))
    body["calibrator"], views = repair_model(calibrator, c)
    return calibrator_inputs(body, method, c, views)


def stored_calibrator(case: Any, name: str) -> dict | None:
    """The stored calibrator `name` as the server has it now, or None (absent, or no server)."""
    return stored_document(case, "/v1/calibrators/" + name)


def stored_document(case: Any, path: str) -> dict | None:
    """What a GET of `path` answers now, or None (absent, or no server)."""
    url = case.operation.schema.get_base_url() + path
    headers = {}
    key = os.environ.get("LOSSD_API_KEY")
    if key:
        headers["Authorization"] = "Bearer " + key
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def repair_stored(case: Any, body: dict, name: str) -> dict:
    stored = stored_calibrator(case, name)
    if stored is None:
        return body  # no such calibrator: the answer is a 404, which the check accepts
    body = copy.deepcopy(body)
    method, c = stored["method"], int(stored["classes"])
    views = 0
    if method == "correctness_aware":
        params = stored["params"]
        k = int(scalar_value(params["k"]))
        views = len(params["W1"][0]) // min(k, c) + 1 if params["W1"] and params["W1"][0] else 1
    if c > 1024:
        raise Unrepairable("stored calibrator too wide for a CI request")
    return calibrator_inputs(body, method, c, views)


# ---------------------------------------------------------------------------------------
# POST /v1/ensemble, POST /v1/aggregate
# ---------------------------------------------------------------------------------------


def repair_reliability(case: Any, body: dict) -> dict:
    """A stored calibrator's input (as for apply) with one label per row in [0, C)."""
    name = str(case.path_parameters.get("name", ""))
    stored = stored_calibrator(case, name)
    if stored is None:
        return body
    body = repair_stored(case, body, name)
    c = int(stored["classes"])
    # calibrator_inputs writes N rows of logits (or views), or three scores.
    rows = 3 if "scores" in body and "logits" not in body else N
    body["labels"] = encode_like(body.get("labels", []), [i % c for i in range(rows)], integers=True)
    return body


def repair_ensemble(body: dict) -> dict:
    body = copy.deepcopy(body)
    k = (body.get("params") or {}).get("k") if body["method"] == "crossmax" else None
    if k is not None and k > 16:
        raise Unrepairable("crossmax k too large for a CI request")
    m = max(3, k or 0)
    body["logits"] = encode_like(body["logits"], [matrix(2, 3, seed=i) for i in range(m)])
    if "weights" in body:
        body["weights"] = encode_like(body["weights"], [1.0 + (i % 2) for i in range(m)])
    return body


AGGREGATION_SCHEMAS = {
    "majority_vote": "NoAggregationParams", "frequency": "NoAggregationParams", "softmax": "SoftmaxAggregationParams",
    "dawid_skene": "DawidSkeneParams", "glad": "GladParams", "mace": "MaceParams", "wawa": "NoAggregationParams",
    "zero_based_skill": "ZeroBasedSkillParams",
}
AVERAGE_DEFAULT = ["frequency", "softmax", "dawid_skene", "glad", "mace", "wawa", "zero_based_skill"]


def component_is_valid(method: str, value: Any) -> bool:
    """Whether `value` is a valid parameter object for `method` run inside `average`."""
    schema = {"allOf": [{"$ref": f"#/components/schemas/{AGGREGATION_SCHEMAS[method]}"}], "not": {"required": ["items"]}}
    return isinstance(value, dict) and validator(json.dumps(schema), schema).is_valid(value)


def id_key(value: Any) -> str:
    """An item or annotator id as the server compares them: 1 and 1.0 alike, "1" apart."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value)


def aggregation_work(method: str, params: dict, annotations: int, annotators: int, k: int) -> float:
    p = params or {}
    if method == "dawid_skene":
        return p.get("n_iter", 100) * (annotations * k + annotators * k * k)
    if method == "glad":
        return p.get("n_iter", 100) * p.get("m_step_max_iter", 25) * annotations * k
    if method == "mace":
        return p.get("n_restarts", 10) * p.get("n_iter", 50) * annotations * k
    if method == "zero_based_skill":
        return p.get("n_iter", 100) * annotations * k
    return annotations * k


def repair_aggregate(body: dict) -> dict:
    body = copy.deepcopy(body)
    k = int(body["num_classes"])
    annotations = [[a[0], a[1], a[2] % k] for a in body["annotations"]]
    body["annotations"] = annotations
    params = body.get("params")
    annotators = len({id_key(a[1]) for a in annotations})
    if body["method"] == "average":
        chosen = params.get("methods", AVERAGE_DEFAULT) if params else AVERAGE_DEFAULT
        work = sum(aggregation_work(m, (params or {}).get(m) if isinstance((params or {}).get(m), dict) else {},
                                    len(annotations), annotators, k) for m in chosen)
        if params is not None:
            if "weights" in params:
                weights = (list(params["weights"]) + [1.0] * len(chosen))[: len(chosen)]
                if not sum(weights) > 0:
                    weights[0] = 1.0
                params["weights"] = weights
            if "methods" in params:
                for m in set(chosen):
                    if m in params and not component_is_valid(m, params[m]):
                        del params[m]
    else:
        work = aggregation_work(body["method"], params, len(annotations), annotators, k)
    if work > 5e7:
        raise Unrepairable("aggregation too slow for a CI run")
    if params is not None and "items" in params:
        items = list(params["items"])
        seen = {id_key(i) for i in items}
        for a in annotations:
            if id_key(a[0]) not in seen:
                seen.add(id_key(a[0]))
                items.append(a[0])
        params["items"] = items
    return body


# ---------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------

_document: dict | None = None
_validators: dict[str, Any] = {}


# -- scaling laws -------------------------------------------------------------------

SCALING_MIN_POINTS = {"power_law": 4, "chinchilla": 6, "nmt": 5}


def scaling_points(law: str, count: int) -> list[dict]:
    """`count` points of a known law over two decades and more (every start of the fit
    grid has a finite objective on them)."""
    points = []
    for i in range(count):
        t = i / max(count - 1, 1)
        if law == "power_law":
            x = 1e6 * 10 ** (4 * t)
            points.append({"x": x, "loss": 1.69 + (8.8e6 / x) ** 0.34})
        elif law == "chinchilla":
            n, d = 7e7 * 10 ** (2 * t), 5e9 * 10 ** (2 * ((i * 7) % count) / max(count - 1, 1))
            points.append({"n": n, "d": d, "loss": 1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28})
        else:
            e, d = 2e7 * 10 ** (2 * t), 2e7 * 10 ** (2 * ((i * 3) % count) / max(count - 1, 1))
            points.append({"n_encoder": e, "n_decoder": d, "loss": 1.2 * (1e8 / e) ** 0.25 * (1e8 / d) ** 0.45 + 0.9})
    return points


def scaling_curve(warmup: int, decay: float, length: int = 24) -> dict:
    """A dense warm-up + cosine curve of `length` steps after warm-up, its losses from a
    known lr_annealing law."""
    total = warmup + length
    lr = [3e-4 * (s + 1) / max(warmup, 1) if s < warmup else
          3e-5 + (3e-4 - 3e-5) * 0.5 * (1 + math.cos(math.pi * (s - warmup) / length)) for s in range(total)]
    loss, s1, momentum, s2 = [], 0.0, 0.0, 0.0
    for s in range(total):
        if s < warmup:
            loss.append(3.0)
            continue
        previous = lr[s - 1] if s > warmup else lr[s]
        s1 += lr[s]
        momentum = decay * momentum + (previous - lr[s])
        s2 += momentum
        loss.append(2.1 + 0.45 * s1 ** -0.51 - 0.35 * s2)
    return {"lr": lr, "loss": loss}


def repair_scaling_fit(body: dict) -> dict:
    """Points (or curves) of a known law in the count and layout generated, enough of
    them for the law, `weights` one per fitted point, and at most 10 bootstrap samples
    (a CI-time bound: each sample is a refit)."""
    body = copy.deepcopy(body)
    law = body.get("law")
    params = body.get("params") or {}
    data = body.get("data") or []
    if law == "lr_annealing":
        warmup = int(params.get("warmup_steps", 0))
        if warmup > 64:
            raise Unrepairable("a warm-up longer than a CI curve")
        if params.get("decay", 0.999) < 0.9:
            # The CI curve's law with a short momentum memory has an annealing term the
            # deterministic start grid does not reach (422 "no start of the grid ...").
            raise Unrepairable("a momentum decay the CI curve is not fitted from")
        curves = [scaling_curve(warmup, params.get("decay", 0.999)) for _ in data[:4]]
        body["data"] = curves
        fitted = 24 * len(curves)
    else:
        if any(not 1e-30 < params.get(ref, 1e8) < 1e30 for ref in ("n_encoder_ref", "n_decoder_ref")):
            # The law's factor (ref / size)^p overflows or vanishes at every start.
            raise Unrepairable("nmt reference sizes far outside the CI points' range")
        minimum = SCALING_MIN_POINTS[law] - (1 if law == "power_law" and params.get("irreducible") is False else 0)
        count = min(max(len(data), minimum), 64)
        body["data"] = scaling_points(law, count)
        fitted = count
    if "weights" in body:
        generated = [w for w in body["weights"] if isinstance(w, (int, float)) and w >= 0] or [1.0]
        body["weights"] = [1.0] + [generated[i % len(generated)] for i in range(1, fitted)]
    if isinstance(body.get("bootstrap"), dict) and body["bootstrap"].get("samples", 1) > 10:
        body["bootstrap"]["samples"] = 10
    return body


def repair_scaling_predict(body: dict) -> dict:
    """Parameters that agree with `irreducible`, point lists of one length, and a
    schedule whose steps lie after the warm-up."""
    body = copy.deepcopy(body)
    law = body.get("law")
    params = body.get("params") or {}
    if law == "power_law":
        if params.get("irreducible") is False:
            params.pop("L_inf", None)
        else:
            params.setdefault("L_inf", 1.0)
    pairs = {"chinchilla": ("n", "d"), "nmt": ("n_encoder", "n_decoder")}
    if law in pairs:
        a, b = pairs[law]
        if a in body and b in body:
            k = min(len(body[a]), len(body[b]))
            body[a], body[b] = body[a][:k], body[b][:k]
    if law == "lr_annealing":
        curve = body.get("curve") or {}
        lr = [v if v > 0 else 1e-3 for v in curve.get("lr", [])][:4096] or [1e-3]
        curve["lr"] = lr
        warmup = min(int(params.get("warmup_steps", 0)), len(lr) - 1)
        params["warmup_steps"] = warmup
        if "steps" in curve:
            steps = list(range(warmup + 1, len(lr) + 1))[: max(len(curve["steps"]), 1)]
            curve["steps"] = steps
        body["curve"] = curve
    body["params"] = params
    return body


SCALING_QUERIES = {
    "power_law": ["x", "target_loss"],
    "chinchilla": ["n", "d", "compute"],
    "nmt": ["n_encoder", "n_decoder", "n_total"],
    "lr_annealing": ["curve"],
}


def repair_scaling_put(body: dict) -> dict:
    """`L_inf` that agrees with `options.irreducible` (as for predictions)."""
    body = copy.deepcopy(body)
    if body.get("law") == "power_law":
        options = body.get("options") or {}
        if options.get("irreducible") is False:
            body["params"].pop("L_inf", None)
        else:
            body["params"].setdefault("L_inf", 1.0)
    return body


def repair_stored_predict(case: Any, body: dict) -> dict:
    """A prediction from a stored law gets the queries of that law only, repaired as an
    inline prediction's (none stored: the 404 stands)."""
    stored = stored_document(case, "/v1/scaling/laws/" + str(body["name"]))
    if stored is None:
        return body
    law = stored["law"]
    inline = {key: value for key, value in body.items() if key in SCALING_QUERIES[law]}
    inline["law"], inline["params"] = law, {**stored["params"], **stored["options"]}
    if law == "lr_annealing" and "curve" not in inline:
        inline["curve"] = {"lr": [1e-3]}
    if law == "chinchilla" and ("n" in inline) != ("d" in inline):
        inline.pop("n", None), inline.pop("d", None)
    if law == "nmt" and ("n_encoder" in inline) != ("n_decoder" in inline):
        inline.pop("n_encoder", None), inline.pop("n_decoder", None)
    repaired = repair_scaling_predict(inline)
    if law == "lr_annealing" and len(repaired["curve"]["lr"]) <= int(stored["options"].get("warmup_steps", 0)):
        raise Unrepairable("a stored law's warm-up longer than the generated schedule")
    answer = {key: value for key, value in repaired.items() if key not in ("law", "params")}
    answer["name"] = body["name"]
    return answer


def validator(key: str, schema: dict) -> Any:
    """A JSON Schema validator of `schema`, whose references point into openapi.yaml."""
    global _document
    import jsonschema
    import yaml

    if _document is None:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "openapi.yaml")) as f:
            _document = yaml.safe_load(f)
    if key not in _validators:
        _validators[key] = jsonschema.Draft202012Validator({**schema, "components": _document["components"]})
    return _validators[key]


def check_against_document(case: Any, body: Any) -> None:
    """Stops the run when a repaired JSON body breaks the request schema of openapi.yaml:
    a repair must never turn a case the document rejects into one the server is asked to
    accept."""
    operation = case.operation
    if case.media_type == "application/json":
        schema = operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
    elif case.media_type and case.media_type.startswith("multipart/") and "request" in body:
        schema, body = {"$ref": "#/components/schemas/LossRequest"}, json.loads(body["request"])
    else:
        return
    errors = list(validator(f"{case.method} {operation.path} {case.media_type}", schema).iter_errors(body))
    if errors:
        raise AssertionError(
            f"scripts/schemathesis/hooks.py made a {case.method} {operation.path} body that openapi.yaml "
            f"rejects ({errors[0].message[:300]}): fix the repair"
        )


def repaired(case: Any) -> Any:
    """The repaired body of a positive case (the body itself when nothing applies)."""
    body = case.body
    route = (case.method.upper(), case.operation.path)
    if not isinstance(body, dict):
        return body
    if route == ("POST", "/v1/loss"):
        load_catalogue(case)
        if case.media_type and case.media_type.startswith("multipart/"):
            return repair_loss_multipart(body)
        return repair_loss(body)
    if route in (("POST", "/v1/metrics"), ("POST", "/v1/reliability")):
        return repair_metrics(body)
    if route == ("POST", "/v1/embedding-metrics"):
        return repair_embedding_metrics(body)
    if route == ("POST", "/v1/calibrators/fit"):
        return repair_fit(body)
    if route == ("POST", "/v1/calibrators/select"):
        return repair_select(body)
    if route == ("PUT", "/v1/calibrators/{name}"):
        return repair_put(body)
    if route == ("POST", "/v1/calibrate"):
        if "calibrator" in body:
            return repair_inline_calibrate(body)
        return repair_stored(case, body, body["name"])
    if route == ("POST", "/v1/calibrators/{name}/apply"):
        return repair_stored(case, body, str(case.path_parameters.get("name", "")))
    if route == ("POST", "/v1/calibrators/{name}/reliability"):
        return repair_reliability(case, body)
    if route == ("POST", "/v1/ensemble"):
        return repair_ensemble(body)
    if route == ("POST", "/v1/aggregate"):
        return repair_aggregate(body)
    if route == ("POST", "/v1/scaling/fit"):
        return repair_scaling_fit(body)
    if route == ("POST", "/v1/scaling/predict"):
        if "name" in body:
            return repair_stored_predict(case, body)
        return repair_scaling_predict(body)
    if route == ("PUT", "/v1/scaling/laws/{name}"):
        return repair_scaling_put(body)
    return body


def is_positive(case: Any) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def filter_case(context, case):
    if not is_positive(case):
        return True
    try:
        repaired(case)
    except Unrepairable:
        return False
    return True


@schemathesis.hook
def map_case(context, case):
    if is_positive(case):
        try:
            body = repaired(case)
        except Unrepairable:
            return case  # filter_case has dropped it
        if body is not case.body:
            check_against_document(case, body)
            case.body = body
    return case


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops a positive case answered 422 `value_overflow` by an operation that documents
    it (see the module doc)."""
    if type(failure).__name__ != "RejectedPositiveData":
        return True
    overflowing = {"/v1/loss", "/v1/calibrate", "/v1/calibrators/{name}/apply", "/v1/calibrators/{name}/reliability",
                   "/v1/aggregate", "/v1/scaling/fit",
                   "/v1/scaling/predict"}
    if case.method.upper() != "POST" or case.operation.path not in overflowing or response.status_code != 422:
        return True
    try:
        problem = json.loads(response.content)
    except ValueError:
        return True
    if case.operation.path == "/v1/scaling/fit" and "no start of the grid" in str(problem.get("detail", "")):
        return False
    return problem.get("type") != "urn:lossd:error:value_overflow"
