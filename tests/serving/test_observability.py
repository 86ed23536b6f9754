"""Observability: Prometheus text, request logs without text unless --log-text
(masked), and /v1/health turning degraded on error rate or p99."""

import http.client
import io
import json

import pytest
import tensorflow as tf
from click.testing import CliRunner
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from cli.main import main
from keras_attention.serving import HealthConfig, Server, ServerConfig
from keras_attention.serving.health import HealthWindow
from keras_attention.serving.redact import mask_json, mask_text, text_fields

from serving.toy import export_toy_module

PREFIX = "keras_attention_serving_"


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return export_toy_module(str(tmp_path_factory.mktemp("observe") / "toy"))


class Client:
    """Requests over one keep-alive connection: the server records and logs
    each request before it reads the next one, so counts are exact."""

    def __init__(self, server):
        self.connection = http.client.HTTPConnection(server.url.split("//")[1], timeout=60)

    def __call__(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        self.connection.request(method, path, body=data)
        response = self.connection.getresponse()
        payload = response.read()
        assert response.headers.get("Connection") != "close"  # the next request stays in order
        return response.status, payload, response.headers

    def json(self, method, path, body=None):
        status, payload, _ = self(method, path, body)
        return status, json.loads(payload)

    def predict(self, instances, signature=None):
        body = {"instances": instances}
        if signature:
            body["signature_name"] = signature
        return self.json("POST", "/v1/models/toy:predict", body)

    def close(self):
        self.connection.close()


def serving(toy_dir, log=None, **config):
    return Server(toy_dir, ServerConfig(port=0, **config), log_stream=log or io.StringIO())


def samples(text):
    """``{(name, sorted label items): value}`` of a Prometheus exposition text."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def ours(parsed, name):
    return {labels: value for (n, labels), value in parsed.items() if n == PREFIX + name}


def explode(*args, **kwargs):
    raise RuntimeError("boom on 'bob@example.com'")


# --- masking ---------------------------------------------------------------

@pytest.mark.parametrize("text, masked", [
    ("write to jane.doe+news@mail.example.co.uk today", "write to <email> today"),
    ("a@b.io, c_d@e.org; f@g.net", "<email>, <email>; <email>"),
    ("józef@exämple.pl pisze", "<email> pisze"),
    ("mail me at bob99@x.com.", "mail me at <email>."),
    ("user@localhost", "user@localhost"),  # no dot in the domain: not an address
    ("12 dec 1999", "<digits> dec <digits>"),
    ("1 dec 1999", "1 dec <digits>"),  # a lone digit stays
    ("abc123def a1b", "abc<digits>def a1b"),  # digits inside words
    ("call 555-123-4567 or +44 20 7946 0958", "call <digits>-<digits>-<digits> or "
                                               "+<digits> <digits> <digits> <digits>"),
    ("5-5-5", "5-5-5"),
    ("٣٤ and １２", "<digits> and <digits>"),  # Arabic-Indic and full-width digits
    ("", ""),
    ("naïve café ☕", "naïve café ☕"),
])
def test_mask_text(text, masked):
    assert mask_text(text) == masked


def test_mask_json_masks_every_string_and_keeps_numbers():
    value = {"in22": ["x 33", {"k": "e@f.gh"}], "n": [12345, 1.5, True, None]}
    assert mask_json(value) == {"in<digits>": ["x <digits>", {"k": "<email>"}],
                                "n": [12345, 1.5, True, None]}


def test_text_fields_take_inputs_and_outputs():
    assert text_fields({"instances": ["a 10"]}, {"predictions": ["A 10"]}) == {
        "inputs": ["a <digits>"], "outputs": ["A <digits>"]}
    assert text_fields({"inputs": {"x": ["7"]}}, {"outputs": {"y": ["8"]}}) == {
        "inputs": {"x": ["7"]}, "outputs": {"y": ["8"]}}
    assert text_fields(["not", "a dict"], {"error": "e"}) == {}


# --- Prometheus --------------------------------------------------------------

def test_prometheus_text_counts_requests_latencies_and_batches(toy_dir):
    with serving(toy_dir) as server:
        client = Client(server)
        for batch in (["a"], ["b", "c"], ["d", "e"]):
            assert client.predict(batch)[0] == 200
        assert client.predict(["a", "b", "c"], signature="strict")[0] == 400
        assert client.predict(["a"], signature="nope")[0] == 400
        assert client.json("GET", "/v1/models/toy/versions/9")[0] == 404
        assert client.json("GET", "/v1/models/toy/metadata")[0] == 200
        assert client.json("GET", "/v2/private/raw/path")[0] == 404
        assert client.json("GET", "/v1/health")[0] == 200
        assert client.json("POST", "/monitoring/prometheus/metrics")[0] == 405
        status, first, headers = client("GET", "/monitoring/prometheus/metrics")
        second = client("GET", "/monitoring/prometheus/metrics")[1]
        client.close()
    assert status == 200 and headers["Content-Type"] == CONTENT_TYPE_LATEST
    parsed = samples(first.decode())

    def labels(route, signature, code=None):
        items = {"route": route, "signature": signature}
        if code is not None:
            items["code"] = str(code)
        return tuple(sorted(items.items()))

    assert ours(parsed, "requests_total") == {
        labels("predict", "serving_default", 200): 3.0,
        labels("predict", "strict", 400): 1.0,
        labels("predict", "", 400): 1.0,  # an unknown signature is not a label value
        labels("status", "", 404): 1.0,
        labels("metadata", "", 200): 1.0,
        labels("unknown", "", 404): 1.0,  # never the raw path
        labels("health", "", 200): 1.0,
        labels("prometheus", "", 405): 1.0,
    }
    latency_counts = ours(parsed, "request_latency_seconds_count")
    assert latency_counts[labels("predict", "serving_default")] == 3.0
    assert sum(latency_counts.values()) == 10.0
    infinite = dict(labels("predict", "serving_default")) | {"le": "+Inf"}
    assert ours(parsed, "request_latency_seconds_bucket")[tuple(sorted(infinite.items()))] == 3.0
    # One executed batch per successful predict call: sizes 1, 2, 2.
    batches = ours(parsed, "batch_size_bucket")
    by_le = {dict(k)["le"]: v for k, v in batches.items()}
    assert (by_le["1.0"], by_le["2.0"], by_le["4.0"], by_le["+Inf"]) == (1.0, 3.0, 3.0, 3.0)
    assert {dict(k)["signature"] for k in batches} == {"serving_default"}
    assert ours(parsed, "batch_size_sum") == {(("signature", "serving_default"),): 5.0}
    assert ours(parsed, "queue_depth") == {(): 0.0}
    assert ours(parsed, "requests_in_flight") == {(): 1.0}  # the scrape itself
    # The first scrape is counted by the time of the second.
    assert ours(samples(second.decode()), "requests_total")[labels("prometheus", "", 200)] == 1.0


def test_each_server_has_its_own_registry(toy_dir):
    with serving(toy_dir) as busy, serving(toy_dir) as idle:
        client = Client(busy)
        assert client.predict(["a"])[0] == 200
        client.close()
        busy_text = busy.metrics.prometheus.text().decode()
        idle_text = idle.metrics.prometheus.text().decode()
    assert sum(ours(samples(busy_text), "requests_total").values()) == 1.0
    assert ours(samples(idle_text), "requests_total") == {}
    assert not [name for name in REGISTRY._names_to_collectors if name.startswith(PREFIX)]


def test_queue_depth_and_batches_come_from_a_batcher(toy_dir):
    with serving(toy_dir) as server:
        server.metrics.set_queue_depth_function(lambda: 7)
        server.metrics.record_batch("scale", 16)
        parsed = samples(server.metrics.prometheus.text().decode())
    assert ours(parsed, "queue_depth") == {(): 7.0}
    assert ours(parsed, "batch_size_sum") == {(("signature", "scale"),): 16.0}


def test_json_metrics_leave_out_monitoring_requests(toy_dir):
    with serving(toy_dir) as server:
        client = Client(server)
        assert client.predict(["a", "b"])[0] == 200
        for path in ("/v1/health", "/monitoring/prometheus/metrics", "/monitoring/metrics"):
            assert client("GET", path)[0] == 200
        code, metrics = client.json("GET", "/monitoring/metrics")
        client.close()
    assert (code, metrics["requests_total"], metrics["requests_by_status"]) == (200, 1, {"200": 1})


# --- request logs --------------------------------------------------------------

def log_lines(log):
    return [json.loads(line) for line in log.getvalue().splitlines()]


def test_logs_hold_no_input_or_output_text_by_default(toy_dir, monkeypatch):
    log = io.StringIO()
    with serving(toy_dir, log) as server:
        client = Client(server)
        assert client.predict(["mail bob@example.com 12345"])[0] == 200
        code, answer = client.json("POST", "/v1/models/toy:predict", {
            "signature_name": "scale", "inputs": {"x": [["secret 42", 1.0]], "k": [1]}})
        assert (code, answer) == (400, {"error": "input 'x' must hold float32 values, got str "
                                                 "'secret 42'."})
        assert client.predict(["a", "b", "c"], signature="strict") == (
            400, {"error": "the model rejected the input: at most 2 inputs"})
        monkeypatch.setattr(server.model, "_call", explode)
        assert client.predict(["x"]) == (500, {"error": "internal error: RuntimeError: boom on "
                                                        "'bob@example.com'"})
        client.close()
    lines = log_lines(log)
    assert [(r["status"], r["instances"], r.get("error")) for r in lines] == [
        (200, 1, None),
        (400, 0, "input 'x' must hold float32 values, got str."),
        (400, 0, "the model rejected the input: at most 2 inputs"),  # the exporter's message
        (500, 0, "internal error: RuntimeError"),
    ]
    # The secrets' digits may turn up in a time or a latency: leave those out.
    text = "\n".join(json.dumps({k: v for k, v in r.items() if k not in ("time", "latency_ms")})
                     for r in lines)
    for secret in ("bob", "12345", "MAIL", "secret", "42"):
        assert secret not in text
    assert all(set(r) <= {"time", "method", "path", "status", "latency_ms", "instances",
                          "error"} for r in lines)


def test_model_errors_other_than_assertions_log_only_their_type(toy_dir, monkeypatch):
    log = io.StringIO()
    with serving(toy_dir, log) as server:
        original = server.model.signatures["serving_default"]

        class Rejecting:
            structured_input_signature = original.structured_input_signature
            structured_outputs = original.structured_outputs

            def __call__(self, **tensors):
                raise tf.errors.InvalidArgumentError(None, None, "cannot parse 'hunter2'")

        monkeypatch.setitem(server.model.signatures, "serving_default", Rejecting())
        client = Client(server)
        assert client.predict(["hunter2"]) == (
            400, {"error": "the model rejected the input: cannot parse 'hunter2'"})
        client.close()
    assert log_lines(log)[0]["error"] == "the model rejected the input: InvalidArgumentError"


def test_log_text_adds_masked_inputs_outputs_and_error_details(toy_dir, monkeypatch):
    log = io.StringIO()
    with serving(toy_dir, log, log_text=True) as server:
        client = Client(server)
        assert client.predict(["mail bob@example.com 12345", "a1"])[0] == 200
        assert client.json("POST", "/v1/models/toy:predict", {
            "signature_name": "scale", "inputs": {"x": [["secret 42", 1.0]], "k": [1]}})[0] == 400
        monkeypatch.setattr(server.model, "_call", explode)
        assert client.predict(["x"])[0] == 500
        assert client("GET", "/v1/models/toy")[0] == 200
        client.close()
    lines = log_lines(log)
    assert lines[0]["inputs"] == ["mail <email> <digits>", "a1"]
    assert lines[0]["outputs"] == [{"outputs": "MAIL <email> <digits>", "lengths": 26},
                                   {"outputs": "A1", "lengths": 2}]
    assert "error" not in lines[0]
    assert lines[1]["error"] == "input 'x' must hold float32 values, got str."
    assert lines[1]["error_detail"] == ("input 'x' must hold float<digits> values, got str "
                                        "'secret <digits>'.")
    assert lines[1]["inputs"] == {"x": [["secret <digits>", 1.0]], "k": [1]}
    assert "outputs" not in lines[1]
    assert lines[2]["error"] == "internal error: RuntimeError"
    assert lines[2]["error_detail"] == "internal error: RuntimeError: boom on '<email>'"
    assert "inputs" not in lines[3] and "outputs" not in lines[3]  # not a predict call
    assert "bob" not in log.getvalue() and "12345" not in log.getvalue()


# --- health --------------------------------------------------------------------

def test_health_config_is_validated():
    with pytest.raises(ValueError, match=r"max_error_rate must be a number in \[0, 1\), got 1"):
        HealthConfig(max_error_rate=1)
    with pytest.raises(ValueError, match="max_p99_ms must be a positive number, got 0"):
        HealthConfig(max_p99_ms=0)
    with pytest.raises(ValueError, match="window_seconds must be a positive number, got -1"):
        HealthConfig(window_seconds=-1)
    with pytest.raises(ValueError, match="health must be a HealthConfig, got"):
        ServerConfig(health={"max_p99_ms": 5})
    assert ServerConfig().health == HealthConfig(None, None, 60.0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_health_window_counts_5xx_over_the_last_seconds():
    clock = Clock()
    window = HealthWindow(HealthConfig(max_error_rate=0.2, window_seconds=30), clock)
    assert window.report() == (200, {
        "status": "ok", "window_seconds": 30, "requests": 0, "server_errors": 0,
        "error_rate": 0.0, "p99_ms": None, "max_error_rate": 0.2, "max_p99_ms": None})
    for status in (200, 200, 400, 404, 413):  # client errors do not degrade
        window.record(status, 10.0)
    assert window.report()[1]["status"] == "ok"
    window.record(500, 10.0)
    window.record(503, 10.0)
    code, body = window.report()
    assert (code, body["status"], body["error_rate"]) == (503, "degraded", round(2 / 7, 6))
    assert body["reasons"] == ["error rate 0.286 (2 of 7 requests answered 5xx in the last "
                               "30 s) is above --health-max-error-rate 0.2"]
    clock.now += 31  # the errors age out of the window
    window.record(200, 10.0)
    assert window.report()[1] | {"p99_ms": None} == {
        "status": "ok", "window_seconds": 30, "requests": 1, "server_errors": 0,
        "error_rate": 0.0, "p99_ms": None, "max_error_rate": 0.2, "max_p99_ms": None}


def test_health_window_p99():
    window = HealthWindow(HealthConfig(max_p99_ms=100), Clock())
    for latency in [10.0] * 99 + [1000.0]:
        window.record(200, latency)
    code, body = window.report()
    assert body["p99_ms"] == 19.9  # numpy's linear interpolation: 10 + 0.01 * 990
    assert code == 200
    window.record(200, 1000.0)
    code, body = window.report()
    assert (code, body["p99_ms"]) == (503, 1000.0)
    assert body["reasons"] == ["p99 latency 1000.000 ms over the last 60 s is above "
                               "--health-max-p99-ms 100"]


def test_health_without_thresholds_stays_ok(toy_dir, monkeypatch):
    with serving(toy_dir) as server:
        monkeypatch.setattr(server.model, "_call", explode)
        client = Client(server)
        assert client.predict(["a"])[0] == 500
        code, body = client.json("GET", "/v1/health")
        assert client.json("PUT", "/v1/health") == (
            405, {"error": "PUT is not allowed here; use GET."})
        client.close()
    assert (code, body["status"], body["server_errors"], body["error_rate"]) == (200, "ok", 1, 1.0)


def test_health_degrades_after_server_errors(toy_dir, monkeypatch):
    health = HealthConfig(max_error_rate=0.25)
    with serving(toy_dir, health=health) as server:
        client = Client(server)
        for _ in range(3):
            assert client.predict(["a"])[0] == 200
        assert client.predict(["a", "b", "c"], signature="strict")[0] == 400
        code, body = client.json("GET", "/v1/health")
        assert (code, body["status"], body["requests"], body["server_errors"]) == (200, "ok", 4, 0)
        with monkeypatch.context() as patch:
            patch.setattr(server.model, "_call", explode)
            assert client.predict(["a"])[0] == 500
            assert client.predict(["a"])[0] == 500
        code, body = client.json("GET", "/v1/health")
        client.close()
    assert (code, body["status"]) == (503, "degraded")
    assert body["reasons"] == ["error rate 0.333 (2 of 6 requests answered 5xx in the last 60 s) "
                               "is above --health-max-error-rate 0.25"]
    assert (body["requests"], body["server_errors"]) == (6, 2)  # health checks are not counted


def test_health_degrades_on_a_low_p99_threshold(toy_dir):
    with serving(toy_dir, health=HealthConfig(max_p99_ms=1e9)) as relaxed, \
            serving(toy_dir, health=HealthConfig(max_p99_ms=1e-6)) as strict:
        answers = []
        for server in (relaxed, strict):
            client = Client(server)
            assert client.predict(["a"])[0] == 200
            answers.append(client.json("GET", "/v1/health"))
            client.close()
    (relaxed_code, relaxed_body), (strict_code, strict_body) = answers
    assert (relaxed_code, relaxed_body["status"], relaxed_body["requests"]) == (200, "ok", 1)
    assert (strict_code, strict_body["status"]) == (503, "degraded")
    assert len(strict_body["reasons"]) == 1
    assert strict_body["reasons"][0].startswith("p99 latency ")
    assert strict_body["reasons"][0].endswith(" ms over the last 60 s is above "
                                              "--health-max-p99-ms 1e-06")


# --- command line ----------------------------------------------------------------

def test_serve_passes_the_observability_options(toy_dir, monkeypatch):
    seen = {}

    def interrupted(self):
        self.start()
        client = Client(self)
        seen["config"] = self.config
        seen["health"] = client.json("GET", "/v1/health")
        client.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "serve_forever", interrupted)
    result = CliRunner().invoke(main, ["serve", toy_dir, "--port", "0", "--log-text",
                                       "--health-max-error-rate", "0.1",
                                       "--health-max-p99-ms", "250",
                                       "--health-window-seconds", "30"])
    assert result.exit_code == 0, result.output
    assert seen["config"].log_text is True
    assert seen["config"].health == HealthConfig(max_error_rate=0.1, max_p99_ms=250.0,
                                                 window_seconds=30.0)
    assert seen["health"] == (200, {
        "status": "ok", "window_seconds": 30.0, "requests": 0, "server_errors": 0,
        "error_rate": 0.0, "p99_ms": None, "max_error_rate": 0.1, "max_p99_ms": 250.0})


def test_serve_help_and_bad_thresholds():
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    for flag in ("--log-text", "--health-max-error-rate", "--health-max-p99-ms",
                 "--health-window-seconds"):
        assert flag in help_text
    result = CliRunner().invoke(main, ["serve", "x", "--health-max-error-rate", "1.5"])
    assert result.exit_code == 2 and "--health-max-error-rate" in result.output
