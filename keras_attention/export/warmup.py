"""TF Serving's warmup records: ``assets.extra/tf_serving_warmup_requests``.

A version folder may carry this TFRecord file; TF Serving (and
``keras_attention.serving.ServedModel``) runs each of its requests once when
it loads the version, before reporting it AVAILABLE, so the first real
request does not pay for the graph's first run (Grappler's rewrites, kernel
set-up, with ``--xla`` the compilation of its shape bucket). Each record is
a serialized ``tensorflow.serving.PredictionLog`` whose
``predict_log.request`` is a ``PredictRequest``: the signature name and the
inputs as ``TensorProto``s (TF Serving ignores the model name and version in
warmup records; we leave them unset).

``export_saved_model`` writes the records for a ``TextToTextModule`` from a
few sample texts (``warmup_requests``): per signature, one batch of one short
text and one batch of all samples plus one text longer than the model keeps
(so the longest source shape is warmed too).
"""

import os

import numpy as np
import tensorflow as tf

from keras_attention.export.signatures import SOURCE_IDS_NAME

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving refuses a version with more
# Used when the exporter gives no sample texts: short and long, digits,
# a non-ASCII word; out-of-vocabulary words still run the whole graph.
DEFAULT_WARMUP_TEXTS = (
    "5 apr 1917",
    "the first of may two thousand and nine",
    "a man in a blue shirt is riding a bicycle down a busy street in the city .",
    "zwei Männer stehen am Straßenrand .",
)
WARMUP_SAMPLES = 4  # texts per warmup batch, as ``pick_warmup_texts`` picks them


def pick_warmup_texts(texts, count=WARMUP_SAMPLES):
    """Up to ``count`` of ``texts`` (stripped, empty ones dropped, no
    repeats) spread over their lengths: the shortest, the longest and ones
    between, shortest first."""
    unique = sorted({text.strip() for text in texts if text and text.strip()},
                    key=lambda text: (len(text), text))
    if len(unique) <= count:
        return unique
    if count == 1:
        return unique[:1]
    step = (len(unique) - 1) / (count - 1)
    return [unique[round(i * step)] for i in range(count)]


def warmup_requests(module, texts=DEFAULT_WARMUP_TEXTS):
    """``[(signature_name, {input_name: np.ndarray})]`` for a
    ``TextToTextModule``: for each string signature a batch of the shortest
    text and a batch of up to ``max_batch_size`` texts (``texts``, then one
    of at least ``max_input_length`` words, which the graph cuts to the
    model's limit), as every string input (prefixes and outputs too); for
    ``ids`` the source ids of those batches."""
    texts = pick_warmup_texts(texts) or list(DEFAULT_WARMUP_TEXTS[:1])
    words = " ".join(texts).split()
    long_text = " ".join(words * (module.max_input_length // len(words) + 1))
    batches = [texts[:1], (texts + [long_text])[: module.max_batch_size]]
    requests = []
    for name, function in module.signatures().items():
        for batch in batches:
            inputs = {}
            for spec in function.input_signature:
                if spec.dtype == tf.string:  # texts, prefixes, outputs: the same strings
                    inputs[spec.name] = np.array([t.encode("utf-8") for t in batch],
                                                 dtype=object)
                elif spec.name == SOURCE_IDS_NAME:
                    inputs[spec.name] = module.encode_text(tf.constant(batch)).numpy().astype(
                        np.int32)
            if len(inputs) == len(function.input_signature):
                requests.append((name, inputs))
    return requests


def write_warmup_requests(version_directory, requests):
    """Write ``requests`` (``[(signature_name, {input_name: array})]``) as
    ``version_directory/assets.extra/tf_serving_warmup_requests``; returns its path."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    if len(requests) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(requests)} warmup requests is over TF Serving's limit of "
                         f"{MAX_WARMUP_RECORDS}; give fewer.")
    path = os.path.join(version_directory, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in requests:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(version_directory):
    """The warmup requests of a version folder as ``[(signature_name,
    {input_name: np.ndarray})]``; ``[]`` without the file. A record that is
    not a ``PredictionLog`` with a predict request is a ``ValueError``."""
    from google.protobuf.message import DecodeError
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(version_directory, WARMUP_FILE)
    if not os.path.exists(path):
        return []
    requests = []
    try:
        for number, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator(), 1):
            if number > MAX_WARMUP_RECORDS:
                raise ValueError(f"'{path}' holds more than {MAX_WARMUP_RECORDS} warmup "
                                 "records (TF Serving's limit); keep fewer.")
            log = prediction_log_pb2.PredictionLog()
            try:
                log.ParseFromString(record)
            except DecodeError:
                raise ValueError(f"warmup record {number} of '{path}' is not a PredictionLog; "
                                 "write the file with write_warmup_requests.") from None
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"warmup record {number} of '{path}' is a "
                                 f"{log.WhichOneof('log_type')}; only predict_log requests "
                                 "are replayed.")
            request = log.predict_log.request
            inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
            requests.append((request.model_spec.signature_name or "serving_default", inputs))
    except tf.errors.DataLossError:
        raise ValueError(f"'{path}' is not a TFRecord file; write it with "
                         "write_warmup_requests or delete it.") from None
    return requests
