"""The TF Serving REST server: predictions equal the SavedModel's, errors, limits, metrics."""

import http.client
import io
import json
import os
import socket
import threading
import time
import urllib.error

import pytest
import tensorflow as tf

from keras_attention.export import SavedModelTranslator, export_saved_model
from keras_attention.serving import Server, ServerConfig

from export.conftest import SENTENCES
from serving.toy import call, export_toy_module

LIMITS = ServerConfig(port=0, max_body_bytes=4096, max_batch=4, max_string_length=100)


@pytest.fixture(scope="module")
def exported(text_module, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("serve") / "dates")
    export_saved_model(text_module, directory, version=1)
    return directory


@pytest.fixture(scope="module")
def server(exported):
    log = io.StringIO()
    with Server(exported, LIMITS, log_stream=log) as running:
        running.log = log
        yield running


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    directory = export_toy_module(str(tmp_path_factory.mktemp("toy") / "toy"))
    with Server(directory, LIMITS, log_stream=io.StringIO()) as running:
        yield running


def expected_outputs(directory, texts, signature="serving_default"):
    """The signature's outputs called directly, as the server should return them."""
    loaded = tf.saved_model.load(os.path.join(directory, "1"))
    result = loaded.signatures[signature](inputs=tf.constant(texts))
    return {k: [v.decode() if isinstance(v, bytes) else v for v in t.numpy().tolist()]
            for k, t in result.items()}


def best_text(prediction):
    return prediction["outputs"] if isinstance(prediction, dict) else prediction


def test_config_is_validated():
    with pytest.raises(ValueError, match=r"port must be an integer in \[0, 65535\]"):
        ServerConfig(port=70000)
    with pytest.raises(ValueError, match="max_batch must be a positive integer, got 0"):
        ServerConfig(max_batch=0)
    with pytest.raises(ValueError, match="host must be a non-empty string"):
        ServerConfig(host="")


def test_status_and_metadata(server, exported):
    url = f"{server.url}/v1/models/dates"
    assert server.url.startswith("http://127.0.0.1:")
    status = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                        "status": {"error_code": "OK", "error_message": ""}}]}
    assert call(url)[:2] == (200, status)
    assert call(f"{url}/versions/1")[:2] == (200, status)
    code, metadata, _ = call(f"{url}/metadata")
    assert code == 200
    assert metadata["model_spec"] == {"name": "dates", "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    loaded = tf.saved_model.load(os.path.join(exported, "1"))
    assert sorted(signatures) == sorted(loaded.signatures)
    default = signatures["serving_default"]
    assert default["inputs"] == {"inputs": {
        "dtype": "DT_STRING", "name": "inputs",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False},
    }}
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["outputs"]["outputs"]["dtype"] == "DT_STRING"
    assert sorted(default["outputs"]) == sorted(loaded.signatures["serving_default"]
                                                .structured_outputs)


def test_predict_row_and_columnar_equal_the_saved_model(server, exported):
    url = f"{server.url}/v1/models/dates:predict"
    texts = SENTENCES[:3]
    translator = SavedModelTranslator(exported)(texts)
    direct = expected_outputs(exported, texts)

    code, rows, _ = call(url, {"instances": texts})
    assert code == 200 and len(rows["predictions"]) == 3
    assert [best_text(p) for p in rows["predictions"]] == translator
    if len(direct) > 1:  # one dict per instance with every output
        assert rows["predictions"] == [{k: v[i] for k, v in direct.items()} for i in range(3)]

    code, columns, _ = call(url, {"inputs": texts})
    assert code == 200
    outputs = columns["outputs"]
    assert (outputs["outputs"] if len(direct) > 1 else outputs) == translator
    assert outputs == (direct if len(direct) > 1 else direct["outputs"])

    # Named inputs per instance, a version URL and an explicit signature agree.
    versioned = f"{server.url}/v1/models/dates/versions/1:predict"
    named = {"instances": [{"inputs": t} for t in texts], "signature_name": "serving_default"}
    assert call(versioned, named)[:2] == (200, rows)


def test_several_outputs_give_a_dict_per_instance(toy):
    url = f"{toy.url}/v1/models/toy:predict"
    code, body, _ = call(url, {"instances": ["ab", "añb", ""]})
    assert code == 200
    assert body == {"predictions": [{"outputs": "AB", "lengths": 2},
                                    {"outputs": "AñB", "lengths": 3},
                                    {"outputs": "", "lengths": 0}]}
    code, body, _ = call(url, {"inputs": ["ab", "xyz"]})
    assert (code, body) == (200, {"outputs": {"outputs": ["AB", "XYZ"], "lengths": [2, 3]}})


