"""TF Serving's gRPC PredictionService, called with tensorflow-serving-api's own
stub over a local channel: outputs equal REST's and the SavedModel's, status
codes and messages, metadata, metrics, logs, the authorize seam, stop."""

import io
import json
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, predict_pb2,
                                     prediction_service_pb2_grpc)

from keras_attention.export import export_saved_model
from keras_attention.serving import RequestError, RequestMetrics, Server, ServerConfig
from keras_attention.serving.grpc_service import GrpcServer, client_example

from export.conftest import SENTENCES
from serving.toy import call, export_toy_module

LIMITS = ServerConfig(port=0, grpc_port=0, max_body_bytes=4096, max_batch=4,
                      max_string_length=100)
TIMEOUT = 60  # seconds for any one call


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return export_toy_module(str(tmp_path_factory.mktemp("grpc") / "toy"))


@pytest.fixture(scope="module")
def toy(toy_dir):
    with Server(toy_dir, LIMITS, log_stream=io.StringIO()) as running:
        yield running


def open_stub(address):
    channel = grpc.insecure_channel(address)
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def stub(toy):
    channel, stub = open_stub(toy.grpc_address)
    yield stub
    channel.close()


def request(inputs, signature="", name="toy", version=None, label=None, output_filter=()):
    message = predict_pb2.PredictRequest()
    message.model_spec.name = name
    message.model_spec.signature_name = signature
    if version is not None:
        message.model_spec.version.value = version
    if label is not None:
        message.model_spec.version_label = label
    for key, value in inputs.items():
        proto = value if isinstance(value, tensor_pb2.TensorProto) else (
            tf.make_tensor_proto(value))
        message.inputs[key].CopyFrom(proto)
    message.output_filter.extend(output_filter)
    return message


def values(response):
    """``{alias: (dtype name, nested lists)}``, strings decoded as UTF-8."""
    result = {}
    for key, proto in response.outputs.items():
        array = tf.make_ndarray(proto)
        if array.dtype == object:
            array = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array)
        result[key] = (tf.dtypes.as_dtype(proto.dtype).name, array.tolist())
    return result


def failure(call_rpc, message):
    """``(code, details)`` of a call that must fail."""
    with pytest.raises(grpc.RpcError) as error:
        call_rpc(message, timeout=TIMEOUT)
    return error.value.code(), error.value.details()


def test_config_validates_the_grpc_port():
    assert ServerConfig().grpc_port is None
    with pytest.raises(ValueError, match=r"grpc_port must be an integer in \[0, 65535\] \(0 "
                                         r"picks a free one\) or None, got 70000."):
        ServerConfig(grpc_port=70000)
    with pytest.raises(ValueError, match="grpc_port and port are both 8501; give gRPC its own"):
        ServerConfig(grpc_port=8501)


def test_predict_strings_equal_rest_and_the_saved_model(toy, stub):
    response = stub.Predict(request({"inputs": ["ab", "añb", ""]}), timeout=TIMEOUT)
    assert values(response) == {"outputs": ("string", ["AB", "AñB", ""]),
                                "lengths": ("int32", [2, 3, 0])}
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == ("toy", 1, "serving_default")
    rest = call(f"{toy.url}/v1/models/toy:predict", {"inputs": ["ab", "añb", ""]})[1]
    assert {k: v for k, (_, v) in values(response).items()} == rest["outputs"]
    # An explicit version and signature answer the same.
    named = stub.Predict(request({"inputs": ["ab", "añb", ""]}, "serving_default", version=1),
                         timeout=TIMEOUT)
    assert named.outputs == response.outputs


def test_numeric_signature_with_two_inputs(toy, stub):
    inputs = {"x": np.array([[1.5, -2], [0, 1]], np.float32), "k": np.array([2, 3], np.int32)}
    response = stub.Predict(request(inputs, "scale"), timeout=TIMEOUT)
    assert values(response) == {"y": ("float32", [[3.0, -4.0], [0.0, 3.0]])}
    assert response.model_spec.signature_name == "scale"
    rest = call(f"{toy.url}/v1/models/toy:predict", {"signature_name": "scale", "inputs": {
        "x": [[1.5, -2], [0, 1]], "k": [2, 3]}})[1]
    assert values(response)["y"][1] == rest["outputs"]


