"""Python client for lossd, the loss-evaluation and calibration service.

Large float arrays (NumPy, or anything with ``__array__``) travel as raw ``.npy`` parts of
a multipart request and small ones as little-endian base64 tensors; answers are asked for
as ``multipart/form-data`` (``Accept``), so every tensor of an answer arrives as raw
little-endian bytes that become a NumPy array without decoding. Errors raise
:class:`LossdError`, and a 503 with ``Retry-After`` is retried a bounded number of times.
One ``urllib3`` pool keeps connections alive.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union
import urllib.parse
import urllib.request

import numpy as np
import urllib3

__all__ = ["Client", "Answer", "LossdError", "LossResult", "Calibrator", "Calibrated", "Selection", "encode_array", "decode_tensors"]
__version__ = "0.1.0"

ArrayLike = Any
Json = Dict[str, Any]


class LossdError(Exception):
    """An error answer of lossd (RFC 9457 problem document), or a transport failure.

    ``status`` is the HTTP status (0 for a transport failure), ``code`` the last segment of
    the problem ``type`` (``unknown_field``, ``invalid_shape``, ...), ``field`` the JSON
    pointer of the offending request field when there is one.
    """

    def __init__(self, status: int, code: str, title: str, detail: str, field: Optional[str] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(f"{status} {code}: {detail}" + (f" (at {field})" if field else ""))
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


@dataclass
class LossResult:
    """One loss's answer: ``value`` (mean or sum) or ``values`` (per row, reduction none),
    ``grad`` by input name, ``extras`` by name; ``raw`` is the decoded answer."""

    loss: str
    reduction: str
    n: int
    value: Optional[float]
    values: Optional[np.ndarray]
    grad: Dict[str, np.ndarray] = field(default_factory=dict)
    extras: Dict[str, Any] = field(default_factory=dict)
    raw: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, answer: Json) -> "LossResult":
        return cls(loss=answer["loss"], reduction=answer["reduction"], n=answer["n"], value=answer.get("value"),
                   values=answer.get("values"), grad=dict(answer.get("grad", {})), extras=dict(answer.get("extras", {})),
                   raw=answer)


@dataclass
class Calibrated:
    """Calibrated probabilities [N][C] and their argmax."""

    probs: np.ndarray
    predictions: np.ndarray


@dataclass
class Calibrator:
    """A fitted or stored calibrator: its document (``method``, ``params``, ``classes``,
    ...), the fit report when it was just fitted, and the ETag when it is stored."""

    document: Json
    fit: Optional[Json] = None
    etag: Optional[str] = None

    @property
    def name(self) -> Optional[str]:
        return self.document.get("name")

    @property
    def method(self) -> str:
        return self.document["method"]

    @property
    def params(self) -> Json:
        return self.document.get("params", {})


@dataclass
class Selection:
    """The answer of ``/v1/calibrators/select``: the ``ranking`` (best first: ``method``,
    ``mean``, ``std``, ``per_fold``, ``fit_failures``), the ``uncalibrated`` baseline, and
    ``best``, the winner refitted on all rows (with the ETag when stored by ``name``)."""

    ranking: List[Json]
    uncalibrated: Json
    best: Calibrator
    answer: Json


def encode_array(value: ArrayLike) -> Any:
    """A request field from an array-like: floats as ``{shape, dtype, base64}`` (float32
    stays float32, any other float becomes float64), integers and booleans as lists;
    scalars, strings, dicts and lists of non-numbers unchanged."""
    array = _as_array(value)
    if array is None:
        return value
    if array.dtype.kind in "iub":
        return array.tolist()
    if array.dtype.kind != "f":
        return value if isinstance(value, (list, tuple)) else array.tolist()
    dtype = "float32" if array.dtype == np.float32 else "float64"
    data = np.ascontiguousarray(array, dtype="<f4" if dtype == "float32" else "<f8")
    return {"shape": list(data.shape), "dtype": dtype, "base64": base64.b64encode(data.tobytes()).decode("ascii")}


def decode_tensors(node: Any) -> Any:
    """Replaces every ``{shape, dtype, base64}`` object of an answer with an ndarray."""
    if isinstance(node, dict):
        if set(node) == {"shape", "dtype", "base64"} and node["dtype"] in ("float32", "float64"):
            raw = base64.b64decode(node["base64"])
            array = np.frombuffer(raw, dtype="<f4" if node["dtype"] == "float32" else "<f8")
            return array.reshape(node["shape"])
        return {key: decode_tensors(value) for key, value in node.items()}
    if isinstance(node, list):
        return [decode_tensors(item) for item in node]
    return node


@dataclass
class Answer:
    """One HTTP answer: ``status``, ``headers`` (case-insensitive) and the ``body`` bytes."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """A connection to one lossd.

    ``url`` defaults to ``LOSSD_URL`` (else ``http://127.0.0.1:8080``) and ``api_key`` to
    ``LOSSD_API_KEY``. ``output_dtype`` is the float type answers come back in (float64
    keeps every bit; float32 halves the bytes). ``retries`` bounds the retries of a 503
    that carries ``Retry-After`` (each wait capped at ``max_retry_wait`` seconds).
    ``verify`` is True (the system's CA certificates, or ``SSL_CERT_FILE`` /
    ``REQUESTS_CA_BUNDLE``), False, or a CA bundle's path. An HTTP(S) proxy from the
    environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) is used as curl would.

    Connections come from one ``urllib3`` pool and are kept alive between calls.
    """

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, timeout: float = 60.0, *,
                 output_dtype: str = "float64", retries: int = 3, max_retry_wait: float = 5.0,
                 verify: Union[bool, str] = True, pool_size: int = 4) -> None:
        self.url = (url or os.environ.get("LOSSD_URL") or "http://127.0.0.1:8080").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("LOSSD_API_KEY") or None
        self.timeout = timeout
        self.output_dtype = output_dtype
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        # Answers this client asks for are binary; compressing them on a loopback costs
        # more than it saves (lossd does not compress multipart answers anyway).
        self.headers: Dict[str, str] = {"Accept-Encoding": "identity", "User-Agent": f"lossd-client/{__version__}"}
        if self.api_key:
            self.headers["Authorization"] = f"Bearer {self.api_key}"
        tls: Dict[str, Any] = {}
        if self.url.startswith("https:"):
            if verify is False:
                tls = {"cert_reqs": "CERT_NONE"}
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            else:
                bundle = verify if isinstance(verify, str) else (
                    os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE") or None)
                tls = {"cert_reqs": "CERT_REQUIRED", **({"ca_certs": bundle} if bundle else {})}
        host = urllib.parse.urlsplit(self.url).hostname or ""
        proxy = None if urllib.request.proxy_bypass(host) else urllib.request.getproxies().get(self.url.split(":", 1)[0])
        self.pool: urllib3.PoolManager = (urllib3.ProxyManager(proxy, num_pools=1, maxsize=pool_size, **tls) if proxy
                                          else urllib3.PoolManager(num_pools=1, maxsize=pool_size, **tls))

    # -- transport -----------------------------------------------------------------

    def close(self) -> None:
        self.pool.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, body: Optional[Json] = None, *, headers: Optional[Mapping[str, str]] = None,
                raw: bool = False, data: Optional[bytes] = None, binary_answer: bool = False) -> Any:
        """Sends one request (a JSON ``body``, or prepared ``data``); returns the decoded
        JSON answer (or the :class:`Answer` with ``raw``). With ``binary_answer`` the
        answer is asked for as multipart/form-data and its tensors come back as NumPy
        arrays."""
        sent = dict(self.headers)
        if body is not None and data is None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        if binary_answer:
            sent["Accept"] = "multipart/form-data"
        attempt = 0
        while True:
            answer = self._send(method, path, data, sent)
            if answer.status == 503 and attempt < self.retries and "Retry-After" in answer.headers:
                attempt += 1
                try:
                    wait = float(answer.headers["Retry-After"])
                except ValueError:
                    wait = 1.0
                time.sleep(min(max(wait, 0.0), self.max_retry_wait))
                continue
            if answer.status >= 400:
                raise self._error(answer)
            if raw:
                return answer
            content_type = answer.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                return _multipart_answer(answer.body, content_type)
            if answer.status == 204 or not answer.body:
                return None
            return decode_tensors(answer.json())

    def _send(self, method: str, path: str, data: Optional[bytes], headers: Mapping[str, str]) -> Answer:
        try:
            response = self.pool.request(method, self.url + path, body=data, headers=headers, redirect=False,
                                         retries=False, timeout=urllib3.Timeout(total=self.timeout))
        except urllib3.exceptions.HTTPError as error:
            raise LossdError(0, "transport", "Transport failure", str(error)) from error
        # A writable copy, so that arrays made from the answer are writable too.
        return Answer(response.status, response.reason or "", response.headers, bytearray(response.data))

    @staticmethod
    def _error(answer: Answer) -> LossdError:
        retry_after = answer.headers.get("Retry-After")
        try:
            problem = answer.json()
            code = str(problem.get("type", "")).rsplit(":", 1)[-1] or "error"
            return LossdError(answer.status, code, problem.get("title", ""), problem.get("detail", ""),
                              problem.get("field"), float(retry_after) if retry_after else None)
        except ValueError:
            return LossdError(answer.status, "error", answer.reason, answer.text[:500])

    #: Float arrays at least this large travel as raw ``.npy`` parts of a multipart body
    #: rather than base64 in JSON: no base64 to encode here or decode there.
    npy_part_bytes = 16 * 1024

    def _post(self, path: str, body: Json, binary_answer: bool = True) -> Any:
        large: Dict[str, np.ndarray] = {}
        payload: Json = {}
        for key, value in body.items():
            if value is None:
                continue
            array = _float_array(value)
            if array is not None and array.nbytes >= self.npy_part_bytes:
                large[key] = array
            else:
                payload[key] = encode_array(value)
        if binary_answer:
            payload["output_dtype"] = self.output_dtype
        if not large:
            return self.request("POST", path, payload, binary_answer=binary_answer)
        boundary, data = _multipart(payload, large)
        return self.request("POST", path, data=data, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                            binary_answer=binary_answer)

    # -- service ---------------------------------------------------------------------

    def health(self) -> Json:
        return self.request("GET", "/healthz")

    def ready(self) -> bool:
        try:
            self.request("GET", "/readyz")
            return True
        except LossdError:
            return False

    def version(self) -> Json:
        return self.request("GET", "/v1/version")

    def catalogue(self) -> List[Json]:
        """``GET /v1/losses``: every loss with its inputs and parameters."""
        return self.request("GET", "/v1/losses")

    # -- losses ----------------------------------------------------------------------

    def loss(self, name: str, *, reduction: str = "mean", return_grad: bool = False, params: Optional[Json] = None,
             **tensors: ArrayLike) -> LossResult:
        """One loss over a batch: ``client.loss("focal", logits=z, labels=y, params={"gamma": 2})``."""
        body: Json = {"loss": name, "reduction": reduction, "return_grad": return_grad, **tensors}
        if params:
            body["params"] = params
        return LossResult.from_json(self._post("/v1/loss", body))

    def losses(self, entries: Sequence[Union[str, Mapping[str, Any]]], *, return_grad: bool = False,
               **tensors: ArrayLike) -> List[LossResult]:
        """Several losses over one batch; an entry is a name or ``{"loss", "params", "reduction"}``."""
        listed = [{"loss": e} if isinstance(e, str) else dict(e) for e in entries]
        answer = self._post("/v1/loss", {"losses": listed, "return_grad": return_grad, **tensors})
        return [LossResult.from_json(result) for result in answer["results"]]

    # -- metrics ---------------------------------------------------------------------

    def metrics(self, *, metrics: Optional[Sequence[str]] = None, params: Optional[Json] = None,
                **tensors: ArrayLike) -> Json:
        """``/v1/metrics``: ``client.metrics(logits=z, labels=y, metrics=["ece", "nll"])``.

        The tensors are passed as they are named in the API: ``logits`` or ``probs`` [N][C],
        binary ``probs``/``scores`` [N] (P(class 1)), and ``labels`` [N] or soft ``targets``
        [N][C], e.g. ``client.metrics(logits=z, targets=t, metrics=["nll", "kl"])``."""
        return self._post("/v1/metrics", {"metrics": list(metrics) if metrics else None, "params": params, **tensors})

    def reliability(self, *, svg: bool = False, params: Optional[Json] = None, **tensors: ArrayLike) -> Any:
        """``/v1/reliability``: the metrics with their bins, or the SVG diagram as text."""
        if not svg:
            return self._post("/v1/reliability", {"params": params, **tensors})
        payload = {k: encode_array(v) for k, v in {"params": params, **tensors}.items() if v is not None}
        return self.request("POST", "/v1/reliability", payload, headers={"Accept": "image/svg+xml"}, raw=True).text

    # -- calibrators -----------------------------------------------------------------

    def fit_calibrator(self, method: str, logits: Optional[ArrayLike] = None, labels: Optional[ArrayLike] = None, *,
                       name: Optional[str] = None, params: Optional[Json] = None, scores: Optional[ArrayLike] = None,
                       views_logits: Optional[ArrayLike] = None) -> Calibrator:
        """Fits (and, with ``name``, stores) a calibrator."""
        body = {"method": method, "name": name, "params": params, "logits": logits, "scores": scores,
                "views_logits": views_logits, "labels": labels}
        payload = {k: encode_array(v) for k, v in body.items() if v is not None}
        response = self.request("POST", "/v1/calibrators/fit", payload, raw=True)
        answer = response.json()
        return Calibrator(answer["calibrator"], answer.get("fit"), response.headers.get("ETag"))

    def select_calibrator(self, logits: Optional[ArrayLike] = None, labels: Optional[ArrayLike] = None, *,
                          methods: Optional[Sequence[str]] = None, folds: Optional[int] = None,
                          seed: Optional[int] = None, metric: Optional[str] = None, params: Optional[Json] = None,
                          name: Optional[str] = None, scores: Optional[ArrayLike] = None,
                          views_logits: Optional[ArrayLike] = None, if_match: Optional[str] = None,
                          svg: bool = False) -> Any:
        """Chooses a calibrator by stratified k-fold cross-validation (and, with ``name``,
        stores the winner). Returns a :class:`Selection`, or the SVG chart as text with ``svg``."""
        body = {"logits": logits, "scores": scores, "views_logits": views_logits, "labels": labels,
                "methods": list(methods) if methods is not None else None, "folds": folds, "seed": seed,
                "metric": metric, "params": params, "name": name}
        payload = {k: encode_array(v) for k, v in body.items() if v is not None}
        headers = {"If-Match": if_match} if if_match else {}
        if svg:
            headers["Accept"] = "image/svg+xml"
        response = self.request("POST", "/v1/calibrators/select", payload, headers=headers, raw=True)
        if svg:
            return response.text
        answer = response.json()
        best = Calibrator(answer["best"], None, response.headers.get("ETag"))
        return Selection(answer["ranking"], answer["uncalibrated"], best, answer)

    def calibrate(self, logits: Optional[ArrayLike] = None, *, name: Optional[str] = None,
                  calibrator: Optional[Union[Calibrator, Json]] = None, scores: Optional[ArrayLike] = None,
                  views_logits: Optional[ArrayLike] = None) -> Calibrated:
        """Calibrated probabilities by a stored calibrator's ``name`` or an inline ``calibrator``."""
        document = calibrator.document if isinstance(calibrator, Calibrator) else calibrator
        if document is not None:
            document = {k: v for k, v in document.items() if k in ("method", "params", "classes")}
        answer = self._post("/v1/calibrate", {"name": name, "calibrator": document, "logits": logits, "scores": scores,
                                              "views_logits": views_logits})
        return Calibrated(np.asarray(answer["probs"]), np.asarray(answer["predictions"], dtype=np.int64))

    def calibrators(self) -> List[Json]:
        return self.request("GET", "/v1/calibrators")["calibrators"]

    def get_calibrator(self, name: str) -> Calibrator:
        response = self.request("GET", f"/v1/calibrators/{name}", raw=True)
        return Calibrator(response.json(), etag=response.headers.get("ETag"))

    def put_calibrator(self, name: str, calibrator: Union[Calibrator, Json], *, if_match: Optional[str] = None) -> Calibrator:
        document = calibrator.document if isinstance(calibrator, Calibrator) else dict(calibrator)
        headers = {"If-Match": if_match} if if_match else None
        response = self.request("PUT", f"/v1/calibrators/{name}", document, headers=headers, raw=True)
        return Calibrator(response.json(), etag=response.headers.get("ETag"))

    def delete_calibrator(self, name: str, *, if_match: Optional[str] = None) -> None:
        self.request("DELETE", f"/v1/calibrators/{name}", headers={"If-Match": if_match} if if_match else None)

    # -- aggregation and ensembles ---------------------------------------------------

    def aggregate(self, method: str, annotations: Any, num_classes: int, *, params: Optional[Json] = None) -> Json:
        """Soft labels from crowd annotations: ``[item, annotator, label]`` triples, or a
        pandas DataFrame with ``task``, ``worker`` and ``label`` columns (crowd-kit's form)."""
        if hasattr(annotations, "columns") and {"task", "worker", "label"} <= set(annotations.columns):
            frame = annotations[["task", "worker", "label"]]
            triples = [[_plain(t), _plain(w), int(l)] for t, w, l in frame.itertuples(index=False, name=None)]
        else:
            triples = [[_plain(a), _plain(b), int(c)] for a, b, c in annotations]
        return self._post("/v1/aggregate", {"method": method, "num_classes": num_classes, "params": params,
                                            "annotations": triples})

    def ensemble(self, method: str, logits: ArrayLike, *, weights: Optional[ArrayLike] = None,
                 params: Optional[Json] = None) -> Json:
        """Combines M members' logits [M][N][C] (``crossmax`` and the baselines)."""
        answer = self._post("/v1/ensemble", {"method": method, "logits": logits, "weights": weights, "params": params})
        answer["predictions"] = np.asarray(answer["predictions"], dtype=np.int64)
        return answer

    # -- scaling laws ----------------------------------------------------------------

    def fit_scaling_law(self, law: str, data: Any, *, params: Optional[Json] = None,
                        weights: Optional[ArrayLike] = None, bootstrap: Optional[Json] = None,
                        name: Optional[str] = None) -> Json:
        """``/v1/scaling/fit``: ``data`` is a list of points (``{"x", "loss"}``,
        ``{"n", "d", "loss"}``, ``{"n_encoder", "n_decoder", "loss"}``), a pandas DataFrame
        with those columns, or for ``lr_annealing`` a list of curves ``{"lr", "loss",
        "steps"?}`` (arrays welcome). Answers the fitted ``params``, ``options``, ``fit``
        report, ``fitted`` losses and, with ``bootstrap={"samples": B, "seed": s}``,
        ``intervals``. With ``name`` the law is also stored under
        ``/v1/scaling/laws/{name}`` (``predict_scaling_law(name=...)`` reads it)."""
        if hasattr(data, "to_dict") and hasattr(data, "columns"):
            data = data.to_dict("records")
        body = {"law": law, "data": _plain_json(data), "params": params, "bootstrap": bootstrap,
                "weights": None if weights is None else _plain_json(weights), "name": name}
        answer = self.request("POST", "/v1/scaling/fit", {k: v for k, v in body.items() if v is not None},
                              binary_answer=True)
        if isinstance(answer, dict) and "fitted" in answer:
            answer["fitted"] = np.asarray(answer["fitted"], dtype=np.float64)
        return answer

    def predict_scaling_law(self, law: Optional[str] = None, params: Optional[Json] = None, *,
                            name: Optional[str] = None, **where: Any) -> Json:
        """``/v1/scaling/predict`` from a fitted law: ``law`` and ``params`` (the fitted
        parameters and the law's options, a fit's ``{**fit["params"], **fit["options"]}``
        without ``huber_delta``), or ``name``, a law stored by a fit or a PUT; ``where`` is
        ``x=``, ``target_loss=``, ``n=``/``d=``, ``compute=``, ``n_encoder=``/``n_decoder=``,
        ``n_total=`` or ``curve={"lr": ..., "steps": ...}``."""
        queries = {k: _plain_json(v) for k, v in where.items() if v is not None}
        if name is not None:
            body = {"name": name, **queries}
        else:
            params = {k: v for k, v in (params or {}).items() if k != "huber_delta"}
            body = {"law": law, "params": _plain_json(params), **queries}
        answer = self.request("POST", "/v1/scaling/predict", body, binary_answer=True)
        if isinstance(answer, dict) and "loss" in answer:
            answer["loss"] = np.asarray(answer["loss"], dtype=np.float64)
        return answer


def _plain_json(value: Any) -> Any:
    """A JSON-ready copy: arrays (anything with ``__array__``) become lists, NumPy scalars
    Python numbers, dicts and lists are converted throughout."""
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes)):
        return np.asarray(value).tolist()
    return value


def _as_array(value: Any) -> Optional[np.ndarray]:
    """The value as an ndarray when it is array-like (``__array__``, a list or a tuple)."""
    if isinstance(value, (str, bytes, dict, int, float, bool)) or value is None:
        return None
    if not (hasattr(value, "__array__") or isinstance(value, (list, tuple))):
        return None
    try:
        return np.asarray(value)
    except Exception:  # noqa: BLE001 - not an array after all
        return None


def _float_array(value: Any) -> Optional[np.ndarray]:
    """The value as a float32/float64 ndarray when it is a float array-like, else None."""
    array = _as_array(value)
    if array is None or array.dtype.kind != "f" or array.ndim == 0:
        return None
    return np.ascontiguousarray(array, dtype="<f4" if array.dtype == np.float32 else "<f8")


def _npy(array: np.ndarray) -> bytes:
    """The header of the ``.npy`` file of a C-ordered little-endian float array (format 1.0)."""
    descr = "<f4" if array.dtype == np.dtype("<f4") else "<f8"
    shape = f"({array.shape[0]},)" if array.ndim == 1 else "(" + ", ".join(str(d) for d in array.shape) + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")