def test_numeric_signature_with_two_inputs(toy):
    url = f"{toy.url}/v1/models/toy:predict"
    rows = {"signature_name": "scale",
            "instances": [{"x": [1.5, -2], "k": 2}, {"x": [0, 1], "k": 3}]}
    assert call(url, rows)[:2] == (200, {"predictions": [[3.0, -4.0], [0.0, 3.0]]})
    columns = {"signature_name": "scale", "inputs": {"x": [[1.5, -2], [0, 1]], "k": [2, 3]}}
    assert call(url, columns)[:2] == (200, {"outputs": [[3.0, -4.0], [0.0, 3.0]]})

    def error(body):
        code, answer, _ = call(url, dict(body, signature_name="scale"))
        assert code == 400
        return answer["error"]

    assert error({"instances": [[1, 2]]}) == (
        "instance 0 must be an object with keys ['k', 'x'] (the signature has several inputs).")
    assert error({"instances": [{"x": [1, 2]}]}) == (
        "instance 0 has keys ['x']; the signature's inputs are ['k', 'x'].")
    assert error({"inputs": {"x": [[1, 2, 3]], "k": [1]}}) == (
        "input 'x' has shape [1, 3]; the signature expects [-1, 2] of float32.")
    assert error({"inputs": {"x": [[1, 2], [3]], "k": [1, 1]}}) == (
        "input 'x' is ragged (nested lists of different lengths); pad every row to the same "
        "length.")
    assert error({"inputs": {"x": [[1, 2]], "k": ["a"]}}) == (
        "input 'k' must hold int32 values, got str 'a'.")
    assert error({"inputs": {"x": [[1, 2]], "k": [1, 2]}}) == (
        "inputs have different batch sizes [1, 2]; give every input one entry per example.")


def test_model_errors_are_400_with_the_models_message(toy):
    url = f"{toy.url}/v1/models/toy:predict"
    assert call(url, {"signature_name": "strict", "instances": ["a", "b"]})[:2] == (
        200, {"predictions": ["a", "b"]})
    assert call(url, {"signature_name": "strict", "instances": ["a", "b", "c"]})[:2] == (
        400, {"error": "the model rejected the input: at most 2 inputs"})


ERRORS = [
    # (method, path, body, status, error)
    ("POST", "/v1/models/dates:predict", b"{not json", 400,
     'request body is not valid JSON (Expecting property name enclosed in double quotes: line 1 '
     'column 2 (char 1)); send {"instances": [...]} or {"inputs": ...}.'),
    ("POST", "/v1/models/dates:predict", [1], 400,
     'request body must be a JSON object like {"instances": [...]}.'),
    ("POST", "/v1/models/dates:predict", {"instances": ["a"], "inputs": ["a"]}, 400,
     "send exactly one of 'instances' (row format) or 'inputs' (columnar format)."),
    ("POST", "/v1/models/dates:predict", {"signature_name": "serving_default"}, 400,
     "send exactly one of 'instances' (row format) or 'inputs' (columnar format)."),
    ("POST", "/v1/models/dates:predict", {"instances": ["a"], "extra": 1}, 400,
     "unknown request key(s) ['extra']; send 'instances' (row format) or 'inputs' "
     "(columnar format)."),
    ("POST", "/v1/models/dates:predict", {"instances": []}, 400,
     "'instances' must be a non-empty list, one entry per example."),
    ("POST", "/v1/models/dates:predict", {"instances": [7]}, 400,
     "input 'inputs' must hold strings, got int 7."),
    ("POST", "/v1/models/dates:predict", {"instances": ["a"], "signature_name": "nope"}, 400,
     "signature 'nope' not found; available: {signatures}."),
    ("POST", "/v1/models/dates:predict", {"instances": ["x" * 101]}, 413,
     "input 'inputs' has a string of 101 characters; the limit is 100 (--max-string-length)."),
    ("POST", "/v1/models/dates:predict", {"instances": ["a"] * 5}, 413,
     "5 instances is over the limit of 4 per request (--max-batch); split the request."),
    ("POST", "/v1/models/dates:predict", {"inputs": ["a"] * 5}, 413,
     "5 examples is over the limit of 4 per request (--max-batch); split the request."),
    ("POST", "/v1/models/other:predict", {"instances": ["a"]}, 404,
     "model 'other' not found; this server serves 'dates'."),
    ("GET", "/v1/models/dates/versions/2", None, 404,
     "model 'dates' version '2' not found; this server serves version 1."),
    ("GET", "/v2/whatever", None, 404,
     "no endpoint at '/v2/whatever'; use /v1/models/<name>[/metadata|:predict] or "
     "/monitoring/metrics."),
    ("POST", "/v1/models/dates:classify", {"examples": []}, 404,
     "':classify' is not served; use ':predict'."),
    ("GET", "/v1/models/dates:predict", None, 405, "GET is not allowed here; use POST."),
    ("POST", "/v1/models/dates", {"instances": ["a"]}, 405, "POST is not allowed here; use GET."),
    ("PUT", "/v1/models/dates/metadata", b"", 405, "PUT is not allowed here; use GET."),
    ("DELETE", "/monitoring/metrics", None, 405, "DELETE is not allowed here; use GET."),
]