def test_output_filter_picks_outputs(stub):
    response = stub.Predict(request({"inputs": ["ab"]}, output_filter=["lengths"]),
                            timeout=TIMEOUT)
    assert values(response) == {"lengths": ("int32", [2])}
    assert failure(stub.Predict, request({"inputs": ["ab"]}, output_filter=["lengths", "z"])) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "output_filter names ['z'], not outputs of signature 'serving_default' "
        "(['lengths', 'outputs']).")


def test_unknown_model_version_and_signature_are_not_found(stub):
    not_found = grpc.StatusCode.NOT_FOUND
    inputs = {"inputs": ["ab"]}
    assert failure(stub.Predict, request(inputs, name="other")) == (
        not_found, "model 'other' not found; this server serves 'toy' (set model_spec.name).")
    assert failure(stub.Predict, request(inputs, name="")) == (
        not_found, "model '' not found; this server serves 'toy' (set model_spec.name).")
    assert failure(stub.Predict, request(inputs, version=2)) == (
        not_found, "model 'toy' version '2' not found; this server serves version 1.")
    assert failure(stub.Predict, request(inputs, label="stable")) == (
        not_found, "model 'toy' version label 'stable' not found; this server has no labels "
                   "(set model_spec.version to 1 or leave it unset).")
    assert failure(stub.Predict, request(inputs, "nope")) == (
        not_found, "signature 'nope' not found; available: scale, serving_default, strict.")


def malformed_proto():
    proto = tf.make_tensor_proto(np.array([1, 2], np.int32))
    proto.tensor_content = proto.tensor_content[:4]  # 2 values announced, 1 sent
    return proto


@pytest.mark.parametrize("signature, inputs, message", [
    ("scale", {"x": np.array([[1.0, 2.0]]), "k": np.array([1], np.int32)},
     "input 'x' has dtype DT_DOUBLE; the signature expects DT_FLOAT."),
    ("scale", {"x": np.ones([1, 3], np.float32), "k": np.array([1], np.int32)},
     "input 'x' has shape [1, 3]; the signature expects [-1, 2] of float32."),
    ("scale", {"x": np.ones([1, 2], np.float32)},
     "inputs have keys ['x']; the signature's inputs are ['k', 'x']."),
    ("scale", {"x": np.ones([1, 2], np.float32), "k": np.array([1, 2], np.int32)},
     "inputs have different batch sizes [1, 2]; give every input one entry per example."),
    ("scale", {"x": np.ones([1, 2], np.float32), "k": malformed_proto()},
     "input 'k' is not a valid int32 TensorProto (cannot reshape array of size 1 into shape "
     "(2,)); build it with tf.make_tensor_proto."),
    ("scale", {"x": np.ones([1, 2], np.float32),
               "k": tensor_pb2.TensorProto()},
     "input 'k' has no valid dtype (0); build it with tf.make_tensor_proto(values, dtype=...)."),
    ("", {"inputs": np.array([1], np.int32)},
     "input 'inputs' has dtype DT_INT32; the signature expects DT_STRING."),
    ("strict", {"inputs": ["a", "b", "c"]}, "the model rejected the input: at most 2 inputs"),
])
def test_bad_inputs_are_invalid_argument_with_a_message(stub, signature, inputs, message):
    assert failure(stub.Predict, request(inputs, signature)) == (
        grpc.StatusCode.INVALID_ARGUMENT, message)


def test_limits_are_resource_exhausted(stub):
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure(stub.Predict, request({"inputs": ["a"] * 5})) == (
        exhausted, "5 examples is over the limit of 4 per request (--max-batch); split the "
                   "request.")
    assert failure(stub.Predict, request({"inputs": ["é" * 101]})) == (
        exhausted, "input 'inputs' has a string of 101 characters; the limit is 100 "
                   "(--max-string-length).")
    assert stub.Predict(request({"inputs": ["é" * 100]}), timeout=TIMEOUT).outputs  # 200 bytes
    broadcast = tf.make_tensor_proto("a", shape=[10 ** 6])  # one value filling a shape
    assert failure(stub.Predict, request({"inputs": broadcast})) == (
        exhausted, "input 'inputs' has shape [1000000], more than 4096 values (--max-body-bytes);"
                   " send fewer examples.")
    code, details = failure(stub.Predict, request({"inputs": ["x" * 5000]}))  # grpcio's own
    assert code == exhausted and "larger than max" in details