def _multipart(payload: Json, arrays: Mapping[str, np.ndarray]) -> "tuple[str, bytes]":
    """A multipart/form-data body: the JSON ``request`` part and one ``.npy`` part per array."""
    boundary = "lossd-" + os.urandom(20).hex()
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"request\"\r\n"
             f"Content-Type: application/json\r\n\r\n".encode(), json.dumps(payload).encode(), b"\r\n"]
    for name, array in arrays.items():
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.npy\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n".encode())
        parts.append(_npy(array))
        parts.append(memoryview(array).cast("B"))  # joined below: the data is copied once
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return boundary, b"".join(parts)


def _plain(value: Any) -> Union[int, str]:
    """An id as JSON wants it: NumPy integers become int, anything else str unless int."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (int, str)):
        return value
    return str(value)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?')
_PART_NAME = re.compile(rb'name="([^"]*)"')


def _multipart_answer(body: bytes, content_type: str) -> Any:
    """A multipart/form-data answer: the JSON part ``response`` with each
    ``{"shape", "dtype", "part"}`` replaced by an array over that part's ``.npy`` data."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise LossdError(0, "transport", "Malformed answer", "a multipart answer without a boundary")
    delimiter = b"--" + match.group(1).encode("latin1")
    spans: Dict[str, "tuple[int, int]"] = {}
    position = body.find(delimiter)
    while position >= 0:
        position += len(delimiter)
        if body[position:position + 2] == b"--":
            break
        head_end = body.find(b"\r\n\r\n", position)
        end = body.find(b"\r\n" + delimiter, head_end)
        if head_end < 0 or end < 0:
            raise LossdError(0, "transport", "Malformed answer", "a multipart answer cut short")
        name = _PART_NAME.search(bytes(body[position:head_end]))
        if name is not None:
            spans[name.group(1).decode("utf-8")] = (head_end + 4, end)
        position = end + 2
    if "response" not in spans:
        raise LossdError(0, "transport", "Malformed answer", "a multipart answer without its response part")
    start, end = spans["response"]
    document = json.loads(bytes(body[start:end]))

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"shape", "dtype", "part"} and node["part"] in spans:
                begin, finish = spans[node["part"]]
                header_length = int.from_bytes(body[begin + 8:begin + 10], "little")
                dtype = "<f4" if node["dtype"] == "float32" else "<f8"
                offset = begin + 10 + header_length
                count = (finish - offset) // np.dtype(dtype).itemsize
                return np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(node["shape"])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(document)