@pytest.mark.parametrize("method, path, body, status, message", ERRORS,
                         ids=[f"{e[3]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_have_tf_serving_shape_and_status(server, method, path, body, status,
                                                 message):
    code, answer, headers = call(server.url + path, body, method=method)
    signatures = ", ".join(sorted(server.model.signatures))  # checked in test_status_and_metadata
    assert (code, answer) == (status, {"error": message.replace("{signatures}", signatures)})
    if status == 405:
        assert headers["Allow"] == message.rsplit("use ", 1)[1].rstrip(".")


def test_body_limit_is_exact_and_closes_the_connection(server):
    path = "/v1/models/dates:predict"
    body = json.dumps({"instances": ["12 dec 1999"]}).encode()
    at_limit = body + b" " * (LIMITS.max_body_bytes - len(body))
    assert call(server.url + path, at_limit)[0] == 200

    connection = http.client.HTTPConnection(server.url.split("//")[1], timeout=60)
    connection.request("POST", path, body=at_limit + b" ")
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read()) == {"error": (
        f"request body of {LIMITS.max_body_bytes + 1} bytes is over the limit of "
        f"{LIMITS.max_body_bytes} (--max-body-bytes); send fewer instances.")}
    assert response.headers["Connection"] == "close"
    connection.close()


def test_missing_content_length_is_411(server):
    host, port = server.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"POST /v1/models/dates:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        answer = sock.makefile("rb").read()
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 411")
    assert json.loads(body) == {"error": "the request has no Content-Length header; send the "
                                         "JSON body with its length (chunked bodies are not "
                                         "supported)."}


def test_keep_alive_serves_several_requests_on_one_connection(server):
    connection = http.client.HTTPConnection(server.url.split("//")[1], timeout=60)
    for _ in range(3):
        connection.request("GET", "/v1/models/dates")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["model_version_status"]
    connection.close()


def test_every_request_is_one_json_log_line(exported):
    log = io.StringIO()
    with Server(exported, LIMITS, log_stream=log) as running:
        call(f"{running.url}/v1/models/dates:predict", {"instances": SENTENCES[:2]})
        call(f"{running.url}/v1/models/nope")
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(r["method"], r["path"], r["status"], r["instances"]) for r in lines] == [
        ("POST", "/v1/models/dates:predict", 200, 2), ("GET", "/v1/models/nope", 404, 0)]
    assert all(r["latency_ms"] >= 0 for r in lines)
    assert "error" not in lines[0]
    assert lines[1]["error"] == "model 'nope' not found; this server serves 'dates'."


class SlowLog(io.StringIO):
    """A log stream that takes its time, as a busy stderr or disk would."""

    def write(self, text):
        time.sleep(0.5)
        return super().write(text)


def test_stop_lets_the_request_being_handled_finish(exported):
    log = SlowLog()
    with Server(exported, LIMITS, log_stream=log) as running:
        # The answer comes back before the handler writes its log line.
        code, _, _ = call(f"{running.url}/v1/models/dates:predict", {"instances": SENTENCES[:1]})
        assert code == 200
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(r["method"], r["status"], r["instances"]) for r in lines] == [("POST", 200, 1)]


def test_metrics_count_requests_by_status(toy):
    with Server(os.path.dirname(toy.model.path), LIMITS, log_stream=io.StringIO()) as running:
        url = f"{running.url}/v1/models/toy"
        for batch in (["a"], ["b", "c"], ["d", "e"]):
            assert call(url + ":predict", {"instances": batch})[0] == 200
        assert call(url + ":predict", b"nope")[0] == 400
        assert call(url + "/versions/9")[0] == 404
        code, metrics, _ = call(f"{running.url}/monitoring/metrics")
        assert code == 200
        assert call(f"{running.url}/monitoring/metrics")[1]["requests_total"] == 5  # not counted
    assert metrics["requests_total"] == 5
    assert metrics["requests_by_status"] == {"200": 3, "400": 1, "404": 1}
    assert metrics["errors_total"] == 2
    assert metrics["instances_total"] == 5
    latency = metrics["latency_ms"]
    assert latency["histogram_le"]["+Inf"] == 5 and latency["window"] == 5
    counts = list(latency["histogram_le"].values())
    assert counts == sorted(counts)  # cumulative
    assert 0 <= latency["p50"] <= latency["p99"] and latency["sum"] >= latency["p99"]


def test_eight_concurrent_clients_get_correct_outputs(server, exported):
    texts = SENTENCES * 4
    expected = SavedModelTranslator(exported)(texts)
    url = f"{server.url}/v1/models/dates:predict"
    results = [None] * len(texts)

    def client(worker):
        for i in range(worker, len(texts), 8):
            code, body, _ = call(url, {"instances": [texts[i]]})
            results[i] = (code, best_text(body["predictions"][0]) if code == 200 else body)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(200, text) for text in expected]


def test_port_in_use_and_stop_closes_the_socket(toy):
    host, port = toy.url.split("//")[1].split(":")
    with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is already in use; pick another "
                                      r"with --port \(0 picks a free one\)."):
        Server(toy.model.path, ServerConfig(port=int(port)), log_stream=io.StringIO())
    stopped = Server(toy.model.path, LIMITS, log_stream=io.StringIO()).start()
    url = stopped.url
    assert call(url + "/v1/models/toy")[0] == 200
    stopped.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/v1/models/toy", timeout=5)
