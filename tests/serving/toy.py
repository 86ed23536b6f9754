"""A SavedModel without a model (string and numeric signatures with known
outputs) and a one-call HTTP client, shared by the serving tests."""

import json
import os
import urllib.error
import urllib.request

import tensorflow as tf


class ToyModule(tf.Module):
    """No model: string and numeric signatures with known outputs."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def serve(self, inputs):
        return {"outputs": tf.strings.upper(inputs),
                "lengths": tf.strings.length(inputs, unit="UTF8_CHAR")}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def strict(self, inputs):
        tf.debugging.assert_less(tf.size(inputs), 3, message="at most 2 inputs")
        return {"outputs": tf.identity(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x"),
                                  tf.TensorSpec([None], tf.int32, name="k")])
    def scale(self, x, k):
        return {"y": x * tf.cast(k, tf.float32)[:, None]}


def export_toy_module(directory):
    """``directory/1``: ``serving_default`` (upper-case + length), ``scale``, ``strict``."""
    module = ToyModule()
    tf.saved_model.save(module, os.path.join(directory, "1"),
                        signatures={"serving_default": module.serve, "scale": module.scale,
                                    "strict": module.strict})
    return directory


def call(url, body=None, method=None, headers=None):
    """``(status, JSON body, headers)`` of one request; ``body`` is bytes or JSON-able."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers
