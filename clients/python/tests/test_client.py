"""The Python client against the real lossd binary."""
import http.server
import json
import threading

import numpy as np
import pytest

import lossd


def reference_cross_entropy(logits, labels):
    """Mean cross-entropy and its gradient, in float64, independently of lossd."""
    z = np.asarray(logits, dtype=np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = z.shape[0]
    value = -log_probs[np.arange(n), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), labels] -= 1
    return value, grad / n


@pytest.fixture()
def client(server):
    with lossd.Client(server.url) as c:
        yield c


def test_loss_and_gradient_match_numpy(client):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 10))
    labels = rng.integers(0, 10, 64)
    result = client.loss("cross_entropy", logits=logits, labels=labels, return_grad=True)
    value, grad = reference_cross_entropy(logits, labels)
    assert result.loss == "cross_entropy" and result.n == 64
    assert abs(result.value - value) < 1e-12
    assert isinstance(result.grad["logits"], np.ndarray) and result.grad["logits"].shape == (64, 10)
    assert np.max(np.abs(result.grad["logits"] - grad)) < 1e-15
    assert isinstance(result.extras["per_sample_bits"], np.ndarray)


def test_float32_inputs_and_answers(server):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(256, 1000)).astype(np.float32)
    labels = rng.integers(0, 1000, 256)
    with lossd.Client(server.url, output_dtype="float32") as c:
        result = c.loss("cross_entropy", logits=logits, labels=labels, return_grad=True)
    value, grad = reference_cross_entropy(logits.astype(np.float64), labels)
    assert result.grad["logits"].dtype == np.float32
    assert abs(result.value - value) < 1e-9
    assert np.max(np.abs(result.grad["logits"] - grad)) < 1e-6


def test_reduction_none_and_several_losses(client):
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = np.array([0, 2])
    single = client.loss("cross_entropy", reduction="none", logits=logits, labels=labels)
    assert single.value is None and single.values.shape == (2,)
    results = client.losses(["cross_entropy", {"loss": "focal", "params": {"gamma": 1}}], logits=logits, labels=labels)
    assert [r.loss for r in results] == ["cross_entropy", "focal"]
    assert abs(results[0].value - single.values.mean()) < 1e-15


class ArrayLike:
    """Anything with __array__, as PyTorch CPU tensors and JAX arrays are."""

    def __init__(self, data):
        self.data = np.asarray(data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)


def test_objects_with_array_are_accepted(client):
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = np.array([0, 2])
    direct = client.loss("cross_entropy", logits=logits, labels=labels)
    wrapped = client.loss("cross_entropy", logits=ArrayLike(logits), labels=ArrayLike(labels))
    assert direct.value == wrapped.value


def test_errors_raise_lossd_error_with_code_and_field(client):
    with pytest.raises(lossd.LossdError) as info:
        client.loss("cross_entropy", logits=np.zeros((2, 3)), labels=np.array([0, 1]), params={"label_smoothng": 0.1})
    error = info.value
    assert error.status == 422 and error.code == "unknown_field"
    assert error.field == "/params/label_smoothng" and "label_smoothing" in error.detail
    with pytest.raises(lossd.LossdError) as info:
        client.loss("cross_entropy", logits=np.zeros((2, 3)), labels=np.array([0, 7]))
    assert info.value.code == "invalid_label" and info.value.field == "/labels/1"


def test_metrics_and_reliability(client):
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [0.0, 3.0, 0.5]])
    labels = np.array([0, 2, 1])
    metrics = client.metrics(logits=logits, labels=labels, metrics=["ece", "nll", "accuracy"])
    assert set(metrics) >= {"ece", "nll", "accuracy"} and metrics["accuracy"] == 1.0
    svg = client.reliability(logits=logits, labels=labels, svg=True)
    assert svg.lstrip().startswith("<svg") or svg.lstrip().startswith("<?xml")



def test_metrics_with_soft_targets_binary_scores_and_calibrated_nll(client):
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [0.0, 3.0, 0.5], [1.0, -1.0, 0.0]])
    onehot = np.eye(3)[[0, 2, 1, 0]]
    names = ["nll", "brier", "accuracy", "ece", "rmsce", "target_entropy", "kl"]
    hard = client.metrics(logits=logits, labels=np.array([0, 2, 1, 0]), metrics=names)
    soft = client.metrics(logits=logits, targets=onehot, metrics=names)
    assert soft == hard and soft["target_entropy"] == 0.0
    votes = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.0, 0.9, 0.1], [0.5, 0.25, 0.25]])
    crowd = client.metrics(logits=logits, targets=votes, metrics=names)
    assert abs(crowd["kl"] - (crowd["nll"] - crowd["target_entropy"])) < 1e-12
    s = np.array([0.9, 0.2, 0.65, 0.4])
    y = np.array([1, 0, 1, 0])
    binary = client.metrics(scores=s, labels=y, metrics=["nll", "brier"])
    two = client.metrics(probs=np.stack([1 - s, s], axis=1), labels=y, metrics=["nll", "brier"])
    assert binary == two
    rng = np.random.default_rng(5)
    z = rng.normal(size=(60, 3))
    y = np.where(rng.random(60) < 0.6, z.argmax(axis=1), rng.integers(0, 3, 60))
    cal = client.metrics(logits=z, labels=y, metrics=["calibrated_nll", "nll"], params={"repeats": 2, "seed": 3})
    assert 0 < cal["calibrated_nll"] < 2 and cal["calibrated_nll_std"] >= 0
    assert cal == client.metrics(logits=z, labels=y, metrics=["calibrated_nll", "nll"], params={"repeats": 2, "seed": 3})

def test_fit_store_apply_and_delete_a_calibrator(client):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(200, 4)) * 3
    labels = np.where(rng.random(200) < 0.7, logits.argmax(axis=1), rng.integers(0, 4, 200))
    fitted = client.fit_calibrator("temperature", logits, labels, name="client-test-ts")
    assert fitted.method == "temperature" and fitted.etag and fitted.fit["converged"]
    by_name = client.calibrate(logits[:5], name="client-test-ts")
    inline = client.calibrate(logits[:5], calibrator=fitted)
    assert by_name.probs.shape == (5, 4) and np.allclose(by_name.probs, inline.probs, atol=0, rtol=0)
    assert np.allclose(by_name.probs.sum(axis=1), 1)
    assert any(c["name"] == "client-test-ts" for c in client.calibrators())
    stored = client.get_calibrator("client-test-ts")
    assert stored.etag == fitted.etag
    client.delete_calibrator("client-test-ts", if_match=stored.etag)
    with pytest.raises(lossd.LossdError) as info:
        client.get_calibrator("client-test-ts")
    assert info.value.status == 404


def test_select_calibrator_stores_the_winner(client):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(150, 3)) * 4
    labels = np.where(rng.random(150) < 0.6, logits.argmax(axis=1), rng.integers(0, 3, 150))
    chosen = client.select_calibrator(logits, labels, methods=["temperature", "vector", "isotonic"], folds=3,
                                      name="client-test-select")
    means = [row["mean"] for row in chosen.ranking]
    assert means == sorted(means) and chosen.best.method == chosen.ranking[0]["method"]
    assert chosen.best.etag and chosen.best.name == "client-test-select"
    by_name = client.calibrate(logits[:5], name="client-test-select")
    inline = client.calibrate(logits[:5], calibrator=chosen.best)
    assert np.allclose(by_name.probs, inline.probs, atol=0, rtol=0)
    assert client.select_calibrator(logits, labels, folds=3, svg=True).startswith("<?xml")
    client.delete_calibrator("client-test-select")


def test_aggregate_from_triples_and_from_a_dataframe(client):
    triples = [["t1", "a", 0], ["t1", "b", 0], ["t1", "c", 1], ["t2", "a", 1], ["t2", "b", 1]]
    answer = client.aggregate("dawid_skene", triples, num_classes=2)
    assert answer["items"] == ["t1", "t2"] and answer["soft_labels"].shape == (2, 2)
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(triples, columns=["task", "worker", "label"])
    from_frame = client.aggregate("dawid_skene", frame, num_classes=2)
    assert np.array_equal(from_frame["soft_labels"], answer["soft_labels"])


def test_ensemble(client):
    logits = np.array([[[2.0, 0.5, -1.0]], [[1.0, 1.5, 0.0]]])
    answer = client.ensemble("mean_probs", logits)
    assert answer["probs"].shape == (1, 3) and answer["predictions"].tolist() == [0]


def test_api_key_from_the_environment(keyed_server, monkeypatch):
    monkeypatch.setenv("LOSSD_URL", keyed_server.url)
    monkeypatch.setenv("LOSSD_API_KEY", "client-test-key")
    with lossd.Client() as c:
        assert c.version()["name"] == "lossd"
    monkeypatch.setenv("LOSSD_API_KEY", "wrong")
    with lossd.Client() as c, pytest.raises(lossd.LossdError) as info:
        c.version()
    assert info.value.status == 401 and info.value.code == "unauthorized"


def test_503_with_retry_after_is_retried_a_bounded_number_of_times():
    answers = [503, 503, 200]
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            status = answers[min(len(seen), len(answers) - 1)]
            seen.append(status)
            body = json.dumps({"status": "ok"} if status == 200 else {
                "type": "urn:lossd:error:overloaded", "title": "Service overloaded", "status": 503, "detail": "busy"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if status == 503:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert lossd.Client(url, retries=3).health() == {"status": "ok"}
        assert seen == [503, 503, 200]
        seen.clear()
        answers[:] = [503] * 10
        with pytest.raises(lossd.LossdError) as info:
            lossd.Client(url, retries=2).health()
        assert info.value.status == 503 and info.value.code == "overloaded" and len(seen) == 3
    finally:
        server.shutdown()


def test_answers_arrive_as_writable_arrays_equal_to_the_json_answer(client):
    """The client asks for multipart answers; their tensors are the JSON answer's numbers."""
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(300, 20))  # large enough to travel as a .npy part
    labels = rng.integers(0, 20, 300)
    binary = client.loss("cross_entropy", reduction="none", logits=logits, labels=labels, return_grad=True)
    plain = client.request("POST", "/v1/loss", {"loss": "cross_entropy", "reduction": "none", "return_grad": True,
                                                "logits": logits.tolist(), "labels": labels.tolist()})
    assert np.array_equal(binary.values, np.asarray(plain["values"]))
    assert np.array_equal(binary.grad["logits"], np.asarray(plain["grad"]["logits"]))
    grad = binary.grad["logits"]
    assert grad.flags.writeable and grad.dtype == np.float64
    grad *= 2  # in place, as an optimiser step would


def test_multipart_answer_parts_are_npy_files(server):
    """Each tensor part of a multipart answer loads with np.load on its own."""
    import io
    import urllib3

    body = json.dumps({"loss": "cross_entropy", "logits": [[1.0, 2.0, 3.0]], "labels": [2], "return_grad": True})
    response = urllib3.PoolManager().request("POST", server.url + "/v1/loss", body=body,
                                             headers={"Content-Type": "application/json", "Accept": "multipart/form-data"})
    assert response.status == 200 and "Accept" in response.headers.get("Vary", "")
    boundary = response.headers["Content-Type"].split("boundary=")[1].encode()
    parts = response.data.split(b"--" + boundary)
    named = {}
    for part in parts[1:-1]:
        head, _, data = part[2:-2].partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        named[name] = data
    document = json.loads(named["response"])
    assert document["grad"]["logits"] == {"shape": [1, 3], "dtype": "float64", "part": "/grad/logits"}
    grad = np.load(io.BytesIO(named["/grad/logits"]))
    assert grad.shape == (1, 3) and abs(grad.sum()) < 1e-15


def test_scaling_law_fit_and_prediction(client):
    """A power law fitted from a DataFrame-like list of points, then extrapolated."""
    x = np.logspace(6, 10, 9)
    points = [{"x": float(v), "loss": 1.69 + (8.8e6 / v) ** 0.34} for v in x]
    fit = client.fit_scaling_law("power_law", points, bootstrap={"samples": 10, "seed": 1})
    assert fit["law"] == "power_law" and fit["fit"]["converged"]
    assert abs(fit["params"]["alpha"] / 0.34 - 1) < 1e-3
    assert set(fit["intervals"]["params"]) == {"L_inf", "x0", "alpha"}
    prediction = client.predict_scaling_law("power_law", {**fit["params"], **fit["options"]},
                                            x=np.array([1e11]), target_loss=1.8)
    assert isinstance(prediction["loss"], np.ndarray) and isinstance(prediction["derived"]["reducible"], np.ndarray)
    assert abs(prediction["loss"][0] / (1.69 + (8.8e6 / 1e11) ** 0.34) - 1) < 1e-5
    assert abs(prediction["derived"]["x_for_loss"] / (8.8e6 * (1.8 - 1.69) ** (-1 / 0.34)) - 1) < 1e-3
    with pytest.raises(lossd.LossdError) as error:
        client.fit_scaling_law("power_law", points, params={"irreducable": False})
    assert error.value.code == "unknown_field" and error.value.field == "/params/irreducable"


def test_stored_scaling_law_by_name(client):
    """A fit stored under a name predicts by that name exactly as the inline law does."""
    x = np.logspace(6, 10, 9)
    points = [{"x": float(v), "loss": 1.69 + (8.8e6 / v) ** 0.34} for v in x]
    fit = client.fit_scaling_law("power_law", points, name="client-kaplan")
    by_name = client.predict_scaling_law(name="client-kaplan", x=[1e11, 1e12])
    inline = client.predict_scaling_law("power_law", {**fit["params"], **fit["options"]}, x=[1e11, 1e12])
    assert np.allclose(by_name["loss"], inline["loss"], rtol=1e-12, atol=0)
    with pytest.raises(lossd.LossdError) as error:
        client.predict_scaling_law(name="no-such-law", x=[1e9])
    assert error.value.status == 404