def test_other_methods_are_unimplemented(stub):
    message = classification_pb2.ClassificationRequest()
    message.model_spec.name = "toy"
    assert failure(stub.Classify, message) == (
        grpc.StatusCode.UNIMPLEMENTED, "Classify is not served; this server answers "
                                       "tensorflow.serving.PredictionService/Predict and "
                                       "GetModelMetadata.")


def metadata_request(fields=("signature_def",), name="toy"):
    message = get_model_metadata_pb2.GetModelMetadataRequest()
    message.model_spec.name = name
    message.metadata_field.extend(fields)
    return message


def test_metadata_lists_the_signatures_with_their_dtypes(toy, stub):
    response = stub.GetModelMetadata(metadata_request(), timeout=TIMEOUT)
    assert (response.model_spec.name, response.model_spec.version.value) == ("toy", 1)
    assert list(response.metadata) == ["signature_def"]
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    defs = signatures.signature_def
    assert sorted(defs) == ["scale", "serving_default", "strict"]

    def dtypes(infos):
        return {key: tf.dtypes.as_dtype(info.dtype).name for key, info in infos.items()}

    assert dtypes(defs["serving_default"].inputs) == {"inputs": "string"}
    assert dtypes(defs["serving_default"].outputs) == {"outputs": "string", "lengths": "int32"}
    assert dtypes(defs["scale"].inputs) == {"x": "float32", "k": "int32"}
    assert dtypes(defs["scale"].outputs) == {"y": "float32"}
    assert [d.size for d in defs["scale"].inputs["x"].tensor_shape.dim] == [-1, 2]
    assert {d.method_name for d in defs.values()} == {"tensorflow/serving/predict"}
    # The REST metadata lists the same signatures.
    rest = call(f"{toy.url}/v1/models/toy/metadata")[1]
    assert sorted(rest["metadata"]["signature_def"]["signature_def"]) == sorted(defs)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert failure(stub.GetModelMetadata, metadata_request(())) == (
        invalid, "metadata_field is empty; ask for 'signature_def'.")
    assert failure(stub.GetModelMetadata, metadata_request(("signature_def", "x"))) == (
        invalid, "metadata_field ['x'] is not served; ask for 'signature_def'.")
    assert failure(stub.GetModelMetadata, metadata_request(name="other")) == (
        grpc.StatusCode.NOT_FOUND,
        "model 'other' not found; this server serves 'toy' (set model_spec.name).")


def test_calls_are_counted_and_logged_like_rest(toy_dir):
    log = io.StringIO()
    with Server(toy_dir, LIMITS, log_stream=log) as running:
        channel, stub = open_stub(running.grpc_address)
        with channel:
            stub.Predict(request({"inputs": ["a", "b"]}), timeout=TIMEOUT)
            failure(stub.Predict, request({"inputs": ["a"]}, version=3))
            stub.GetModelMetadata(metadata_request(), timeout=TIMEOUT)
        assert call(f"{running.url}/v1/models/toy:predict", {"instances": ["c"]})[0] == 200
    metrics = running.metrics.snapshot()  # after stop: REST records after it answers
    assert metrics["requests_by_status"] == {"200": 3, "404": 1}
    assert (metrics["requests_total"], metrics["errors_total"], metrics["instances_total"]) == (
        4, 1, 3)
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    path = "/tensorflow.serving.PredictionService/"
    assert [(r["method"], r["path"], r["status"], r.get("grpc_code"), r["instances"])
            for r in lines] == [
        ("gRPC", path + "Predict", 200, "OK", 2),
        ("gRPC", path + "Predict", 404, "NOT_FOUND", 0),
        ("gRPC", path + "GetModelMetadata", 200, "OK", 0),
        ("POST", "/v1/models/toy:predict", 200, None, 1)]
    assert lines[1]["error"] == "model 'toy' version '3' not found; this server serves version 1."


def test_authorize_hook_refuses_before_the_call(toy):
    metrics = RequestMetrics()

    def authorize(metadata):
        if metadata.get("authorization") == "Bearer wrong":
            raise RequestError(403, "token 'wrong' may not call this model.")
        return metadata.get("authorization") == "Bearer secret"

    guarded = GrpcServer(toy.models, LIMITS, metrics, lambda record: None, authorize=authorize)
    guarded.start()
    try:
        channel, stub = open_stub(guarded.address)
        with channel:
            message = request({"inputs": ["ab"]})
            assert failure(stub.Predict, message) == (
                grpc.StatusCode.UNAUTHENTICATED, "the call is not authorized; send the "
                "credentials this server expects in the call's metadata.")
            with pytest.raises(grpc.RpcError) as error:
                stub.Predict(message, timeout=TIMEOUT,
                             metadata=[("authorization", "Bearer wrong")])
            assert (error.value.code(), error.value.details()) == (
                grpc.StatusCode.PERMISSION_DENIED, "token 'wrong' may not call this model.")
            answer = stub.Predict(message, timeout=TIMEOUT,
                                  metadata=[("authorization", "Bearer secret")])
            assert values(answer)["outputs"] == ("string", ["AB"])
    finally:
        guarded.stop(5)
        assert guarded.wait(10)
    assert metrics.snapshot()["requests_by_status"] == {"200": 1, "401": 1, "403": 1}


class SlowLog(io.StringIO):
    """A log stream that takes its time; ``writing`` is set once a write began."""

    def __init__(self):
        super().__init__()
        self.writing = threading.Event()

    def write(self, text):
        self.writing.set()
        time.sleep(0.5)
        return super().write(text)


def test_stop_finishes_the_call_in_flight_then_refuses(toy_dir):
    log = SlowLog()
    running = Server(toy_dir, LIMITS, log_stream=log).start()
    address = running.grpc_address
    channel, stub = open_stub(address)
    with channel:
        in_flight = stub.Predict.future(request({"inputs": ["ab"]}), timeout=TIMEOUT)
        assert log.writing.wait(TIMEOUT)  # the call is being handled (its log line)
        running.stop()
        assert values(in_flight.result())["outputs"] == ("string", ["AB"])
    channel, stub = open_stub(address)
    with channel:
        code, _ = failure(stub.Predict, request({"inputs": ["ab"]}))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert [json.loads(line)["status"] for line in log.getvalue().splitlines()] == [200]


def test_grpc_port_in_use_is_one_line_and_frees_the_http_port(toy):
    grpc_port = int(toy.grpc_address.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        http_port = probe.getsockname()[1]
    with pytest.raises(OSError) as error:
        Server(toy.model.path, ServerConfig(port=http_port, grpc_port=grpc_port),
               log_stream=io.StringIO())
    assert str(error.value) == (f"gRPC port {grpc_port} on 127.0.0.1 is already in use; pick "
                                "another with --grpc-port (0 picks a free one).")
    with socket.socket() as again:
        again.bind(("127.0.0.1", http_port))  # the REST socket was closed


def test_client_example_runs_against_the_server(toy):
    printed = []
    exec(client_example(toy.grpc_address, toy.model, "ab"), {"print": printed.append})
    assert values(printed[0]) == {"outputs": ("string", ["AB"]), "lengths": ("int32", [2])}


@pytest.fixture(scope="module")
def exported(text_module, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("grpc_text") / "dates")
    export_saved_model(text_module, directory, version=1)
    return directory


def test_text_model_outputs_equal_rest(exported):
    texts = SENTENCES[:3]
    with Server(exported, ServerConfig(port=0, grpc_port=0), log_stream=io.StringIO()) as running:
        rest = call(f"{running.url}/v1/models/dates:predict", {"inputs": texts})[1]["outputs"]
        channel, stub = open_stub(running.grpc_address)
        with channel:
            response = stub.Predict(request({"inputs": texts}, name="dates"), timeout=TIMEOUT)
    grpc_outputs = {key: value for key, (_, value) in values(response).items()}
    assert grpc_outputs == (rest if isinstance(rest, dict) else {"outputs": rest})
    assert len(grpc_outputs["outputs"]) == 3
