"""``{"b64": ...}`` in the REST API as TF Serving has it: bytes in string inputs
(row and columnar formats, nested), ``*_bytes`` string outputs as base64."""

import base64
import io
import os

import pytest
import tensorflow as tf

from keras_attention.serving import Server, ServerConfig

from serving.toy import call

RAW = b"\xff\x00bin\xc3"  # not UTF-8


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


class BytesModule(tf.Module):
    """Signatures that pass bytes through, under ``_bytes`` and plain aliases."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data")])
    def echo(self, data):
        return {"data_bytes": tf.identity(data), "size": tf.strings.length(data)}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.string, name="pair"),
                                  tf.TensorSpec([None], tf.string, name="tail")])
    def join(self, pair, tail):
        joined = tf.strings.reduce_join(pair, axis=1) + tail
        return {"joined_bytes": joined, "joined": joined}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    module = BytesModule()
    directory = str(tmp_path_factory.mktemp("b64") / "raw")
    tf.saved_model.save(module, os.path.join(directory, "1"),
                        signatures={"serving_default": module.echo, "join": module.join})
    config = ServerConfig(port=0, max_string_length=10)
    with Server(directory, config, log_stream=io.StringIO()) as running:
        yield running


def predict(server, body):
    return call(f"{server.url}/v1/models/raw:predict", body)[:2]


def test_b64_inputs_in_row_and_columnar_format(server):
    expected = [{"data_bytes": b64(RAW), "size": 6}, {"data_bytes": b64(b"ab"), "size": 2}]
    assert predict(server, {"instances": [b64(RAW), "ab"]}) == (200, {"predictions": expected})
    assert predict(server, {"instances": [{"data": b64(RAW)}, {"data": "ab"}]}) == (
        200, {"predictions": expected})
    assert predict(server, {"inputs": [b64(RAW), b64(b"ab")]}) == (200, {"outputs": {
        "data_bytes": [b64(RAW), b64(b"ab")], "size": [6, 2]}})
    assert predict(server, {"inputs": {"data": [b64(b"")]}}) == (200, {"outputs": {
        "data_bytes": [b64(b"")], "size": [0]}})


def test_nested_b64_and_plain_outputs_stay_text(server):
    body = {"signature_name": "join", "instances": [
        {"pair": [b64(b"a\xffb"), "c"], "tail": b64(b"!")},
        {"pair": ["x", "y"], "tail": "z"}]}
    assert predict(server, body) == (200, {"predictions": [
        {"joined_bytes": b64(b"a\xffbc!"), "joined": "a\ufffdbc!"},
        {"joined_bytes": b64(b"xyz"), "joined": "xyz"}]})
    columns = {"signature_name": "join",
               "inputs": {"pair": [[b64(b"a"), b64(b"b")]], "tail": [b64(b"c")]}}
    assert predict(server, columns) == (200, {"outputs": {"joined_bytes": [b64(b"abc")],
                                                          "joined": ["abc"]}})


@pytest.mark.parametrize("value, status, message", [
    ({"b64": "%%%"}, 400, "input 'data' has invalid base64 '%%%' (Only base64 data is allowed); "
                          "encode the bytes with standard base64 (RFC 4648, '+/' and '=' "
                          "padding)."),
    ({"b64": "abc"}, 400, "input 'data' has invalid base64 'abc' (Incorrect padding); encode the "
                          "bytes with standard base64 (RFC 4648, '+/' and '=' padding)."),
    ({"b64": 7}, 400, 'input \'data\' has a {"b64": ...} value that is int, not a string; send '
                      "the base64 text."),
    ({"b64": "YQ==", "x": 1}, 400, "instance 0 has keys ['b64', 'x']; the signature's inputs "
                                   "are ['data']."),
    (b64(b"x" * 11), 413, "input 'data' has a string of 11 characters; the limit is 10 "
                          "(--max-string-length)."),
])
def test_bad_b64_is_one_line(server, value, status, message):
    assert predict(server, {"instances": [value]}) == (status, {"error": message})


def test_b64_for_a_numeric_input_is_refused(tmp_path):
    from serving.toy import export_toy_module

    directory = export_toy_module(str(tmp_path / "toy"))
    with Server(directory, ServerConfig(port=0), log_stream=io.StringIO()) as running:
        code, body, _ = call(f"{running.url}/v1/models/toy:predict", {
            "signature_name": "scale", "inputs": {"x": [[1, 2]], "k": [b64(b"1")]}})
    assert (code, body) == (400, {"error": "input 'k' must hold int32 values, got dict "
                                           "{'b64': 'MQ=='}."})
